"""How loss is counted (docs/call.md): sender's counters against the receiver's, a stopped tail included."""

from __future__ import annotations

from callops.orchestrator.call.peer import KindStats
from callops.orchestrator.call.quality import estimate_mos
from callops.orchestrator.call.stats import call_stats, direction_stats


def test_a_stream_that_stops_counts_its_tail_as_lost_although_rtcp_sees_no_gap() -> None:
    sender = KindStats(packets_sent=1005, bytes_sent=300_000)
    receiver = KindStats(packets_received=229, packets_lost=0)  # the kill -9 case
    stats = direction_stats("audio", "agent->consumer", sender, receiver, 20.0)
    assert (stats.packets_lost, stats.loss_percent, stats.rtcp_packets_lost) == (776, 77.21, 0)
    assert stats.loss_method == "counters"


def test_a_packet_in_flight_never_makes_loss_negative() -> None:
    stats = direction_stats("audio", "x", KindStats(packets_sent=100), KindStats(packets_received=101), 2.0)
    assert (stats.packets_lost, stats.loss_percent) == (0, 0.0)


def test_two_sites_take_the_sender_count_from_its_rtcp_sender_report() -> None:
    mine = KindStats(packets_received=180, packets_lost=5, remote_packets_sent=200)
    stats = direction_stats("audio", "agent->consumer", KindStats(), mine, 4.0, two_site=True)
    assert (stats.packets_lost, stats.loss_percent, stats.loss_method) == (20, 10.0, "rtcp-sender-report")
    early = KindStats(packets_received=180, packets_lost=5)  # no sender report yet: sequence numbers
    stats = direction_stats("audio", "agent->consumer", KindStats(), early, 4.0, two_site=True)
    assert (stats.packets_lost, stats.loss_method) == (5, "rtcp-sequence")


def test_the_quality_estimate_counts_interrupted_time_as_lost() -> None:
    both = {"audio": KindStats(packets_sent=500, packets_received=500, jitter_ms=1.0)}
    stats = call_stats(both, both, ["audio"], 10.0, interrupted_s={("audio", "agent->consumer"): 2.0})
    to_consumer, to_agent = stats.audio_quality
    assert (to_consumer.loss_percent, to_agent.loss_percent) == (20.0, 0.0)
    assert to_consumer.mos == estimate_mos(0.0, 1.0, 20.0) and to_consumer.band == "bad"
    assert to_agent.band == "good"
    assert [m.interrupted_s for m in stats.media] == [2.0, 0.0]
