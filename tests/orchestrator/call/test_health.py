"""The mid-call health watcher, sans I/O: observations and times in, interruptions and verdicts out."""

from __future__ import annotations

from callops.orchestrator.call.health import Dropped, HealthWatcher, Interruption, TransportChange

FLOWS = (("audio", "agent->consumer"), ("audio", "consumer->agent"))


def _watcher() -> HealthWatcher:
    return HealthWatcher(flows=FLOWS, start_s=100.0, origin_s=95.0)


def _frames(w: HealthWatcher, until: float, *, stop: dict[str, tuple[float, float]] | None = None) -> None:
    """Feed 50 frames/s per direction from 100.0 to ``until``; ``stop`` direction -> (from, to) silent."""
    counts = {d: 0 for _, d in FLOWS}
    t = 100.0
    while t <= until + 1e-9:
        for _, direction in FLOWS:
            gap = (stop or {}).get(direction)
            if gap is None or not gap[0] <= t < gap[1]:
                counts[direction] += 1
            w.observe_frames("audio", direction, counts[direction], t)
        t = round(t + 0.02, 3)


def test_steady_media_is_healthy_with_no_interruption() -> None:
    w = _watcher()
    _frames(w, 110.0)
    assert w.healthy and w.interruptions == [] and w.failure() is None


def test_a_gap_over_one_second_that_recovers_is_one_interruption_and_stays_healthy() -> None:
    w = _watcher()
    _frames(w, 110.0, stop={"agent->consumer": (103.0, 105.0)})
    assert w.healthy
    [gap] = w.interruptions
    assert (gap.direction, gap.to_s is not None) == ("agent->consumer", True)
    assert abs(gap.from_s - 102.98) < 0.03 and abs((gap.to_s or 0) - 105.0) < 0.03
    assert w.ms(gap.from_s) == 7980.0
    assert abs(w.interrupted_s("audio", "agent->consumer", 110.0) - 2.02) < 0.03
    assert w.interrupted_s("audio", "consumer->agent", 110.0) == 0.0


def test_a_gap_under_one_second_is_not_an_interruption() -> None:
    w = _watcher()
    _frames(w, 110.0, stop={"consumer->agent": (103.0, 103.9)})
    assert w.interruptions == []


def test_media_that_stops_for_good_is_dropped_three_seconds_after_the_last_frame() -> None:
    w = _watcher()
    events = []
    _frames(w, 104.0)
    for step in range(1, 60):
        now = 104.0 + step * 0.1
        events += w.observe_frames("audio", "agent->consumer", 201, now)
        events += w.tick(now)
        if w.dropped is not None:
            break
    assert isinstance(w.dropped, Dropped)
    assert 107.0 <= w.dropped.at_s <= 107.15
    assert [type(e) for e in events] == [Interruption, Interruption, Dropped]
    assert w.failure() == (
        "call dropped: media agent->consumer stopped at 9.0 s; media consumer->agent stopped at 9.0 s"
    )


def test_ice_failure_drops_at_once_and_names_the_side() -> None:
    w = _watcher()
    w.observe_transport("consumer", "ice", "completed", 100.0)
    _frames(w, 102.0)
    events = w.observe_transport("consumer", "ice", "failed", 102.5)
    assert isinstance(events[0], TransportChange) and events[0].label == "ice-failed"
    assert w.dropped is not None and w.dropped.at_s == 102.5
    assert w.failure() == "call dropped: consumer ICE failed at 7.5 s"


def test_the_first_cause_comes_first_and_recovered_problems_are_no_cause() -> None:
    w = _watcher()
    w.observe_transport("agent", "ice", "completed", 100.0)
    w.observe_transport("agent", "ice", "disconnected", 101.0)
    w.observe_transport("agent", "ice", "completed", 101.5)  # recovered: an event, not a cause
    _frames(w, 103.0)
    w.tick(104.1)
    w.observe_transport("consumer", "dtls", "connected", 104.2)
    w.observe_transport("consumer", "dtls", "closed", 104.3)
    assert [e.label for e in w.transport_events] == ["ice-disconnected", "ice-completed", "dtls-closed"]
    assert w.failure() == (
        "call dropped: media agent->consumer stopped at 8.0 s; media consumer->agent stopped at 8.0 s; "
        "consumer DTLS closed at 9.3 s"
    )


def test_nothing_is_recorded_after_the_hang_up() -> None:
    w = _watcher()
    _frames(w, 101.0)
    w.finish(101.0)
    assert w.observe_transport("agent", "dtls", "closed", 101.2) == []
    assert w.tick(110.0) == [] and w.healthy and w.interruptions == []


def test_video_flows_are_named_with_their_kind() -> None:
    w = HealthWatcher(
        flows=(("audio", "agent->consumer"), ("video", "agent->consumer")), start_s=0, origin_s=0
    )
    w.observe_frames("audio", "agent->consumer", 1, 0.5)
    w.tick(3.6)
    assert w.failure() == (
        "call dropped: media video agent->consumer stopped at 0.0 s; "
        "media audio agent->consumer stopped at 0.5 s"
    )
