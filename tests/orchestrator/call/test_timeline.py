"""The call timeline: first mark wins, ms from the invitation, order of PHASES."""

from __future__ import annotations

import pytest

from callops.orchestrator.call.timeline import PHASES, Timeline


def test_marks_are_milliseconds_from_the_invitation_in_phase_order() -> None:
    timeline = Timeline(origin=100.0)
    timeline.mark("accepted", 100.25)
    timeline.mark("invited", 100.0)
    timeline.mark("ice_connected", 100.3)
    assert timeline.as_ms() == {"invited": 0.0, "accepted": 250.0, "ice_connected": 300.0}
    assert list(timeline.as_ms()) == [p for p in PHASES if timeline.has(p)]


def test_first_mark_of_a_phase_wins() -> None:
    timeline = Timeline(origin=0.0)
    assert timeline.mark("accepted", 1.0)
    assert not timeline.mark("accepted", 2.0)
    assert timeline.as_ms()["accepted"] == 1000.0


def test_between_gives_the_interval_or_none() -> None:
    timeline = Timeline(origin=0.0)
    timeline.mark("accepted", 1.0)
    timeline.mark("ice_connected", 1.05)
    assert timeline.between("accepted", "ice_connected") == 50.0
    assert timeline.between("accepted", "first_audio") is None


def test_unknown_phase_is_a_bug_and_raises() -> None:
    with pytest.raises(ValueError, match="unknown call phase 'ringing'"):
        Timeline(origin=0.0).mark("ringing", 1.0)
