"""The invitation tracker: every notification sequence of the issue, without an event loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from callops.consumer.tracker import (
    CallAccepted,
    CallClosed,
    CallInvited,
    CloseReason,
    InvitationTracker,
    TrackerEvent,
)

if TYPE_CHECKING:
    from tests.consumer.conftest import Wire

CONV = "0b1c-conversation"
D1 = "c26b9d3b-e943-42af-8047-aba830de64ea"
D2 = "d2-second-call"


def feed(tracker: InvitationTracker, wire: Wire, body: dict[str, Any], now: float) -> list[TrackerEvent]:
    return tracker.receive(wire.parse(body), now)


def invited_to_d1(wire: Wire) -> InvitationTracker:
    """A tracker that has seen the invitation to call D1 at ``wire.t0``."""
    tracker = InvitationTracker()
    feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1)), wire.t0)
    return tracker


def d1_accepted(wire: Wire) -> dict[str, Any]:
    """The server's ACCEPTED update of D1, 1 ms after its creation."""
    return wire.upsert(CONV, wire.call_dialog(D1, "ACCEPTED", ts=int(wire.t0 * 1000) + 1))


def test_invitation_emits_call_invited_with_the_dialog_fields(wire: Wire) -> None:
    tracker = InvitationTracker()
    now = wire.t0 + 1
    events = feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1)), now)
    assert events == [
        CallInvited(
            conversationId=CONV,
            dialogId=D1,
            serviceId=f"{wire.consumer}#{D1}-svc",
            mode="VIDEO_CALL",
            agentId=wire.agent,
            expires=wire.t0 + 90.0,
            creationTs=int(wire.t0 * 1000),
        )
    ]
    invited = events[0]
    assert isinstance(invited, CallInvited)
    assert invited.service_id == invited.serviceId and invited.agent_id == wire.agent
    [active] = tracker.active_calls()
    assert active.sessionState == "INVITED" and active.dialogId == D1
    assert tracker.next_deadline() == wire.t0 + 90.0


def test_seed_dialog_alone_is_an_invitation_with_the_agent_from_plain_participant_ids(wire: Wire) -> None:
    # no conversation-level roles: the agent is the dialog participant that is not the consumer
    tracker = InvitationTracker()
    body = wire.upsert(CONV, wire.call_dialog(D1), conversation_participants=[])
    [event] = feed(tracker, wire, body, wire.t0)
    assert isinstance(event, CallInvited) and event.agentId == wire.agent


def test_agent_comes_from_participants_details_roles(wire: Wire) -> None:
    tracker = InvitationTracker()
    details = [{"id": "agent-7", "role": "ASSIGNED_AGENT"}, {"id": wire.consumer, "role": "CONSUMER"}]
    dialog = wire.call_dialog(D1, participants=[])
    dialog["participantsDetails"] = details
    [event] = feed(tracker, wire, wire.upsert(CONV, dialog, conversation_participants=[]), wire.t0)
    assert isinstance(event, CallInvited) and event.agentId == "agent-7"


def test_voice_call_mode_is_a_call(wire: Wire) -> None:
    tracker = InvitationTracker()
    [event] = feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1, mode="VOICE_CALL")), wire.t0)
    assert isinstance(event, CallInvited) and event.mode == "VOICE_CALL"


def test_repeated_upserts_of_the_same_state_emit_nothing(wire: Wire) -> None:
    tracker = InvitationTracker()
    body = wire.upsert(CONV, wire.call_dialog(D1))
    assert len(feed(tracker, wire, body, wire.t0)) == 1
    assert feed(tracker, wire, body, wire.t0 + 1) == []
    later = wire.upsert(CONV, wire.call_dialog(D1, ts=int(wire.t0 * 1000) + 500))
    assert feed(tracker, wire, later, wire.t0 + 2) == []
    accepted = wire.upsert(CONV, wire.call_dialog(D1, "ACCEPTED", ts=int(wire.t0 * 1000) + 1000))
    assert [type(e) for e in feed(tracker, wire, accepted, wire.t0 + 3)] == [CallAccepted]
    # ACCEPTED again (notificationKey accepted -> joined) emits nothing
    joined = wire.upsert(CONV, wire.call_dialog(D1, "ACCEPTED", ts=int(wire.t0 * 1000) + 2000))
    assert feed(tracker, wire, joined, wire.t0 + 4) == []


def test_accept_then_partial_closed_is_ended(wire: Wire) -> None:
    tracker = invited_to_d1(wire)
    tracker.accepted(D1)
    [acc] = feed(tracker, wire, d1_accepted(wire), wire.t0 + 5)
    assert isinstance(acc, CallAccepted) and acc.dialogId == D1 and acc.agentId == wire.agent
    assert tracker.next_deadline() is None  # an accepted call does not expire
    [closed] = feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0 + 500)
    assert isinstance(closed, CallClosed) and closed.reason is CloseReason.ENDED
    assert closed.serviceId == f"{wire.consumer}#{D1}-svc" and closed.mode == "VIDEO_CALL"
    assert tracker.active_calls() == []


