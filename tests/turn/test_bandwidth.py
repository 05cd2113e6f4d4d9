"""The bandwidth test: the sans-I/O meter and judge, and a real flow through coturn on loopback."""

from __future__ import annotations

import pytest

from callops.errors import UsageError
from callops.testing import run_bounded
from callops.turn.bandwidth import FlowMeter, FlowSpec, bandwidth_test, flow_profile, judge
from callops.turn.coturn import LoopbackCoturn
from callops.turn.credentials import rest_credentials
from callops.turn.results import FlowStats, ProbeStatus

VOICE = FlowSpec("voice", 600, 600, duration_s=1.0)
VIDEO = FlowSpec("video", 2600, 1100, duration_s=1.0)


def test_voice_is_sent_every_20_ms_and_video_in_mtu_bursts_at_30_fps() -> None:
    voice, video = flow_profile("voice", 600), flow_profile("video", 2600)
    assert voice.fps == 50 and voice.max_packet <= 1200 and voice.frames_per_keyframe == 0
    assert video.fps == 30 and video.max_packet == 1200 and video.frames_per_keyframe == 60
    opus = flow_profile("voice", 52)
    assert opus.kind == "audio" and opus.max_packet <= 130


def test_meter_counts_what_arrives_and_rtt_from_feedback() -> None:
    meter = FlowMeter(flow_profile("voice", 600), start=0.0)
    sent = []
    for tick in range(50):  # one second of 20 ms frames
        now = tick * 0.02
        packets = meter.due(now)
        sent += packets
        for i, packet in enumerate(packets):
            if (tick + i) % 10:  # every tenth packet is lost on the way
                meter.on_packet(packet, now + 0.005)
        meter.on_feedback(meter.feedback(now + 0.006), now + 0.011)
    flow, feedback = meter.stats(1.0)
    assert flow.sent == len(sent) == meter.sent and 0.08 <= flow.loss <= 0.12
    assert 500 < flow.achieved_kbps < 600
    assert feedback.received == 50
    assert meter.flow.rtt.count > 0 and 9_000 <= (meter.flow.rtt.percentile(50) or 0) <= 11_000


def test_meter_ignores_foreign_packets() -> None:
    meter = FlowMeter(flow_profile("voice", 600), start=0.0)
    meter.on_packet(b"not a callops packet at all, just bytes", 0.1)
    meter.on_feedback(b"x" * 40, 0.1)
    assert meter.flow.packets == 0 and meter.feedback_stats.packets == 0


def stats(kbps: float, loss: float) -> FlowStats:
    return FlowStats(sent=100, received=100, loss=loss, achieved_kbps=kbps, jitter_ms=1.0)


def test_judge_passes_the_target_warns_when_degraded_and_fails_below_the_floor() -> None:
    assert judge(VIDEO, stats(2550, 0.0))[0] is ProbeStatus.OK
    status, detail = judge(VIDEO, stats(1500, 0.3))
    assert (
        status is ProbeStatus.WARN and "degraded" in detail and "1100 kbit/s is the working minimum" in detail
    )
    status, detail = judge(VIDEO, stats(950, 0.6))
    assert status is ProbeStatus.FAIL and "too little bandwidth" in detail and "950 of 2600" in detail
    assert judge(VOICE, stats(600, 0.2))[0] is ProbeStatus.FAIL
    # A 1 Mbit/s link lets a little over 1000 kbit/s through (its bucket and queue): still below the floor.
    assert judge(VIDEO, stats(1009, 0.62))[0] is ProbeStatus.FAIL


def test_specs_are_bounded_in_rate_and_time() -> None:
    with pytest.raises(UsageError, match="above the 4000 kbit/s bound"):
        FlowSpec("video", 20_000, 1100).check()
    assert FlowSpec("video", 20_000, 1100).check(allow_above=True).target_kbps == 20_000
    with pytest.raises(UsageError, match="duration"):
        FlowSpec("voice", 600, 600, duration_s=60).check()
    with pytest.raises(UsageError, match="floor"):
        FlowSpec("voice", 600, 900).check()


@pytest.mark.coturn
@pytest.mark.parametrize("spec", [VOICE, VIDEO], ids=["voice", "video"])
def test_a_flow_through_coturn_on_loopback_gets_its_target_through(
    coturn: LoopbackCoturn, spec: FlowSpec
) -> None:
    creds = rest_credentials(coturn.secret, "bw", ttl=300)
    result = run_bounded(bandwidth_test(coturn.turn_udp, creds.username, creds.credential, 8, spec), 20)
    assert result.status is ProbeStatus.OK, (result.error, result.data)
    data = result.data
    assert data.flow is not None and data.feedback is not None
    assert data.flow.achieved_kbps >= 0.9 * spec.target_kbps and data.flow.loss <= 0.05
    assert data.passed is True and data.transport == "udp"
    assert data.rtt_ms_p50 is not None and data.feedback.received > 0
    assert data.duration_s is not None and 0.9 <= data.duration_s <= 1.5


@pytest.mark.coturn
def test_a_tcp_relay_flow_works_too_and_without_credentials_it_is_skipped(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(coturn.secret, "bw", ttl=300)
    result = run_bounded(bandwidth_test(coturn.turn_tcp, creds.username, creds.credential, 8, VOICE), 20)
    assert result.status is ProbeStatus.OK and result.data.transport == "tcp", result.error
    skipped = run_bounded(bandwidth_test(coturn.turn_udp, None, None, 8, VOICE), 20)
    assert skipped.status is ProbeStatus.SKIPPED
