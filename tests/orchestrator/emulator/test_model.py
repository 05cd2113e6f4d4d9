"""The conversation model and the call state machine, without sockets or an event loop."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from callops.consumer.models import (
    CallMode,
    Dialog,
    ExConversationChangeNotification,
    Request,
    SessionState,
)
from callops.orchestrator.emulator.model import (
    CALL_TRANSITIONS,
    CallEvent,
    CallStateError,
    Delivery,
    EmulatorModel,
    ModelError,
)
from callops.testing import json_at, json_str

NOW = 1_502_893_041.905
ACCOUNT = "le83624296"
CONSUMER = "cc05f2b9-916b-496e-89fe-66a46d975ae2"

#: The tutorial's COBROWSE dialog, key for key.
SEED_DIALOG_KEYS = [
    "dialogId",
    "participants",
    "dialogType",
    "channelType",
    "metaData",
    "state",
    "creationTs",
    "metaDataLastUpdateTs",
]
SEED_METADATA_KEYS = ["serviceId", "mode", "expires", "sessionState", "dialogId"]


def _model(expiry: float = 120.0) -> EmulatorModel:
    counter = itertools.count(1)
    return EmulatorModel(invite_expiry=expiry, new_id=lambda: f"id-{next(counter)}")


def _consumer(model: EmulatorModel, features: frozenset[str] = frozenset({"CO_BROWSE"})) -> int:
    sid = model.open_session()
    model.authenticate(sid, ACCOUNT, CONSUMER, features)
    return sid


def _req(type_: str, body: Any = None, req_id: str = "1") -> Request:
    return Request(id=req_id, type=type_, body=body)


def _open(model: EmulatorModel, sid: int) -> str:
    out = model.handle_request(sid, _req("cm.ConsumerRequestConversation"), NOW)
    conversation_id = json_str(out[0].frame, "body", "conversationId")
    model.handle_request(sid, _req("cqm.SubscribeExConversations", {"convState": ["OPEN"]}), NOW)
    return conversation_id


def _dialogs(delivery: Delivery) -> list[dict[str, Any]]:
    dialogs = json_at(delivery.frame, "body", "changes", 0, "result", "conversationDetails", "dialogs")
    assert isinstance(dialogs, list)
    out = []
    for dialog in dialogs:
        assert isinstance(dialog, dict), dialog
        out.append(dialog)
    return out


def test_transition_table_covers_the_documented_life_of_a_call() -> None:
    assert CALL_TRANSITIONS[(SessionState.INVITED, CallEvent.CONSUMER_ACCEPT)] == SessionState.ACCEPTED
    for event in (CallEvent.CONSUMER_DECLINE, CallEvent.AGENT_CANCEL, CallEvent.EXPIRE):
        assert CALL_TRANSITIONS[(SessionState.INVITED, event)] == SessionState.CLOSED
    for event in (CallEvent.CONSUMER_HANG_UP, CallEvent.AGENT_HANG_UP):
        assert CALL_TRANSITIONS[(SessionState.ACCEPTED, event)] == SessionState.CLOSED
    assert not [key for key in CALL_TRANSITIONS if key[0] == SessionState.CLOSED]


def test_request_conversation_assigns_an_agent_and_subscribers_get_an_immediate_listing() -> None:
    model = _model()
    sid = _consumer(model)
    out = model.handle_request(sid, _req("cm.ConsumerRequestConversation"), NOW)
    assert out[0].frame == {
        "kind": "resp",
        "reqId": "1",
        "code": 200,
        "type": "cm.RequestConversationResponse",
        "body": {"conversationId": "id-1"},
    }
    out = model.handle_request(sid, _req("cqm.SubscribeExConversations", {"convState": "OPEN"}, "2"), NOW)
    assert out[0].frame["body"] == {"subscriptionId": "id-2"}
    listing = ExConversationChangeNotification.model_validate(out[1].frame["body"])
    details = listing.changes[0].result.conversationDetails
    assert details is not None
    roles = {p.role: p.id for p in details.all_participants()}
    assert roles == {"ASSIGNED_AGENT": "le83624296.356285412", "CONSUMER": CONSUMER}


def test_subscription_listing_is_empty_without_conversations() -> None:
    model = _model()
    sid = _consumer(model)
    out = model.handle_request(sid, _req("cqm.SubscribeExConversations", {"convState": ["OPEN"]}), NOW)
    assert json_at(out[1].frame, "body", "changes") == []


def test_invitation_is_an_upsert_with_the_cobrowse_dialog_shaped_like_the_tutorial() -> None:
    model = _model(expiry=90.0)
    sid = _consumer(model)
    conversation_id = _open(model, sid)
    call, out = model.invite(ACCOUNT, conversation_id, CallMode.VIDEO_CALL, NOW)
    assert [d.session_id for d in out] == [sid]
    main, dialog = _dialogs(out[0])
    assert main["dialogType"] == "MAIN"
    assert list(dialog) == SEED_DIALOG_KEYS
    assert list(dialog["metaData"]) == SEED_METADATA_KEYS
    assert dialog["participants"] == [CONSUMER, "le83624296.356285412"]
    assert (dialog["dialogType"], dialog["channelType"], dialog["state"]) == ("OTHER", "COBROWSE", "OPEN")
    meta = dialog["metaData"]
    assert meta["serviceId"] == f"{CONSUMER}#{call.service_id.split('#')[1]}"
    assert (meta["mode"], meta["sessionState"], meta["dialogId"]) == (
        "VIDEO_CALL",
        "INVITED",
        dialog["dialogId"],
    )
    assert meta["expires"] == pytest.approx(NOW + 90.0)
    assert dialog["creationTs"] == dialog["metaDataLastUpdateTs"] == int(NOW * 1000)
    Dialog.model_validate(dialog)  # the consumer's wire model accepts it


def test_accept_then_join_sends_accepted_twice_with_notification_key_accepted_then_joined() -> None:
    model = _model()
    sid = _consumer(model)
    call, _ = model.invite(ACCOUNT, _open(model, sid), CallMode.VOICE_CALL, NOW)
    accepted = model.apply(call, CallEvent.CONSUMER_ACCEPT, NOW + 1)
    joined = model.apply(call, CallEvent.CONSUMER_JOIN, NOW + 2)
    assert _dialogs(accepted[0])[1]["metaData"]["notificationKey"] == "accepted"
    assert _dialogs(joined[0])[1]["metaData"]["notificationKey"] == "joined"
    assert _dialogs(joined[0])[1]["metaData"]["sessionState"] == "ACCEPTED"
    assert model.apply(call, CallEvent.CONSUMER_JOIN, NOW + 3) == []  # a re-join tells nothing new


def test_agent_cancel_sends_the_partial_closed_update_of_the_tutorial() -> None:
    model = _model()
    sid = _consumer(model)
    conversation_id = _open(model, sid)
    call, _ = model.invite(ACCOUNT, conversation_id, CallMode.VIDEO_CALL, NOW)
    ended, out = model.end_call(ACCOUNT, conversation_id, NOW + 5)
    assert ended is call and call.state == SessionState.CLOSED
    assert _dialogs(out[0]) == [
        {
            "dialogId": call.dialog_id,
            "dialogType": "OTHER",
            "channelType": "COBROWSE",
            "metaData": {"sessionState": "CLOSED"},
        }
    ]
    assert call.closed_reason == "agent cancels"


def test_invitation_expires_as_closed_at_its_expiry_and_not_before() -> None:
    model = _model(expiry=120.0)
    sid = _consumer(model)
    call, _ = model.invite(ACCOUNT, _open(model, sid), CallMode.VIDEO_CALL, NOW)
    assert model.next_expiry() == pytest.approx(NOW + 120)
    assert model.expire_due(NOW + 119.9) == []
    out = model.expire_due(NOW + 120.0)
    assert _dialogs(out[0])[0]["metaData"] == {"sessionState": "CLOSED"}
    assert call.closed_reason == "invitation expired"
    assert model.next_expiry() is None


def test_accept_after_expiry_is_refused_naming_the_state() -> None:
    model = _model(expiry=1.0)
    sid = _consumer(model)
    call, _ = model.invite(ACCOUNT, _open(model, sid), CallMode.VIDEO_CALL, NOW)
    model.expire_due(NOW + 2)
    with pytest.raises(CallStateError, match="state CLOSED \\(invitation expired\\)"):
        model.apply(call, CallEvent.CONSUMER_ACCEPT, NOW + 3)


def test_accepted_call_does_not_expire() -> None:
    model = _model(expiry=1.0)
    sid = _consumer(model)
    call, _ = model.invite(ACCOUNT, _open(model, sid), CallMode.VIDEO_CALL, NOW)
    model.apply(call, CallEvent.CONSUMER_ACCEPT, NOW + 0.5)
    assert model.expire_due(NOW + 10) == []
    assert call.state == SessionState.ACCEPTED


def test_invite_refuses_a_second_live_call_an_unknown_conversation_and_a_consumer_without_co_browse() -> None:
    model = _model()
    sid = _consumer(model)
    conversation_id = _open(model, sid)
    model.invite(ACCOUNT, conversation_id, CallMode.VIDEO_CALL, NOW)
    with pytest.raises(ModelError, match="409 Call in progress"):
        model.invite(ACCOUNT, conversation_id, CallMode.VIDEO_CALL, NOW)
    with pytest.raises(ModelError, match="404 Unknown conversation"):
        model.invite(ACCOUNT, "nope", CallMode.VIDEO_CALL, NOW)
    other = model.open_session()
    model.authenticate(other, ACCOUNT, "no-features", frozenset())
    conv = model.handle_request(other, _req("cm.ConsumerRequestConversation"), NOW)[0].frame
    with pytest.raises(ModelError, match="CO_BROWSE"):
        model.invite(ACCOUNT, json_str(conv, "body", "conversationId"), CallMode.VIDEO_CALL, NOW)


def test_a_new_call_can_follow_a_closed_one() -> None:
    model = _model()
    sid = _consumer(model)
    conversation_id = _open(model, sid)
    model.invite(ACCOUNT, conversation_id, CallMode.VIDEO_CALL, NOW)
    model.end_call(ACCOUNT, conversation_id, NOW + 1)
    second, _ = model.invite(ACCOUNT, conversation_id, CallMode.VOICE_CALL, NOW + 2)
    (view,) = [c.view() for c in model.conversations(ACCOUNT)]
    assert json_at(view, "call", "serviceId") == second.service_id
    calls = json_at(view, "calls")
    assert isinstance(calls, list)
    assert [json_at(c, "sessionState") for c in calls] == ["CLOSED", "INVITED"]


def test_end_call_without_a_call_is_a_conflict() -> None:
    model = _model()
    sid = _consumer(model)
    with pytest.raises(ModelError, match="409 No call"):
        model.end_call(ACCOUNT, _open(model, sid), NOW)


def test_closing_the_conversation_closes_its_call() -> None:
    model = _model()
    sid = _consumer(model)
    conversation_id = _open(model, sid)
    call, _ = model.invite(ACCOUNT, conversation_id, CallMode.VIDEO_CALL, NOW)
    body = {
        "conversationId": conversation_id,
        "conversationField": {"field": "ConversationStateField", "conversationState": "CLOSE"},
    }
    out = model.handle_request(sid, _req("cm.UpdateConversationField", body), NOW + 1)
    assert out[0].frame["code"] == 200
    assert call.state == SessionState.CLOSED
    assert json_at(out[-1].frame, "body", "changes", 0, "result", "conversationDetails", "stage") == "CLOSE"


def test_unknown_request_type_and_bad_bodies_get_400_in_the_unified_error_format() -> None:
    model = _model()
    sid = _consumer(model)
    (out,) = model.handle_request(sid, _req("cm.Nonsense"), NOW)
    assert out.frame["code"] == 400 and out.frame["type"] == ".ReqBody$ErrorResp"
    body = json_at(out.frame, "body")
    assert isinstance(body, dict) and set(body) == {"title", "details", "errorCode"}
    (out,) = model.handle_request(sid, _req("ms.PublishEvent", {"event": {}}), NOW)
    assert out.frame["code"] == 400 and "dialogId" in json_str(out.frame, "body", "details")
    (out,) = model.handle_request(sid, _req("cqm.UnsubscribeExConversations", {"subscriptionId": 5}), NOW)
    assert out.frame["code"] == 400 and "subscriptionId" in json_str(out.frame, "body", "details")


def test_a_second_open_conversation_is_refused() -> None:
    model = _model()
    sid = _consumer(model)
    first = _open(model, sid)
    (out,) = model.handle_request(sid, _req("cm.ConsumerRequestConversation"), NOW)
    assert out.frame["code"] == 400 and first in json_str(out.frame, "body", "details")


def test_published_messages_reach_dialog_subscribers_with_increasing_sequence() -> None:
    model = _model()
    sid = _consumer(model)
    conversation_id = _open(model, sid)
    sub = {"dialogId": conversation_id, "conversationId": conversation_id, "fromSeq": 0}
    model.handle_request(sid, _req("ms.SubscribeMessagingEvents", sub), NOW)
    event = {"type": "ContentEvent", "contentType": "text/plain", "message": "hi"}
    body = {"dialogId": conversation_id, "conversationId": conversation_id, "event": event}
    answer, note = model.handle_request(sid, _req("ms.PublishEvent", body), NOW)
    assert answer.frame["body"] == {"sequence": 0}
    assert json_at(note.frame, "body", "changes", 0, "event") == event
    answer, _ = model.handle_request(sid, _req("ms.PublishEvent", body, "2"), NOW)
    assert answer.frame["body"] == {"sequence": 1}


def test_notifications_go_to_every_subscription_of_the_consumer_only() -> None:
    model = _model()
    sid = _consumer(model)
    conversation_id = _open(model, sid)
    second = _consumer(model)
    model.handle_request(second, _req("cqm.SubscribeExConversations", {}), NOW)
    stranger = model.open_session()
    model.authenticate(stranger, ACCOUNT, "someone-else", frozenset({"CO_BROWSE"}))
    model.handle_request(stranger, _req("cqm.SubscribeExConversations", {}), NOW)
    _, out = model.invite(ACCOUNT, conversation_id, CallMode.VIDEO_CALL, NOW)
    assert sorted(d.session_id for d in out) == sorted([sid, second])
    model.close_session(second)
    _, out = model.end_call(ACCOUNT, conversation_id, NOW)
    assert [d.session_id for d in out] == [sid]