def test_partial_closed_is_matched_by_dialog_id_alone(wire: Wire) -> None:
    tracker = invited_to_d1(wire)
    # the CLOSED update carries neither serviceId nor mode nor conversation participants
    body = {
        "changes": [
            {
                "type": "UPSERT",
                "result": {"convId": CONV, "conversationDetails": {"dialogs": [wire.closed_dialog(D1)]}},
            }
        ]
    }
    [closed] = feed(tracker, wire, body, wire.t0 + 10)
    assert isinstance(closed, CallClosed) and closed.dialogId == D1 and closed.reason is CloseReason.CANCELLED


@pytest.mark.parametrize(
    ("local", "after", "reason"),
    [
        (None, 3.0, CloseReason.CANCELLED),
        (InvitationTracker.declined, 3.0, CloseReason.DECLINED),
        (InvitationTracker.accepted, 3.0, CloseReason.UNKNOWN),
        (None, 90.0, CloseReason.EXPIRED),
    ],
    ids=[
        "before-accept-without-local-decline-is-cancelled",
        "after-local-decline-is-declined",
        "after-local-accept-but-before-accepted-is-unknown",
        "by-the-server-at-expiry-is-expired",
    ],
)
def test_closed_before_accepted(
    wire: Wire, local: Callable[[InvitationTracker, str], object] | None, after: float, reason: CloseReason
) -> None:
    tracker = invited_to_d1(wire)
    if local is not None:
        local(tracker, D1)
    [closed] = feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0 + after)
    assert isinstance(closed, CallClosed) and closed.reason is reason


def test_invitation_expires_on_tick_even_if_the_server_never_says_so(wire: Wire) -> None:
    tracker = invited_to_d1(wire)
    assert tracker.tick(wire.t0 + 89.9) == []
    [closed] = tracker.tick(wire.t0 + 90.0)
    assert isinstance(closed, CallClosed) and closed.reason is CloseReason.EXPIRED
    assert tracker.next_deadline() is None and tracker.active_calls() == []
    # the late server CLOSED and a replayed INVITED emit nothing more
    assert feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0 + 91) == []
    assert feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1)), wire.t0 + 91) == []


def test_without_expires_the_invitation_expires_120_s_after_creation(wire: Wire) -> None:
    tracker = InvitationTracker()
    feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1, expires=None)), wire.t0)
    assert tracker.next_deadline() == pytest.approx(wire.t0 + 120.0)
    assert tracker.tick(wire.t0 + 119.0) == []
    [closed] = tracker.tick(wire.t0 + 120.5)
    assert isinstance(closed, CallClosed) and closed.reason is CloseReason.EXPIRED


def test_declined_invitation_that_times_out_closes_as_declined(wire: Wire) -> None:
    tracker = invited_to_d1(wire)
    tracker.declined(D1)
    [closed] = tracker.tick(wire.t0 + 100)
    assert isinstance(closed, CallClosed) and closed.reason is CloseReason.DECLINED


def test_accepted_call_is_not_expired_by_tick(wire: Wire) -> None:
    tracker = invited_to_d1(wire)
    feed(tracker, wire, d1_accepted(wire), wire.t0 + 1)
    assert tracker.tick(wire.t0 + 1000) == []
    assert [c.sessionState for c in tracker.active_calls()] == ["ACCEPTED"]


@pytest.mark.parametrize(
    ("state", "after_ms"),
    [("CLOSED", 1000), ("INVITED", 3000)],
    ids=["an-older-closed-snapshot-arriving-late-is-ignored", "a-newer-invited-never-goes-backwards"],
)
def test_an_accepted_call_ignores_stale_and_backward_updates(wire: Wire, state: str, after_ms: int) -> None:
    tracker = invited_to_d1(wire)
    base = int(wire.t0 * 1000)
    feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1, "ACCEPTED", ts=base + 2000)), wire.t0 + 2)
    late = wire.call_dialog(D1, state, ts=base + after_ms)
    assert feed(tracker, wire, wire.upsert(CONV, late), wire.t0 + 3) == []
    assert [c.sessionState for c in tracker.active_calls()] == ["ACCEPTED"]
    assert tracker.tick(wire.t0 + 1000) == []


def test_delete_of_a_conversation_closes_its_calls(wire: Wire) -> None:
    tracker = invited_to_d1(wire)
    feed(tracker, wire, wire.upsert("other", wire.call_dialog(D2)), wire.t0)
    [closed] = feed(tracker, wire, wire.delete(CONV), wire.t0 + 5)
    assert isinstance(closed, CallClosed) and closed.dialogId == D1 and closed.reason is CloseReason.CANCELLED
    assert [c.dialogId for c in tracker.active_calls()] == [D2]
    assert feed(tracker, wire, wire.delete(CONV), wire.t0 + 6) == []


