"""Fuzzing the JSON messages: consumer websocket frames (both ends, ``callops.consumer.models``)
and CoBrowse channel messages (``callops.orchestrator.emulator.cobrowse``). Each input gives a
valid result or a clear error -- :class:`RemoteProtocolError`, an error frame or a close -- and
every frame the emulator answers with encodes as JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callops.consumer.models import (
    CallMode,
    ExConversationChangeNotification,
    Notification,
    Request,
    Response,
    decode_json,
    parse_body,
    parse_frame,
)
from callops.errors import RemoteProtocolError
from callops.orchestrator.emulator.auth import mint_jwt
from callops.orchestrator.emulator.cobrowse import CoBrowseConnection
from callops.orchestrator.emulator.model import EmulatorModel
from callops.orchestrator.emulator.session import ConsumerSession, Outcome, parse_request
from callops.testing import fuzz_examples, json_str

NOW = 1_700_000_000.0
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 2**63, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
#: JSON values two levels deep at most: cheap to draw (deep nesting has its own inputs)
JSON_VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), st.one_of(SCALARS, st.lists(SCALARS, max_size=2)), max_size=3),
)
REQUEST_TYPES = st.sampled_from(
    [
        "InitConnection",
        "GetClock",
        "cm.ConsumerRequestConversation",
        "cqm.SubscribeExConversations",
        "cqm.UnsubscribeExConversations",
        "ms.SubscribeMessagingEvents",
        "ms.PublishEvent",
        "cm.UpdateConversationField",
        "cqm.Nope",
    ]
)
FIELD_NAMES = st.sampled_from(
    [
        "convState",
        "stage",
        "subscriptionId",
        "dialogId",
        "conversationId",
        "event",
        "conversationField",
        "skillId",
        "minLastUpdatedTime",
        "fromSeq",
        "field",
        "conversationState",
        "dialog",
        "state",
        "type",
        "jwt",
        "features",
    ]
)


def _dicts_of(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(FIELD_NAMES, values, max_size=5)


@st.composite
def consumer_frames(draw: st.DrawFn) -> str | bytes:
    """Request-, response- and notification-shaped frames, deep nesting, and raw text."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.one_of(st.text(max_size=60), st.binary(max_size=60)))
    if choice == 1:
        depth = draw(st.integers(60, 30_000))
        return draw(st.sampled_from(["[", '{"a":'])) * depth
    fields: dict[str, st.SearchStrategy[Any]] = {
        "kind": st.sampled_from(["req", "resp", "notification", 7]),
        "id": st.one_of(st.text(max_size=70), NUMBERS),
        "reqId": st.one_of(st.text(max_size=10), NUMBERS),
        "code": st.one_of(st.integers(100, 600), NUMBERS, st.text(max_size=3)),
        "type": st.one_of(REQUEST_TYPES, st.text(max_size=10), NUMBERS),
        "body": st.one_of(_dicts_of(JSON_VALUES), JSON_VALUES),
        "headers": st.one_of(st.lists(_dicts_of(JSON_VALUES), max_size=2), JSON_VALUES),
    }
    keys = draw(st.sets(st.sampled_from(sorted(fields)), min_size=2, max_size=5))
    frame = {key: draw(fields[key]) for key in sorted(keys)}
    text = json.dumps(frame, allow_nan=True)
    return text if choice != 5 else text.encode()


@settings(max_examples=fuzz_examples(900))
@given(data=consumer_frames())
def test_consumer_frames_parse_on_both_ends_or_say_what_is_wrong(data: str | bytes) -> None:
    try:
        assert isinstance(parse_frame(data), Request | Response | Notification)
    except RemoteProtocolError as exc:
        assert exc.message
    try:
        assert isinstance(parse_request(data), Request)
    except RemoteProtocolError as exc:
        assert exc.message


@settings(max_examples=fuzz_examples(300))
@given(
    body=st.one_of(
        JSON_VALUES, st.fixed_dictionaries({"changes": st.lists(_dicts_of(JSON_VALUES), max_size=3)})
    )
)
def test_conversation_notifications_parse_or_name_the_field(body: Any) -> None:
    try:
        parse_body(ExConversationChangeNotification, body)
    except RemoteProtocolError as exc:
        assert "invalid" in exc.message


def _encodes(outcome: Outcome) -> None:
    for delivery in outcome.deliveries:
        assert isinstance(json.loads(delivery.encoded()), dict)
    if outcome.close is not None:
        assert outcome.close.code in (1008, 4401) and len(outcome.close.reason.encode()) <= 123


