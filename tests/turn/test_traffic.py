"""The call-shaped traffic model: profiles, schedule, payload codec, receiver statistics (pure, no I/O)."""

from __future__ import annotations

import pytest

from callops.turn.traffic import (
    HEADER_SIZE,
    MAX_PACKET,
    VIDEO,
    VOICE,
    Direction,
    Histogram,
    MediaProfile,
    PacketHeader,
    PacketSchedule,
    ReceiverStats,
    bucket_of,
    bucket_value,
    iter_frames,
    pack_into,
    pack_packet,
    percentile,
    profile_named,
    to_us,
    unpack_fields,
    unpack_header,
    video_profile,
)

# -- profiles and schedule ----------------------------------------------------------------------------


def test_voice_is_fifty_opus_packets_per_second_of_100_to_160_bytes() -> None:
    schedule = PacketSchedule(VOICE, 0.0, seed=7)
    frames = list(iter_frames(schedule, 10.0))
    sizes = [size for _, burst in frames for size in burst]
    assert len(frames) == 500 and len(sizes) == 500
    assert all(len(burst) == 1 for _, burst in frames)
    assert min(sizes) >= 100 and max(sizes) <= 160
    assert len(set(sizes)) > 20  # sizes vary as VBR Opus does
    assert frames[1][0] - frames[0][0] == pytest.approx(0.020)
    assert VOICE.packets_per_second == 50


def test_video_bursts_mtu_sized_packets_per_frame_at_the_profile_bitrate() -> None:
    schedule = PacketSchedule(VIDEO, 100.0, seed=3)
    frames = list(iter_frames(schedule, 110.0))
    assert len(frames) == 300  # 30 fps
    sizes = [size for _, burst in frames for size in burst]
    assert max(sizes) <= 1200 and min(sizes) >= 200
    bitrate = sum(sizes) * 8 / 10
    assert bitrate == pytest.approx(1_500_000, rel=0.05)
    assert len(sizes) / 10 == pytest.approx(VIDEO.packets_per_second, rel=0.1)
    # key frames every 2 s are bursts several times larger than a delta frame
    bursts = [sum(burst) for _, burst in frames]
    assert bursts[0] > 3 * bursts[1] and bursts[60] > 3 * bursts[61]
    assert all(len(burst) > 1 for _, burst in frames)


def test_video_profile_at_15_fps_keeps_the_bitrate() -> None:
    profile = video_profile(500_000, fps=15)
    sizes = [s for _, burst in iter_frames(PacketSchedule(profile, 0.0), 20.0) for s in burst]
    assert sum(sizes) * 8 / 20 == pytest.approx(500_000, rel=0.05)


def test_schedule_returns_nothing_before_due_and_every_frame_once() -> None:
    schedule = PacketSchedule(VOICE, 1.0)
    assert schedule.due(0.999) == []
    assert len(schedule.due(1.0)) == 1
    assert schedule.due(1.0) == []
    assert len(schedule.due(1.061)) == 3  # 1.02, 1.04, 1.06 caught up within the lag bound
    assert schedule.skipped_frames == 0


def test_schedule_skips_frames_when_the_sender_stalls_beyond_the_lag_bound() -> None:
    schedule = PacketSchedule(VOICE, 0.0, max_lag_s=0.1)
    schedule.due(0.0)
    sent = len(schedule.due(1.0))  # one second late: only ~0.1 s is sent, the rest skipped
    assert 5 <= sent <= 6
    assert schedule.skipped_frames + sent == 50
    assert schedule.next_due > 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0}, "profile 'x': fps 0 is outside 1-120"),
        ({"bitrate_bps": 0}, "profile 'x': bitrate_bps 0 must be positive"),
        ({"min_packet": 10}, "profile 'x': packet sizes 10-160 must satisfy 32 <= min_packet"),
        ({"kind": "text"}, "profile 'x': kind 'text' is not 'audio' or 'video'"),
    ],
)
def test_bad_profiles_are_refused_with_the_field_named(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "name": "x",
        "kind": "audio",
        "fps": 50,
        "bitrate_bps": 1000,
        "min_packet": 100,
        "max_packet": 160,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError) as info:
        MediaProfile(**fields)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_profile_named() -> None:
    assert profile_named("voice") is VOICE and profile_named("video") is VIDEO
    with pytest.raises(ValueError, match=r"^unknown media profile 'audio': use one of voice, video$"):
        profile_named("audio")


