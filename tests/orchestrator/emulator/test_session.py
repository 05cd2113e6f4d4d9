"""One consumer websocket's protocol (sans-I/O): InitConnection, deadlines, bad frames."""

from __future__ import annotations

import json
from typing import Any

from callops.orchestrator.emulator.auth import mint_jwt
from callops.orchestrator.emulator.model import EmulatorModel
from callops.orchestrator.emulator.session import ConsumerSession, SessionPhase
from callops.secret import Secret

NOW = 1_700_000_000.0
SECRET = Secret("the-secret", source="test")


def _session(secret: Secret | None = None) -> tuple[EmulatorModel, ConsumerSession]:
    model = EmulatorModel()
    return model, ConsumerSession(model, "le1", jwt_secret=secret, now=NOW, init_timeout=5.0)


def _frames(session: ConsumerSession, data: str | bytes, now: float = NOW) -> list[dict[str, Any]]:
    outcome = session.receive_text(data, now)
    assert outcome.close is None, outcome.close
    return [d.frame for d in outcome.deliveries]


def test_init_connection_from_the_tutorial_is_answered_200(init_frame: Any) -> None:
    model, session = _session()
    (answer,) = _frames(session, init_frame(mint_jwt("c1", now=NOW)))
    assert answer == {"kind": "resp", "reqId": "0", "code": 200, "type": ".ReqBody$StringResp"}
    assert session.phase == SessionPhase.OPEN
    assert model.sessions[session.session_id].features == frozenset({"CO_BROWSE"})


def test_init_connection_without_kind_and_with_a_numeric_id_is_accepted() -> None:
    _, session = _session()
    frame = {
        "id": 0,
        "type": "InitConnection",
        "body": {},
        "headers": {"type": ".ams.headers.ConsumerAuthentication", "jwt": mint_jwt("c1", now=NOW)},
    }
    (answer,) = _frames(session, json.dumps(frame))
    assert (answer["reqId"], answer["code"]) == ("0", 200)


def test_request_before_init_connection_is_answered_401_and_the_socket_stays_open() -> None:
    _, session = _session()
    (answer,) = _frames(session, json.dumps({"kind": "req", "id": "5", "type": "GetClock"}))
    assert (answer["reqId"], answer["code"], answer["type"]) == ("5", 401, ".ReqBody$ErrorResp")
    assert "InitConnection" in answer["body"]["details"]
    assert session.phase == SessionPhase.AWAITING_INIT


def test_no_init_connection_within_the_deadline_closes_the_socket() -> None:
    _, session = _session()
    assert session.check_deadline(NOW + 4.9) is None
    close = session.check_deadline(NOW + 5.0)
    assert close is not None and close.code == 1008 and "5 s" in close.reason


def test_authorization_header_authenticates_at_the_handshake() -> None:
    _, session = _session(SECRET)
    assert (
        session.authenticate_handshake(
            f"jwt {mint_jwt('c1', SECRET, now=NOW)}", '{"features":["CO_BROWSE"]}', NOW
        )
        is None
    )
    assert session.phase == SessionPhase.OPEN
    assert session.check_deadline(NOW + 60) is None


def test_bad_tokens_close_with_4401_naming_the_problem(init_frame: Any) -> None:
    _, session = _session(SECRET)
    outcome = session.receive_text(init_frame(mint_jwt("c1", Secret("wrong"), now=NOW)), NOW)
    assert outcome.close is not None and outcome.close.code == 4401
    assert "signature" in outcome.close.reason
    _, session = _session(SECRET)
    outcome = session.receive_text(init_frame(mint_jwt("c1", SECRET, now=NOW - 7200)), NOW)
    assert outcome.close is not None and outcome.close.code == 4401 and "expired" in outcome.close.reason
    _, session = _session(SECRET)
    close = session.authenticate_handshake("Bearer abc", None, NOW)
    assert close is not None and close.code == 4401


def test_init_connection_without_authentication_header_closes_with_4401() -> None:
    _, session = _session()
    frame = {"kind": "req", "id": "0", "type": "InitConnection", "headers": []}
    outcome = session.receive_text(json.dumps(frame), NOW)
    assert outcome.close is not None and outcome.close.code == 4401


def test_get_clock_answers_the_current_time_in_milliseconds(init_frame: Any) -> None:
    _, session = _session()
    _frames(session, init_frame(mint_jwt("c1", now=NOW)))
    (answer,) = _frames(session, json.dumps({"kind": "req", "id": "7", "type": "GetClock"}), NOW + 1)
    assert answer["body"] == {"currentTime": int((NOW + 1) * 1000)}


def test_garbage_wrong_types_and_missing_fields_get_400_answers(init_frame: Any) -> None:
    _, session = _session()
    _frames(session, init_frame(mint_jwt("c1", now=NOW)))
    cases: list[tuple[str | bytes, str, str]] = [
        (b"\xff\xfe garbage", "", "JSON"),
        ("[1, 2]", "", "JSON object"),
        ('{"kind":"req","id":"3"}', "3", "type"),
        ('{"kind":"req","id":{"x":1},"type":"GetClock"}', "", "id"),
        ('{"kind":"notification","type":"x"}', "", "requests"),
        ('{"kind":"resp","reqId":"4","code":200}', "", "requests"),
        ('{"kind":"req","id":"' + "x" * 65 + '","type":"GetClock"}', "", "id"),
        ('{"kind":"notify","id":"8","type":"GetClock"}', "8", "kind"),
    ]
    for data, req_id, word in cases:
        (answer,) = _frames(session, data)
        assert (answer["kind"], answer["reqId"], answer["code"]) == ("resp", req_id, 400), (data, answer)
        assert word in answer["body"]["details"], (data, answer)
    assert session.phase == SessionPhase.OPEN


def test_a_token_for_another_consumer_on_an_open_session_closes_it(init_frame: Any) -> None:
    model, session = _session()
    _frames(session, init_frame(mint_jwt("c1", now=NOW)))
    outcome = session.receive_text(init_frame(mint_jwt("c2", now=NOW)), NOW)
    assert outcome.close is not None and outcome.close.code == 4401
    assert session.session_id not in model.sessions


def test_a_second_init_connection_refreshes_the_token_and_keeps_subscriptions(init_frame: Any) -> None:
    model, session = _session()
    _frames(session, init_frame(mint_jwt("c1", now=NOW)))
    subscribe = {"kind": "req", "id": "s", "type": "cqm.SubscribeExConversations", "body": {}}
    _frames(session, json.dumps(subscribe))
    (answer,) = _frames(session, init_frame(mint_jwt("c1", now=NOW + 100), req_id="r"), NOW + 100)
    assert (answer["reqId"], answer["code"]) == ("r", 200)
    assert len(model.sessions[session.session_id].subscriptions) == 1