@settings(max_examples=fuzz_examples(400))
@given(frames=st.lists(consumer_frames(), min_size=1, max_size=2))
def test_an_authenticated_consumer_session_answers_every_frame(frames: list[str | bytes]) -> None:
    model = EmulatorModel(invite_expiry=60)
    session = ConsumerSession(model, "le1", jwt_secret=None, now=NOW)
    assert (
        session.authenticate_handshake(f"jwt {mint_jwt('c1', now=NOW)}", '{"features":["CO_BROWSE"]}', NOW)
        is None
    )
    conversation = session.receive_text(
        '{"kind":"req","id":"1","type":"cm.ConsumerRequestConversation"}', NOW
    )
    conversation_id = json_str(conversation.deliveries[0].frame, "body", "conversationId")
    model.invite("le1", conversation_id, CallMode.VIDEO_CALL, NOW)
    for data in frames:
        _encodes(session.receive_text(data, NOW))


COBROWSE_TYPES = st.sampled_from(["auth", "lptag", "join", "leave", "signal", "hangup", "nope"])
LPTAG_EVENTS = st.sampled_from(
    ["cobrowseOffered", "cobrowseAccepted", "cobrowseDeclined", "sliderOpened", "x"]
)


@st.composite
def cobrowse_messages(draw: st.DrawFn, service_id: str) -> str | bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.text(max_size=40), st.just("[" * 30_000), st.binary(max_size=40)))
    message: dict[str, Any] = {"type": draw(st.one_of(COBROWSE_TYPES, JSON_VALUES))}
    optional = {
        "id": st.one_of(st.text(max_size=5), NUMBERS, JSON_VALUES),
        "serviceId": st.one_of(st.just(service_id), st.text(max_size=10), NUMBERS),
        "role": st.one_of(st.sampled_from(["agent", "consumer"]), JSON_VALUES),
        "event": st.one_of(LPTAG_EVENTS, JSON_VALUES),
        "payload": st.one_of(
            st.fixed_dictionaries(
                {"serviceId": st.just(service_id), "mode": st.sampled_from(["VIDEO_CALL", "VOICE_CALL"])},
                optional={"agentId": st.text(max_size=8), "ssid": JSON_VALUES, "visitorId": JSON_VALUES},
            ),
            JSON_VALUES,
        ),
        "data": JSON_VALUES,
        "jwt": st.one_of(st.just(mint_jwt("c1", now=NOW)), st.text(max_size=20), NUMBERS),
        "token": st.text(max_size=10),
        "agentId": JSON_VALUES,
    }
    for key in sorted(draw(st.sets(st.sampled_from(sorted(optional)), max_size=4))):
        message[key] = draw(optional[key])
    return json.dumps(message, allow_nan=True)


@settings(max_examples=fuzz_examples(450))
@given(data=st.data(), role=st.sampled_from(["agent", "consumer", None]))
def test_cobrowse_connections_answer_every_message(data: st.DataObject, role: str | None) -> None:
    model = EmulatorModel(invite_expiry=60)
    consumer = ConsumerSession(model, "le1", jwt_secret=None, now=NOW)
    consumer.authenticate_handshake(f"jwt {mint_jwt('c1', now=NOW)}", '{"features":["CO_BROWSE"]}', NOW)
    answer = consumer.receive_text('{"kind":"req","id":"1","type":"cm.ConsumerRequestConversation"}', NOW)
    call, _ = model.invite(
        "le1", json_str(answer.deliveries[0].frame, "body", "conversationId"), CallMode.VIDEO_CALL, NOW
    )
    connection = CoBrowseConnection(model, "le1", jwt_secret=None, now=NOW)
    if role is not None:
        auth = {"type": "auth", "role": role, "jwt": mint_jwt("c1", now=NOW)}
        _encodes(connection.receive_text(json.dumps(auth), NOW))
    for message in data.draw(st.lists(cobrowse_messages(call.service_id), min_size=1, max_size=3)):
        outcome = connection.receive_text(message, NOW)
        _encodes(outcome)
        for delivery in outcome.deliveries:
            if delivery.frame.get("type") == "error":
                assert delivery.frame["code"] in (400, 401, 403, 404, 409, 503) and delivery.frame["details"]
    _encodes(Outcome(connection.disconnected(NOW)))


@settings(max_examples=fuzz_examples(300))
@given(data=st.one_of(st.text(max_size=200), st.binary(max_size=200), st.just("[" * 5000 + "]" * 5000)))
def test_decode_json_gives_a_value_or_a_remote_protocol_error(data: str | bytes) -> None:
    try:
        value = decode_json(data)
    except RemoteProtocolError as exc:
        assert exc.message
    else:
        json.dumps(value, allow_nan=False)  # what was accepted encodes again (no NaN, bounded depth)
