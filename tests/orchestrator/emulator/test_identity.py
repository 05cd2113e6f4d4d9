"""The emulator's CSDS and IDP: the pure handler, the documented answer shapes over loopback
(raw HTTP requests), the ``Host`` the answers point at, and 4407 for a token of another account."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from callops.orchestrator.emulator import Emulator, EmulatorConfig, mint_jwt, verify_jwt
from callops.orchestrator.emulator.idp import (
    IdentityConfig,
    authority,
    foreign_audience,
    handle_identity,
)
from callops.orchestrator.emulator.model import EmulatorModel
from callops.orchestrator.emulator.session import ConsumerSession
from callops.secret import Secret
from callops.testing import run_bounded

NOW = 1_700_000_000.0
SECRET = Secret("emulator-secret", source="test")
HOST = "127.0.0.1:8080"


def _handle(method: str, path: str, query: dict[str, str] | None = None, **config: Any) -> tuple[int, Any]:
    answer = handle_identity(
        method,
        path,
        query if query is not None else {"version": "1.0"},
        host=HOST,
        config=IdentityConfig.model_validate(config),
        secret=SECRET,
        now=NOW,
    )
    assert answer is not None
    return answer.status, answer.body


# --- the pure handler ---------------------------------------------------------------------------


def test_paths_outside_api_are_left_to_the_control_api() -> None:
    config = IdentityConfig()
    assert handle_identity("GET", "/healthz", {}, host=HOST, config=config, secret=None, now=NOW) is None
    assert handle_identity("GET", "/control/x", {}, host=HOST, config=config, secret=None, now=NOW) is None


def test_one_service_form_answers_service_account_and_the_emulator_as_base_uri() -> None:
    status, body = _handle("GET", "/api/account/le1/service/asyncMessagingEnt/baseURI.json")
    assert (status, body) == (200, {"service": "asyncMessagingEnt", "account": "le1", "baseURI": HOST})


def test_all_services_form_lists_every_service_pointing_at_the_emulator() -> None:
    status, body = _handle("GET", "/api/account/le1/service/baseURI.json")
    assert status == 200 and list(body) == ["baseURIs"]
    assert {e["service"] for e in body["baseURIs"]} >= {"asyncMessagingEnt", "idp"}
    assert all(e == {"service": e["service"], "account": "le1", "baseURI": HOST} for e in body["baseURIs"])


def test_signup_issues_an_hs256_jwt_for_a_fresh_consumer_with_the_configured_lifetime() -> None:
    status, body = _handle("POST", "/api/account/le1/signup", {}, signup_lifetime=30)
    assert status == 200 and list(body) == ["jwt"]
    claims = verify_jwt(body["jwt"], SECRET, now=NOW + 29)
    assert claims.raw["aud"] == "acc:le1" and claims.raw["exp"] == NOW + 30 and len(claims.sub) == 36
    _, again = _handle("POST", "/api/account/le1/signup", {})
    assert verify_jwt(again["jwt"], SECRET, now=NOW).sub != claims.sub


@pytest.mark.parametrize(
    ("method", "path", "query", "config", "status", "needle"),
    [
        ("GET", "/api/account/nobody/service/baseURI.json", None, {"accounts": ["le1"]}, 404, "account"),
        ("POST", "/api/account/nobody/signup", {}, {"accounts": ["le1"]}, 404, "account"),
        (
            "GET",
            "/api/account/le1/service/idp/baseURI.json",
            None,
            {"services": ["asyncMessagingEnt"]},
            404,
            "idp",
        ),
        ("GET", "/api/account/le1/service/baseURI.json", {"version": "2.0"}, {}, 400, "version=1.0"),
        ("POST", "/api/account/le1/service/baseURI.json", None, {}, 405, "use GET"),
        ("GET", "/api/account/le1/signup", {}, {}, 405, "use POST"),
        ("GET", "/api/account/le1/somewhere", None, {}, 404, "no route"),
    ],
)
def test_errors_use_the_control_api_error_body(
    method: str, path: str, query: dict[str, str] | None, config: dict[str, Any], status: int, needle: str
) -> None:
    got, body = _handle(method, path, query, **config)
    assert got == status and body["code"] == status and body["title"] and needle in body["details"]


def test_the_host_header_is_used_when_well_formed() -> None:
    assert authority("198.51.100.7:9000", HOST) == "198.51.100.7:9000"
    assert authority("[::1]:9000", HOST) == "[::1]:9000"
    assert authority("evil/path", HOST) == HOST
    assert authority(None, HOST) == HOST


def test_a_token_for_another_account_closes_the_consumer_session_with_4407(init_frame: Any) -> None:
    assert foreign_audience({"aud": "acc:le2"}, "le1") is not None
    assert foreign_audience({"aud": ["acc:le1", "acc:le2"]}, "le1") is None
    assert foreign_audience({}, "le1") is None
    session = ConsumerSession(EmulatorModel(), "le1", jwt_secret=SECRET, now=NOW)
    token = mint_jwt("c1", SECRET, now=NOW, extra={"aud": "acc:le2"})
    outcome = session.receive_text(init_frame(token), NOW)
    assert (
        outcome.close is not None and outcome.close.code == 4407 and "another account" in outcome.close.reason
    )


# --- over loopback ------------------------------------------------------------------------------


async def _raw(port: int, request: bytes) -> tuple[int, Any]:
    """One raw HTTP/1.1 exchange (the request bytes exactly as a client would send them)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def test_the_emulator_serves_csds_and_signup_on_its_port_pointing_at_the_host_the_client_used() -> None:
    async def body() -> None:
        config = EmulatorConfig(jwt_secret=SECRET, identity=IdentityConfig(signup_lifetime=60))
        async with Emulator(config) as emu:
            status, listing = await _raw(
                emu.port,
                b"GET /api/account/le1/service/baseURI.json?version=1.0 HTTP/1.1\r\n"
                b"Host: 203.0.113.5:8443\r\nAccept: application/json\r\n\r\n",
            )
            assert status == 200
            assert {e["baseURI"] for e in listing["baseURIs"]} == {"203.0.113.5:8443"}
            status, one = await _raw(
                emu.port,
                # HTTP/1.0 needs no Host header: the baseURI falls back to the listening address
                b"GET /api/account/le1/service/idp/baseURI.json?version=1.0 HTTP/1.0\r\n\r\n",
            )
            assert (status, one) == (
                200,
                {"service": "idp", "account": "le1", "baseURI": f"127.0.0.1:{emu.port}"},
            )
            status, signed = await _raw(
                emu.port,
                f"POST /api/account/le1/signup HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
                "Content-Length: 0\r\n\r\n".encode(),
            )
            assert (
                status == 200 and verify_jwt(signed["jwt"], SECRET, now=time.time()).raw["aud"] == "acc:le1"
            )
            status, health = await _raw(emu.port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert (status, health) == (200, {"status": "ok"})  # the control API is untouched

    run_bounded(body(), 30)
