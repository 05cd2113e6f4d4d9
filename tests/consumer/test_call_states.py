"""The call dialog's state table, shared by the emulator and the consumer's tracker."""

from __future__ import annotations

from callops.consumer import call_states
from callops.consumer.call_states import CALL_STEPS, CALL_TRANSITIONS
from callops.consumer.models import SessionState
from callops.consumer.tracker import TRACKER_TRANSITIONS
from callops.orchestrator.emulator import model

INVITED, ACCEPTED, CLOSED = SessionState.INVITED, SessionState.ACCEPTED, SessionState.CLOSED


def test_the_emulator_applies_the_shared_table() -> None:
    assert model.CALL_TRANSITIONS is call_states.CALL_TRANSITIONS
    assert model.CallEvent is call_states.CallEvent


def test_states_only_go_forward_and_closed_is_final() -> None:
    assert {(INVITED, ACCEPTED), (INVITED, CLOSED), (ACCEPTED, CLOSED)} == CALL_STEPS
    assert not [key for key in CALL_TRANSITIONS if key[0] is CLOSED]


def test_the_tracker_takes_only_steps_of_the_shared_table() -> None:
    steps = {(old, new) for (old, _), new in TRACKER_TRANSITIONS.items() if old is not None}
    assert steps == CALL_STEPS
    # first sight announces INVITED or ACCEPTED, never CLOSED
    assert {new for (old, _), new in TRACKER_TRANSITIONS.items() if old is None} == {INVITED, ACCEPTED}
