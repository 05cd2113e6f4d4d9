"""Domain discovery (CSDS): both forms against the emulator over loopback, the per-account cache,
and clear errors for an unknown account, a missing service, a non-JSON answer, slow and dead endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from callops.consumer.discovery import (
    DomainDiscovery,
    csds_base,
    csds_url,
    parse_service,
    parse_services,
)
from callops.errors import DeadlineExceeded, NetworkError, RemoteProtocolError, UsageError
from callops.orchestrator.emulator import Emulator, EmulatorConfig
from callops.orchestrator.emulator.idp import IdentityConfig
from callops.testing import run_bounded
from callops.turn.coturn import free_port

ACCOUNT = "le83624296"


def _emulator(**identity: object) -> Emulator:
    return Emulator(EmulatorConfig(identity=IdentityConfig.model_validate(identity)))


# --- the pure part ------------------------------------------------------------------------------


def test_csds_urls_have_the_documented_shapes() -> None:
    base = csds_base(None)
    assert base == "https://api.liveperson.net"
    assert csds_url(base, "123", "asyncMessagingEnt") == (
        "https://api.liveperson.net/api/account/123/service/asyncMessagingEnt/baseURI.json?version=1.0"
    )
    assert (
        csds_url(base, "123") == "https://api.liveperson.net/api/account/123/service/baseURI.json?version=1.0"
    )
    assert csds_base("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"


@pytest.mark.parametrize("bad", ["ftp://x", "127.0.0.1:8080", "https://", "https://h/?q=1"])
def test_a_bad_csds_base_is_a_usage_error_naming_the_fix(bad: str) -> None:
    with pytest.raises(UsageError, match="CSDS URL") as info:
        csds_base(bad)
    assert info.value.exit_code == 2 and info.value.hint


def test_answers_of_both_forms_are_parsed_and_unknown_fields_ignored() -> None:
    one = {"service": "idp", "account": "123", "baseURI": "va.idp.liveperson.net", "extra": 1}
    assert parse_service(one, "idp", where="CSDS") == "va.idp.liveperson.net"
    listing = {
        "baseURIs": [
            {"service": "asyncMessagingEnt", "account": "123", "baseURI": "va.msg.liveperson.net"},
            {"service": "idp", "account": "123", "baseURI": "https://va.idp.liveperson.net/"},
        ]
    }
    assert parse_services(listing, where="CSDS") == {
        "asyncMessagingEnt": "va.msg.liveperson.net",
        "idp": "va.idp.liveperson.net",
    }
    assert parse_service(listing, "idp", where="CSDS") == "va.idp.liveperson.net"


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        ({"service": "idp", "account": "1"}, "baseURI"),
        ({"service": "msgHist", "account": "1", "baseURI": "h"}, "answer is for 'msgHist'"),
        ({"service": "idp", "account": "1", "baseURI": "h/with/path"}, "not a host"),
        ([1, 2], "(top level)"),
    ],
)
def test_malformed_answers_are_protocol_errors_naming_the_field(answer: object, needle: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_service(answer, "idp", where="CSDS x")
    assert needle in str(info.value)


# --- against the emulator -----------------------------------------------------------------------


def test_all_services_form_points_at_the_emulator_and_is_cached_per_account() -> None:
    async def body() -> None:
        async with _emulator() as emu:
            discovery = DomainDiscovery(emu.base_url)
            authority = f"127.0.0.1:{emu.port}"
            services = await discovery.services(ACCOUNT)
            assert services["asyncMessagingEnt"] == services["idp"] == authority
            domains = await discovery.consumer_domains(ACCOUNT)
            assert domains.consumer_url == f"ws://{authority}/ws_api/account/{ACCOUNT}/messaging/consumer?v=3"
            assert domains.idp_url == f"http://{authority}"
            assert await discovery.service(ACCOUNT, "idp") == authority
            assert discovery.requests == 1  # one all-services request served all three lookups
            await discovery.services("other-account")
            assert discovery.requests == 2

    run_bounded(body(), 30)


def test_one_service_form_answers_one_entry() -> None:
    async def body() -> None:
        async with _emulator() as emu:
            discovery = DomainDiscovery(emu.base_url)
            assert await discovery.service(ACCOUNT, "asyncMessagingEnt") == f"127.0.0.1:{emu.port}"
            assert await discovery.service(ACCOUNT, "asyncMessagingEnt") == f"127.0.0.1:{emu.port}"
            assert discovery.requests == 1

    run_bounded(body(), 30)


def test_an_unknown_account_is_a_usage_error_that_does_not_print_the_account(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        async with _emulator(accounts=[ACCOUNT]) as emu:
            discovery = DomainDiscovery(emu.base_url)
            with pytest.raises(UsageError, match="account unknown") as info:
                await discovery.consumer_domains("999999")
            assert info.value.exit_code == 2 and "--account" in (info.value.hint or "")
            assert "999999" not in str(info.value)
            with pytest.raises(UsageError, match="account unknown"):
                await discovery.service("999999", "idp")
            assert (await discovery.consumer_domains(ACCOUNT)).account == ACCOUNT

    with caplog.at_level(logging.WARNING):
        run_bounded(body(), 30)
    assert all(ACCOUNT not in r.getMessage() and "999999" not in r.getMessage() for r in caplog.records)


def test_a_csds_answer_without_the_idp_service_is_a_clear_error() -> None:
    async def body() -> None:
        async with _emulator(services=["asyncMessagingEnt"]) as emu:
            discovery = DomainDiscovery(emu.base_url)
            with pytest.raises(UsageError, match="no 'idp' service") as info:
                await discovery.consumer_domains(ACCOUNT)
            assert "asyncMessagingEnt" in str(info.value)  # what the account does list
            assert discovery.requests == 2  # the listing, then the one-service form (404)

    run_bounded(body(), 30)


@asynccontextmanager
async def _http_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A raw TCP server on loopback (for answers the emulator never gives)."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


def _html_answer(
    status: str, page: bytes
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A handler that reads one request and answers ``HTTP/1.1 {status}`` with an HTML ``page``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/html\r\nConnection: close\r\n".encode()
            + f"Content-Length: {len(page)}\r\n\r\n".encode()
            + page
        )
        await writer.drain()
        writer.close()

    return answer


def test_a_non_json_answer_is_a_protocol_error_naming_the_content_type() -> None:
    async def body() -> None:
        async with _http_server(_html_answer("200 OK", b"<html>login</html>")) as url:
            with pytest.raises(RemoteProtocolError, match="not JSON") as info:
                await DomainDiscovery(url).services(ACCOUNT)
            assert "text/html" in str(info.value) and info.value.exit_code == 7

    run_bounded(body(), 30)


def test_an_endpoint_that_accepts_and_never_answers_times_out_within_the_budget() -> None:
    connected = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # until the client gives up and closes
        writer.close()

    async def body() -> None:
        async with _http_server(silent) as url:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded, match=r"no answer within 0\.5 s") as info:
                await DomainDiscovery(url, timeout=0.5).services(ACCOUNT)
            assert connected.is_set() and time.monotonic() - started < 3.0
            assert info.value.exit_code == 5

    run_bounded(body(), 30)


def test_a_closed_port_is_a_network_error_saying_refused() -> None:
    port = free_port()

    async def body() -> None:
        started = time.monotonic()
        with pytest.raises(NetworkError, match="refused") as info:
            await DomainDiscovery(f"http://127.0.0.1:{port}", timeout=5).services(ACCOUNT)
        assert time.monotonic() - started < 5.0
        assert info.value.exit_code == 5 and not isinstance(info.value, DeadlineExceeded)
        assert "listening" in (info.value.hint or "")

    run_bounded(body(), 30)


def test_an_html_404_is_read_as_an_unknown_account_not_as_a_protocol_error() -> None:
    async def body() -> None:
        async with _http_server(_html_answer("404 Not Found", b"<html>Not Found</html>")) as url:
            with pytest.raises(UsageError, match="account unknown"):
                await DomainDiscovery(url).consumer_domains(ACCOUNT)

    run_bounded(body(), 30)
