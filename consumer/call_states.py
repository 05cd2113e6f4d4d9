"""The call dialog's state machine as data, shared by the consumer side and the emulator.

A voice/video call is a COBROWSE dialog whose ``metaData.sessionState`` goes
``INVITED -> ACCEPTED -> CLOSED`` (``shared/protocol/messaging-window-api.md``).
:data:`CALL_TRANSITIONS` is the table in the style of h11's ``_state.py``: (state, event) -> next
state, where an event is what one of the two parties (or the clock) does. The emulator applies it
to the calls it serves (:meth:`callops.orchestrator.emulator.model.EmulatorModel.apply`); the
consumer's :class:`~callops.consumer.tracker.InvitationTracker` sees only the states on the wire,
not who moved them, and follows :data:`CALL_STEPS`, the state changes the table allows.
"""

from __future__ import annotations

from enum import StrEnum

from callops.consumer.models import SessionState

__all__ = ["CALL_STEPS", "CALL_TRANSITIONS", "CallEvent"]


class CallEvent(StrEnum):
    """What can happen to a call, and who does it."""

    CONSUMER_ACCEPT = "consumer accepts"
    CONSUMER_JOIN = "consumer joins"
    CONSUMER_DECLINE = "consumer declines"
    CONSUMER_HANG_UP = "consumer hangs up"
    AGENT_CANCEL = "agent cancels"
    AGENT_HANG_UP = "agent hangs up"
    EXPIRE = "invitation expires"
    CONVERSATION_CLOSED = "conversation closed"


_INVITED, _ACCEPTED, _CLOSED = SessionState.INVITED, SessionState.ACCEPTED, SessionState.CLOSED

#: (state, event) -> next state. A pair that is not here is refused (the emulator answers it with
#: ``CallStateError``). CLOSED is final.
CALL_TRANSITIONS: dict[tuple[SessionState, CallEvent], SessionState] = {
    (_INVITED, CallEvent.CONSUMER_ACCEPT): _ACCEPTED,
    (_INVITED, CallEvent.CONSUMER_DECLINE): _CLOSED,
    (_INVITED, CallEvent.AGENT_CANCEL): _CLOSED,
    (_INVITED, CallEvent.EXPIRE): _CLOSED,
    (_INVITED, CallEvent.CONVERSATION_CLOSED): _CLOSED,
    # notificationKey accepted -> joined: the state stays, the update is sent again
    (_ACCEPTED, CallEvent.CONSUMER_JOIN): _ACCEPTED,
    (_ACCEPTED, CallEvent.CONSUMER_HANG_UP): _CLOSED,
    (_ACCEPTED, CallEvent.AGENT_HANG_UP): _CLOSED,
    (_ACCEPTED, CallEvent.CONVERSATION_CLOSED): _CLOSED,
}

#: The state changes :data:`CALL_TRANSITIONS` allows, whoever causes them: (from, to) pairs with
#: ``from != to``. States never go backwards.
CALL_STEPS: frozenset[tuple[SessionState, SessionState]] = frozenset(
    (state, new) for (state, _), new in CALL_TRANSITIONS.items() if new != state
)