# -- codec --------------------------------------------------------------------------------------------


def test_header_round_trips_and_pads_to_the_packet_size() -> None:
    header = PacketHeader(
        call_id=0xDEADBEEF,
        direction=Direction.B_TO_A,
        sequence=123456,
        sent_us=to_us(12345.678901),
        echo_us=42,
        echo_delay_us=7,
    )
    packet = pack_packet(header, 140)
    assert len(packet) == 140 and HEADER_SIZE == 32
    assert packet[HEADER_SIZE:] == bytes(140 - HEADER_SIZE)
    assert unpack_header(packet) == header
    assert header.direction.reverse is Direction.A_TO_B


def test_pack_into_writes_after_a_channel_data_prefix() -> None:
    buffer = bytearray(4 + 100)
    pack_into(buffer, 4, 9, 0, 5, 1000, 0, 0)
    assert unpack_fields(buffer, 4) == (9, 0, 5, 1000, 0, 0)
    assert unpack_fields(memoryview(buffer)[4:]) == (9, 0, 5, 1000, 0, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"CL\x01", "packet of 3 bytes is shorter than the 32-byte header"),
        (b"XY" + bytes(30), "bad magic b'XY': not a callops load packet (expected b'CL')"),
        (b"CL\x02" + bytes(29), "unsupported load packet version 2 (this callops speaks 1)"),
        (b"CL\x01\x05" + bytes(28), "bad direction 5: not 0 (a->b) or 1 (b->a)"),
    ],
)
def test_unpack_refuses_bad_input_with_exact_messages(data: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        unpack_header(data)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("header", "size", "message"),
    [
        (PacketHeader(1, Direction.A_TO_B, 0, 0), 31, f"packet size 31 is outside 32-{MAX_PACKET}"),
        (PacketHeader(1 << 32, Direction.A_TO_B, 0, 0), 64, "call_id 4294967296 is outside 0-4294967295"),
        (PacketHeader(1, Direction.A_TO_B, -1, 0), 64, "sequence -1 is outside 0-4294967295"),
        (PacketHeader(1, Direction.A_TO_B, 0, 0, 0, 1 << 32), 64, "echo_delay_us 4294967296 is outside"),
    ],
)
def test_pack_refuses_out_of_range_fields(header: PacketHeader, size: int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        pack_packet(header, size)
    assert str(info.value).startswith(message)


def test_pack_into_a_short_buffer_names_the_sizes() -> None:
    with pytest.raises(ValueError, match=r"^buffer has 20 bytes after offset 4, the header needs 32$"):
        pack_into(bytearray(24), 4, 1, 0, 0, 0)


# -- receiver statistics ------------------------------------------------------------------------------


def _deliver(stats: ReceiverStats, order: list[int], delay_us: int = 1000, step_us: int = 20_000) -> None:
    for seq in order:
        stats.on_packet(seq, seq * step_us, 120, seq * step_us + delay_us)


def test_in_order_delivery_with_constant_delay_has_no_loss_and_no_jitter() -> None:
    stats = ReceiverStats()
    _deliver(stats, list(range(100)))
    summary = stats.summary(sent=100)
    assert (summary.packets_received, summary.packets_lost, summary.loss_percent) == (100, 0, 0.0)
    assert summary.bytes_received == 12_000
    assert summary.jitter_ms == 0.0 and summary.reordered == 0 and summary.duplicates == 0
    assert summary.delay_p50_ms == pytest.approx(1.0, rel=0.07)


def test_gaps_and_a_stopped_tail_count_as_loss_once_the_senders_count_is_known() -> None:
    stats = ReceiverStats()
    _deliver(stats, [s for s in range(80) if s % 10 != 3])  # 8 gaps, then the stream stops at 79
    assert stats.lost() == 8  # without the sender's count the tail is invisible
    summary = stats.summary(sent=100)
    assert summary.packets_lost == 28
    assert summary.loss_percent == 28.0


def test_duplicates_are_not_counted_as_received_and_late_packets_as_reordered() -> None:
    stats = ReceiverStats()
    _deliver(stats, [0, 1, 3, 2, 4, 4, 1, 5])
    summary = stats.summary(sent=6)
    assert summary.packets_received == 6 and summary.packets_lost == 0
    assert summary.duplicates == 2 and summary.reordered == 1


def test_rfc3550_jitter_converges_to_the_delay_variation() -> None:
    stats = ReceiverStats()
    for seq in range(2000):  # transit alternates 1 ms / 3 ms: |D| is always 2 ms
        stats.on_packet(seq, seq * 20_000, 100, seq * 20_000 + (1000 if seq % 2 else 3000))
    summary = stats.summary()
    assert summary.jitter_ms == pytest.approx(2.0, rel=0.01)
    assert summary.jitter_p99_ms == pytest.approx(2.0, rel=0.07)


def test_rtt_comes_from_echoed_timestamps_minus_the_hold_time() -> None:
    a_to_b = ReceiverStats()  # at b
    a_sends = ReceiverStats()  # at a: RTT of a's packets
    assert a_to_b.echo(0) == (0, 0)
    a_to_b.on_packet(0, sent_us=1_000_000, size=100, now_us=1_002_000)  # 2 ms one way
    echo_us, delay_us = a_to_b.echo(now_us=1_007_000)  # b sends back 5 ms later
    assert (echo_us, delay_us) == (1_000_000, 5000)
    a_sends.on_echo(echo_us, delay_us, now_us=1_010_000)  # 3 ms back
    a_sends.on_echo(0, 0, now_us=1_011_000)  # no echo yet: no sample
    summary = a_sends.summary()
    assert summary.rtt_samples == 1
    assert summary.rtt_p50_ms == pytest.approx(5.0, rel=0.07)


def test_summary_without_packets() -> None:
    summary = ReceiverStats().summary(sent=0)
    assert summary.loss_percent == 0.0 and summary.jitter_p99_ms is None and summary.rtt_p50_ms is None
    assert ReceiverStats().summary(sent=50).loss_percent == 100.0


# -- histograms ---------------------------------------------------------------------------------------


def test_histogram_percentiles_are_within_the_bucket_resolution() -> None:
    histogram = Histogram()
    for value in range(1, 100_001):
        histogram.add(value)
    for q, exact in ((50, 50_000), (99, 99_000), (100, 100_000)):
        got = histogram.percentile(q)
        assert got is not None and abs(got - exact) / exact < 1 / 16
    assert histogram.percentile(0) == 1.0
    assert Histogram().percentile(50) is None
    with pytest.raises(ValueError, match="percentile 101 is outside 0-100"):
        histogram.percentile(101)


def test_buckets_are_monotonic_and_contain_their_values() -> None:
    previous = -1
    for value in [*range(300), 1000, 65_535, 10**6, 6 * 10**7]:
        index = bucket_of(value)
        assert index >= previous
        previous = index
        assert abs(bucket_value(index) - value) <= max(0.5, value / 16)


def test_histograms_merge_exactly_and_survive_json() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for value in range(0, 5000, 7):
        a.add(value)
        both.add(value)
    for value in range(3000, 90_000, 11):
        b.add(value)
        both.add(value)
    a.merge(b)
    assert a.counts == both.counts and a.count == both.count and a.max == both.max
    restored = Histogram.from_counts(a.to_counts())
    assert restored.counts == a.counts and restored.percentile(99) == a.percentile(99)
    assert restored.mean == a.mean
    with pytest.raises(ValueError, match=r"histogram bucket 'x': 3 is not a bucket index"):
        Histogram.from_counts({"x": 3})


def test_percentile_of_values_is_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile(range(1, 101), 99) == 99
    assert percentile([], 50) is None
