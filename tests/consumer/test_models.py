"""Wire models: the seed's dialog and the protocol reference's examples parse and round-trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callops.consumer.models import (
    CallMetaData,
    ConsumerAuthentication,
    ConsumerRequestConversation,
    Dialog,
    ErrorBody,
    ExConversationChangeNotification,
    GetClockResponse,
    Notification,
    PublishEvent,
    PublishEventResponse,
    Request,
    RequestConversationResponse,
    Response,
    SubscribeExConversations,
    SubscribeExConversationsResponse,
    SubscribeMessagingEvents,
    UnsubscribeExConversations,
    UpdateConversationField,
    WireModel,
    parse_body,
    parse_frame,
)
from callops.errors import RemoteProtocolError

SEED_DIALOG = """{
"dialogId": "c26b9d3b-e943-42af-8047-aba830de64ea",
"participants": ["cc05f2b9-916b-496e-89fe-66a46d975ae2", "le83624296.356285412"],
"dialogType": "OTHER",
"channelType": "COBROWSE",
"metaData": {
"serviceId": "cc05f2b9-916b-496e-89fe-66a46d975ae2#7904fffd-fc68-4d93-b611-4dc06ab26bf4",
"mode": "VIDEO_CALL",
"expires": 1.502893131855E9,
"sessionState": "INVITED",
"dialogId": "c26b9d3b-e943-42af-8047-aba830de64ea"
},
"state": "OPEN",
"creationTs": 1502893041905,
"metaDataLastUpdateTs": 1502893041905
}"""

SEED_CLOSED = """{
"dialogId": "c26b9d3b-e943-42af-8047-aba830de64ea",
"dialogType": "OTHER",
"channelType": "COBROWSE",
"metaData": {"sessionState": "CLOSED"}
}"""

REFERENCE_NOTIFICATION = """{"kind":"notification","type":"cqm.ExConversationChangeNotification","body":{
 "subscriptionId":"1e25cbe8-x",
 "changes":[{"type":"UPSERT","result":{
   "convId":"0b1c-x","effectiveTTR":-1,
   "conversationDetails":{
     "skillId":"496645413","brandId":"64467156",
     "participants":[{"id":"29c3-x","role":"ASSIGNED_AGENT"},{"id":"5e9e-x","role":"CONSUMER"}],
     "dialogs":[{"dialogId":"0b1c-x","participantsDetails":[{"id":"5e9e-x","role":"CONSUMER"},
                 {"id":"29c3-x","role":"ASSIGNED_AGENT"}],
                 "dialogType":"MAIN","channelType":"MESSAGING","state":"OPEN","creationTs":1539674197833,
                 "metaDataLastUpdateTs":1539674197833}],
     "state":"OPEN","stage":"OPEN","startTs":1538486163083,"metaDataLastUpdateTs":1538499227108,
     "ttr":{"ttrType":"PRIORITIZED","value":600}}}}]}}"""

INIT_CONNECTION = """{"kind":"req","id":"0","type":"InitConnection","headers":[
  {"type":".ams.headers.ClientProperties","deviceFamily":"DESKTOP","os":"WINDOWS","features":["CO_BROWSE"]},
  {"type":".ams.headers.ConsumerAuthentication","jwt":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}]}"""

FRAMES = [
    INIT_CONNECTION,
    '{"kind":"resp","reqId":"0","code":200}',
    '{"kind":"req","id":"7","type":"GetClock"}',
    '{"kind":"resp","reqId":"39ca8b7a","code":502,"type":".ReqBody$ErrorResp",'
    '"body":{"title":"Unable to access resource","details":"Failed to connect to AC for setting delay",'
    '"errorCode":50201}}',
    '{"kind":"resp","reqId":"1","code":200,"type":"cm.RequestConversationResponse",'
    '"body":{"conversationId":"7507be78-x"}}',
    '{"kind":"req","id":"3","type":"cqm.SubscribeExConversations","body":{"convState":["OPEN"]}}',
    '{"kind":"resp","reqId":"3","code":200,"type":"cqm.SubscribeExConversationsResponse",'
    '"body":{"subscriptionId":"1e25-x"}}',
    REFERENCE_NOTIFICATION,
    '{"kind":"req","id":"4","type":"cqm.UnsubscribeExConversations","body":{"subscriptionId":"1e25-x"}}',
    '{"kind":"req","id":"5","type":"ms.SubscribeMessagingEvents",'
    '"body":{"dialogId":"d","conversationId":"c","fromSeq":0}}',
    '{"kind":"resp","reqId":"5","code":200,"type":".ams.GenericSubscribeResponse"}',
    '{"kind":"req","id":"6","type":"ms.PublishEvent","body":{"dialogId":"d","conversationId":"c",'
    '"event":{"type":"ContentEvent","contentType":"text/plain","message":"hi"}}}',
    '{"kind":"resp","reqId":"6","code":200,"type":"ms.PublishEventResponse","body":{"sequence":4}}',
    '{"kind":"resp","reqId":"7","code":200,"type":".GetClock$Response","body":{"currentTime":1513813587308}}',
    '{"kind":"req","id":"8","type":"cm.UpdateConversationField","body":{"conversationId":"c",'
    '"conversationField":{"field":"DialogChange","type":"UPDATE",'
    '"dialog":{"dialogId":"d","state":"CLOSE","closedCause":"Closed by consumer"}}}}',
    '{"kind":"notification","type":"ms.MessagingEventNotification","body":{"changes":[{"sequence":1,'
    '"originatorId":"a","originatorMetadata":{"id":"a","role":"ASSIGNED_AGENT"},"serverTimestamp":1,'
    '"event":{"type":"ChatStateEvent","chatState":"COMPOSING"},"conversationId":"c","dialogId":"d"}]}}',
]


def _canonical(text: str) -> Any:
    return json.loads(text)


@pytest.mark.parametrize("text", FRAMES)
def test_protocol_reference_frames_parse_and_round_trip(text: str) -> None:
    frame = parse_frame(text)
    assert frame.wire() == _canonical(text)


def test_seed_dialog_parses_with_expires_in_seconds_and_round_trips() -> None:
    dialog = Dialog.model_validate_json(SEED_DIALOG)
    assert dialog.is_cobrowse and dialog.dialogType == "OTHER"
    assert dialog.metaData is not None
    assert dialog.metaData.expires == pytest.approx(1_502_893_131.855)
    assert dialog.metaData.mode == "VIDEO_CALL" and dialog.metaData.sessionState == "INVITED"
    assert dialog.creationTs == 1502893041905  # milliseconds
    assert [p.id for p in dialog.all_participants()] == [
        "cc05f2b9-916b-496e-89fe-66a46d975ae2",
        "le83624296.356285412",
    ]
    assert dialog.wire() == json.loads(SEED_DIALOG)


def test_seed_partial_closed_update_parses_and_round_trips() -> None:
    dialog = Dialog.model_validate_json(SEED_CLOSED)
    assert dialog.metaData == CallMetaData(sessionState="CLOSED")
    assert dialog.wire() == json.loads(SEED_CLOSED)


def test_reference_notification_body_has_conversation_details_and_dialogs() -> None:
    frame = parse_frame(REFERENCE_NOTIFICATION)
    assert isinstance(frame, Notification)
    body = parse_body(ExConversationChangeNotification, frame.body)
    [change] = body.changes
    details = change.result.conversationDetails
    assert details is not None and details.dialogs is not None
    assert [p.role for p in details.all_participants()] == ["ASSIGNED_AGENT", "CONSUMER"]
    assert details.dialogs[0].all_participants()[1].role == "ASSIGNED_AGENT"
    assert details.ttr == {"ttrType": "PRIORITIZED", "value": 600}


def test_init_connection_headers_parse_into_their_models() -> None:
    frame = parse_frame(INIT_CONNECTION)
    assert isinstance(frame, Request)
    auth = frame.header(".ams.headers.ConsumerAuthentication")
    assert auth is not None
    assert ConsumerAuthentication.model_validate(auth).jwt.startswith("eyJ")
    assert "eyJ" not in repr(ConsumerAuthentication.model_validate(auth))


def test_request_and_answer_bodies_parse() -> None:
    full = {
        "channelType": "MESSAGING",
        "skillId": "123",
        "ttrDefName": None,
        "campaignInfo": {"campaignId": 1, "engagementId": 2},
        "conversationContext": {
            "visitorId": "v",
            "sessionId": "s",
            "interactionContextId": "1",
            "type": "SharkContext",
            "lang": "en-US",
        },
    }
    assert parse_body(ConsumerRequestConversation, full).wire() == {
        k: v for k, v in full.items() if v is not None
    }
    assert parse_body(SubscribeExConversations, {"convState": "OPEN"}).convState == ["OPEN"]
    assert parse_body(RequestConversationResponse, {"conversationId": "c"}).conversationId == "c"
    assert parse_body(SubscribeExConversationsResponse, {"subscriptionId": "s"}).subscriptionId == "s"
    assert parse_body(GetClockResponse, {"currentTime": 1513813587308}).currentTime == 1513813587308
    assert parse_body(ErrorBody, {"title": "t", "errorCode": 50201}).errorCode == 50201
    close = {
        "conversationId": "c",
        "conversationField": {"field": "ConversationStateField", "conversationState": "CLOSE"},
    }
    assert parse_body(UpdateConversationField, close).conversationField[0].conversationState == "CLOSE"
    event = {
        "dialogId": "d",
        "conversationId": "c",
        "event": {"type": "ContentEvent", "contentType": "text/plain", "message": "hi"},
    }
    assert parse_body(PublishEvent, event).wire() == event


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (UnsubscribeExConversations, {"subscriptionId": "s"}),
        (SubscribeMessagingEvents, {"dialogId": "d", "conversationId": "c", "fromSeq": 0}),
        (PublishEventResponse, {"sequence": 4}),
        (
            UpdateConversationField,
            {
                "conversationId": "c",
                "conversationField": [
                    {
                        "field": "DialogChange",
                        "type": "UPDATE",
                        "dialog": {"dialogId": "d", "state": "CLOSE", "closedCause": "Closed by consumer"},
                    }
                ],
            },
        ),
    ],
)
def test_reference_bodies_round_trip(model: type[WireModel], body: dict[str, Any]) -> None:
    assert parse_body(model, body).wire() == body


def test_unknown_fields_are_kept_and_never_fatal() -> None:
    dialog = Dialog.model_validate({**json.loads(SEED_DIALOG), "futureField": {"x": 1}})
    assert dialog.wire()["futureField"] == {"x": 1}
    frame = parse_frame('{"kind":"resp","reqId":5,"code":200,"newThing":true}')
    assert isinstance(frame, Response) and frame.reqId == "5" and frame.wire()["newThing"] is True


def test_participants_details_are_accepted_on_call_dialogs() -> None:
    raw = json.loads(SEED_DIALOG)
    raw["participantsDetails"] = raw.pop("participants")
    dialog = Dialog.model_validate(raw)
    assert len(dialog.all_participants()) == 2


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"kind":"what"}', "kind"),
        ('{"kind":"resp","code":"x"}', "reqId"),
    ],
)
def test_malformed_frames_raise_remote_protocol_errors_that_say_why(text: str, needle: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_frame(text)
    assert needle in str(info.value)


def test_bad_notification_body_names_the_field() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_body(ExConversationChangeNotification, {"changes": [{"type": "UPSERT", "result": {}}]})
    assert "changes.0.result.convId" in str(info.value)
