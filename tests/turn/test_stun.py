"""callops.turn.stun and the STUN probe: bindings over UDP, TCP and TLS, errors that name the server."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest

from callops.errors import DeadlineExceeded, NetworkError
from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn, free_port
from callops.turn.probes import ProbeResult, ProbeStatus, StunResult, stun_binding
from callops.turn.stun import StunUdpClient, binding_request, mapped_address, transport_error

StartCoturn = Callable[..., LoopbackCoturn]


def test_transport_error_sentences_name_the_server() -> None:
    assert str(transport_error("TURN/TLS 203.0.113.10:443", ConnectionRefusedError())).startswith(
        "TURN/TLS 203.0.113.10:443: connection refused"
    )
    assert isinstance(transport_error("STUN/UDP 192.0.2.1:3478", TimeoutError()), DeadlineExceeded)
    unreachable = OSError(101, "Network is unreachable")
    assert "network unreachable" in str(transport_error("STUN/UDP 192.0.2.1:3478", unreachable))


def test_udp_request_to_a_silent_server_ends_at_its_timeout_not_aioices() -> None:
    async def ask() -> float:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            client = await StunUdpClient.open()
            started = time.monotonic()
            try:
                with pytest.raises(DeadlineExceeded, match="no answer"):
                    await client.request(
                        binding_request(), silent.getsockname(), timeout=0.3, label="STUN/UDP x"
                    )
            finally:
                client.close()
            return time.monotonic() - started

    assert run_bounded(ask(), 20) < 2.0


@pytest.mark.coturn
def test_stun_binding_over_udp_tcp_and_tls_reports_mapped_address_and_rtt(coturn: LoopbackCoturn) -> None:
    async def probe() -> list[StunResult]:
        return list(
            await asyncio.gather(
                stun_binding(coturn.stun_uri, 10),
                stun_binding(coturn.stun_uri, 10, transport="tcp"),
                stun_binding(f"stuns:127.0.0.1:{coturn.tls_port}", 10, ca_file=coturn.ca_file),
            )
        )

    udp, tcp, tls = run_bounded(probe(), 30)
    assert [r.kind for r in (udp, tcp, tls)] == ["stun-udp", "stun-tcp", "stun-tls"]
    for result in (udp, tcp, tls):
        assert result.status is ProbeStatus.OK, result.error
        assert str(result.data.mapped).startswith("127.0.0.1:")
        assert result.data.rtt_ms is not None and 0 <= result.data.rtt_ms < 10_000
    # coturn with two listening addresses advertises its RFC 5780 alternate address.
    assert udp.data.other_address == f"127.0.0.2:{coturn.other_port}"


@pytest.mark.coturn
def test_stun_binding_resolves_host_names(coturn: LoopbackCoturn) -> None:
    result = run_bounded(stun_binding(f"stun:localhost:{coturn.port}", 10, transport="tcp"), 30)
    assert result.status is ProbeStatus.OK, result.error
    assert str(result.data.mapped).startswith("127.0.0.1:")


@pytest.mark.coturn
def test_stun_binding_against_several_servers_runs_concurrently(start_coturn: StartCoturn) -> None:
    servers = [start_coturn(rfc5780=False) for _ in range(3)]

    async def probe() -> list[ProbeResult]:
        return list(await asyncio.gather(*(stun_binding(s.stun_uri, 10) for s in servers)))

    results = run_bounded(probe(), 30)
    assert [r.status for r in results] == [ProbeStatus.OK] * 3
    assert {r.target for r in results} == {f"stun:127.0.0.1:{s.port}" for s in servers}


@pytest.mark.parametrize(
    ("uri", "transport", "error"),
    [
        ("stun:127.0.0.1:{port}", None, "STUN/UDP 127.0.0.1:{port}: port unreachable (ICMP)"),
        ("stun:127.0.0.1:{port}", "tcp", "STUN/TCP 127.0.0.1:{port}: connection refused"),
        ("stuns:127.0.0.1:{port}", None, "STUN/TLS 127.0.0.1:{port}: connection refused"),
    ],
)
def test_stun_binding_to_a_closed_port_fails_fast_with_a_sentence(
    uri: str, transport: str | None, error: str
) -> None:
    port = free_port()
    result = run_bounded(stun_binding(uri.format(port=port), 5, transport=transport), 20)  # type: ignore[arg-type]
    assert result.status is ProbeStatus.FAIL
    assert result.error is not None and result.error.startswith(error.format(port=port))
    assert result.duration_ms < 3000


def test_stun_binding_to_a_tcp_server_that_never_answers_fails_at_the_timeout() -> None:
    async def probe() -> ProbeResult:
        writers: list[asyncio.StreamWriter] = []

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await stun_binding(f"stun:127.0.0.1:{port}", 0.4, transport="tcp")
        finally:
            for writer in writers:
                writer.close()
            server.close()
            await server.wait_closed()

    result = run_bounded(probe(), 20)
    assert result.status is ProbeStatus.FAIL
    assert result.error is not None and "no answer" in result.error
    assert 300 <= result.duration_ms < 2000


def test_mapped_address_prefers_xor_mapped_address() -> None:
    from aioice import stun

    response = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.RESPONSE)
    response.attributes["MAPPED-ADDRESS"] = ("192.0.2.1", 1)
    assert mapped_address(response) == ("192.0.2.1", 1)
    response.attributes["XOR-MAPPED-ADDRESS"] = ("192.0.2.2", 2)
    assert mapped_address(response) == ("192.0.2.2", 2)
    with pytest.raises(NetworkError):
        raise transport_error("x", ConnectionResetError())