def test_closed_conversation_stage_closes_its_accepted_call_as_ended(wire: Wire) -> None:
    tracker = invited_to_d1(wire)
    feed(tracker, wire, d1_accepted(wire), wire.t0 + 1)
    events = feed(tracker, wire, wire.upsert(CONV, stage="CLOSE"), wire.t0 + 60)
    assert [(type(e), getattr(e, "reason", None)) for e in events] == [(CallClosed, CloseReason.ENDED)]


@pytest.mark.parametrize("mode", ["shared", "view", "follow"])
def test_cobrowse_modes_are_not_calls_and_are_logged(
    wire: Wire, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = InvitationTracker()
    with caplog.at_level(logging.INFO, logger="callops.consumer.tracker"):
        body = wire.upsert(CONV, wire.call_dialog(D1, mode=mode))
        assert feed(tracker, wire, body, wire.t0) == []
        assert feed(tracker, wire, body, wire.t0 + 1) == []
        assert feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0 + 2) == []
    assert tracker.active_calls() == [] and tracker.next_deadline() is None
    notes = [r.getMessage() for r in caplog.records if mode in r.getMessage()]
    assert len(notes) == 1 and "not a call" in notes[0]


def test_messaging_dialogs_and_non_invited_states_create_nothing(wire: Wire) -> None:
    tracker = InvitationTracker()
    assert feed(tracker, wire, wire.upsert(CONV), wire.t0) == []
    assert feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0) == []
    odd = wire.call_dialog(D1, "RINGING")
    assert feed(tracker, wire, wire.upsert(CONV, odd), wire.t0) == []
    assert tracker.active_calls() == []


def test_two_invitations_in_one_conversation_are_tracked_apart(wire: Wire) -> None:
    tracker = InvitationTracker()
    second = wire.call_dialog(D2, mode="VOICE_CALL", expires=wire.t0 + 30)
    events = feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1), second), wire.t0)
    assert [(type(e), e.dialogId) for e in events] == [(CallInvited, D1), (CallInvited, D2)]
    assert tracker.next_deadline() == wire.t0 + 30
    [closed] = feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0 + 1)
    assert isinstance(closed, CallClosed) and closed.dialogId == D1
    [expired] = tracker.tick(wire.t0 + 30)
    assert (
        isinstance(expired, CallClosed) and expired.dialogId == D2 and expired.reason is CloseReason.EXPIRED
    )
    assert expired.mode == "VOICE_CALL"


def test_delete_closes_every_call_of_the_conversation(wire: Wire) -> None:
    tracker = InvitationTracker()
    feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1), wire.call_dialog(D2)), wire.t0)
    events = feed(tracker, wire, wire.delete(CONV), wire.t0 + 1)
    assert sorted(e.dialogId for e in events) == sorted([D1, D2])
    assert all(isinstance(e, CallClosed) for e in events)


def test_accepted_first_seen_after_reconnect_creates_an_accepted_call(wire: Wire) -> None:
    tracker = InvitationTracker()
    [event] = feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1, "ACCEPTED")), wire.t0 + 5)
    assert isinstance(event, CallAccepted) and event.serviceId.startswith(wire.consumer)
    [closed] = feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0 + 50)
    assert isinstance(closed, CallClosed) and closed.reason is CloseReason.ENDED


def test_invitation_already_expired_when_first_seen_is_ignored(wire: Wire) -> None:
    tracker = InvitationTracker()
    assert feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1)), wire.t0 + 500) == []
    assert tracker.active_calls() == []


def test_invitation_without_service_id_is_ignored_with_a_warning(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = InvitationTracker()
    dialog = wire.call_dialog(D1)
    del dialog["metaData"]["serviceId"]
    with caplog.at_level(logging.WARNING, logger="callops.consumer.tracker"):
        assert feed(tracker, wire, wire.upsert(CONV, dialog), wire.t0) == []
    assert any("serviceId" in r.getMessage() for r in caplog.records)


def test_state_changes_are_logged_at_debug(wire: Wire, caplog: pytest.LogCaptureFixture) -> None:
    tracker = InvitationTracker()
    with caplog.at_level(logging.DEBUG, logger="callops.consumer.tracker"):
        feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1)), wire.t0)
        feed(tracker, wire, wire.upsert(CONV, wire.closed_dialog(D1)), wire.t0 + 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("- -> INVITED" in m for m in messages)
    assert any("INVITED -> CLOSED" in m and "cancelled" in m for m in messages)


def test_events_are_frozen(wire: Wire) -> None:
    tracker = InvitationTracker()
    [event] = feed(tracker, wire, wire.upsert(CONV, wire.call_dialog(D1)), wire.t0)
    with pytest.raises(AttributeError):
        event.dialogId = "x"  # type: ignore[misc]
