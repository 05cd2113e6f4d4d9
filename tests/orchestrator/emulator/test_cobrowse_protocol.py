"""The CoBrowse channel protocol without sockets: auth, joins, held signals, replacement."""

from __future__ import annotations

import json
from typing import Any

from callops.consumer.models import CallMode, Request
from callops.orchestrator.emulator.auth import mint_jwt
from callops.orchestrator.emulator.cobrowse import MAX_PENDING_SIGNALS, CoBrowseConnection
from callops.orchestrator.emulator.model import Call, CallEvent, EmulatorModel
from callops.testing import json_str

NOW = 1_700_000_000.0
ACCOUNT = "le1"


def _call(model: EmulatorModel) -> Call:
    sid = model.open_session()
    model.authenticate(sid, ACCOUNT, "c1", frozenset({"CO_BROWSE"}))
    answer = model.handle_request(sid, _request("cm.ConsumerRequestConversation"), NOW)[0].frame
    call, _ = model.invite(ACCOUNT, json_str(answer, "body", "conversationId"), CallMode.VIDEO_CALL, NOW)
    return call


def _request(type_: str) -> Request:
    return Request(id="1", type=type_)


def _connection(model: EmulatorModel, role: str, sub: str = "c1") -> CoBrowseConnection:
    conn = CoBrowseConnection(model, ACCOUNT, jwt_secret=None, now=NOW)
    auth: dict[str, Any] = {"type": "auth", "id": "a", "role": role}
    if role == "consumer":
        auth["jwt"] = mint_jwt(sub, now=NOW)
    (ack,) = _send(conn, auth)
    assert ack[1]["type"] == "ack", ack
    return conn


def _send(conn: CoBrowseConnection, message: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    outcome = conn.receive_text(json.dumps(message), NOW)
    assert outcome.close is None
    return [(d.session_id, d.frame) for d in outcome.deliveries]


def test_signals_are_held_for_an_absent_peer_up_to_a_limit_then_refused() -> None:
    model = EmulatorModel()
    call = _call(model)
    agent = _connection(model, "agent")
    _send(agent, {"type": "join", "serviceId": call.service_id})
    for n in range(MAX_PENDING_SIGNALS):
        assert _send(agent, {"type": "signal", "serviceId": call.service_id, "data": {"n": n}}) == []
    ((_, error),) = _send(agent, {"type": "signal", "id": "x", "serviceId": call.service_id, "data": {}})
    assert (error["type"], error["code"], error["id"]) == ("error", 503, "x")
    model.apply(call, CallEvent.CONSUMER_ACCEPT, NOW)
    consumer = _connection(model, "consumer")
    out = _send(consumer, {"type": "join", "id": "j", "serviceId": call.service_id})
    assert out[0][1]["type"] == "ack" and out[0][1]["peers"] == {"agent": True, "consumer": True}
    held = [
        frame["data"]["n"] for sid, frame in out if frame["type"] == "signal" and sid == consumer.session_id
    ]
    assert held == list(range(MAX_PENDING_SIGNALS))


def test_a_newer_socket_of_the_same_consumer_replaces_the_older_one() -> None:
    model = EmulatorModel()
    call = _call(model)
    model.apply(call, CallEvent.CONSUMER_ACCEPT, NOW)
    first = _connection(model, "consumer")
    _send(first, {"type": "join", "serviceId": call.service_id})
    second = _connection(model, "consumer")
    out = _send(second, {"type": "join", "serviceId": call.service_id})
    assert (first.session_id, {"type": "replaced", "serviceId": call.service_id}) in out
    assert call.consumer_peer == second.session_id
    assert first.disconnected(NOW) == []  # the replaced socket leaving changes nothing
    assert call.consumer_peer == second.session_id


def test_consumer_cannot_join_before_accepting_and_agents_cannot_publish_lptag_events() -> None:
    model = EmulatorModel()
    call = _call(model)
    consumer = _connection(model, "consumer")
    ((_, error),) = _send(consumer, {"type": "join", "serviceId": call.service_id})
    assert error["code"] == 409 and "cobrowseAccepted first" in error["details"]
    agent = _connection(model, "agent")
    ((_, error),) = _send(agent, {"type": "lptag", "event": "cobrowseAccepted", "payload": {}})
    assert error["code"] == 403


def test_signal_without_data_or_serviceid_names_the_field() -> None:
    model = EmulatorModel()
    call = _call(model)
    agent = _connection(model, "agent")
    _send(agent, {"type": "join", "serviceId": call.service_id})
    ((_, error),) = _send(agent, {"type": "signal", "serviceId": call.service_id})
    assert error["problems"] == [{"field": "data", "message": "missing"}]
    ((_, error),) = _send(agent, {"type": "signal", "data": {}})
    assert error["problems"][0]["field"] == "serviceId"


def test_auth_must_come_in_time_and_only_once() -> None:
    model = EmulatorModel()
    conn = CoBrowseConnection(model, ACCOUNT, jwt_secret=None, now=NOW, init_timeout=5.0)
    assert conn.check_deadline(NOW + 1) is None
    close = conn.check_deadline(NOW + 5)
    assert close is not None and close.code == 1008
    agent = _connection(model, "agent")
    ((_, error),) = _send(agent, {"type": "auth", "role": "agent"})
    assert error["code"] == 409
    bad = CoBrowseConnection(model, ACCOUNT, jwt_secret=None, now=NOW)
    outcome = bad.receive_text(json.dumps({"type": "auth", "role": "consumer", "jwt": "not-a-jwt"}), NOW)
    assert outcome.close is not None and outcome.close.code == 4401
