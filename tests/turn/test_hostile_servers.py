"""The STUN/TURN client against hostile or broken servers (real sockets on loopback).

A wrong answer is reported as what it is -- malformed, an error response, a wrong transaction id,
a bad address family -- never as "no answer" and never as "ok"; aioice's parser errors never
escape as tracebacks; OTHER-ADDRESS is followed only within the server's scope; the number of
packets per test is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aioice import stun

from callops.testing import run_bounded
from callops.turn.nat import discover
from callops.turn.nat_behaviour import address_scope, alternate_refusal
from callops.turn.probes import ProbeResult, ProbeStatus, nat_behaviour, stun_binding, turn_allocation
from callops.turn.results import NatData
from callops.turn.stun import RETRANSMISSIONS

ROOT = Path(__file__).resolve().parents[2]

# -- hostile servers: answer every request with whatever ``answer`` returns, count what arrives ----

Answer = Callable[[bytes, tuple[str, int]], list[bytes]]


def reply(request: bytes, attributes: dict[str, Any], *, error: bool = False) -> bytes:
    """A response (or error response) of the request's method and transaction id."""
    txid = request[8:20]
    (message_type,) = struct.unpack("!H", request[:2])
    message = stun.Message(
        message_method=stun.Method(message_type & 0x3EEF),
        message_class=stun.Class.ERROR if error else stun.Class.RESPONSE,
        transaction_id=txid,
        attributes=attributes,
    )
    return bytes(message)


def mapped(request: bytes, source: tuple[str, int], **extra: Any) -> bytes:
    return reply(request, {"XOR-MAPPED-ADDRESS": source, **extra})


def bad_family(request: bytes, source: tuple[str, int]) -> list[bytes]:
    """A success response whose XOR-MAPPED-ADDRESS has address family 3."""
    data = bytearray(mapped(request, source))
    data[25] = 0x03  # 20 header + 4 attribute header + reserved byte -> the family byte
    return [bytes(data)]


def short_lifetime(request: bytes, source: tuple[str, int]) -> list[bytes]:
    """A success response with a 2-byte LIFETIME: aioice's parser raises struct.error on it."""
    body = struct.pack("!HH", 0x000D, 2) + b"\x00\x01\x00\x00"
    (message_type,) = struct.unpack("!H", request[:2])
    header = struct.pack("!HHI12s", (message_type & 0x3EEF) | 0x100, len(body), stun.COOKIE, request[8:20])
    return [header + body]


def wrong_txid(request: bytes, source: tuple[str, int]) -> list[bytes]:
    answer = bytearray(mapped(request, source))
    answer[19] ^= 0xFF
    return [bytes(answer)]


def garbage(request: bytes, source: tuple[str, int]) -> list[bytes]:
    return [b"\xff" * 7, b"HTTP/1.1 400 Bad Request\r\n\r\n"]


def error_400(request: bytes, source: tuple[str, int]) -> list[bytes]:
    return [reply(request, {"ERROR-CODE": (400, "Bad \x1b[31mRequest\x1b[0m")}, error=True)]


def no_mapped_address(request: bytes, source: tuple[str, int]) -> list[bytes]:
    return [reply(request, {"SOFTWARE": "hostile"})]


def silent(request: bytes, source: tuple[str, int]) -> list[bytes]:
    return []


def other_address(alternate: tuple[str, int]) -> Answer:
    """A valid answer naming ``alternate`` as OTHER-ADDRESS (RFC 5780)."""

    def answer(request: bytes, source: tuple[str, int]) -> list[bytes]:
        return [mapped(request, source, **{"OTHER-ADDRESS": alternate})]

    return answer


@dataclass
class HostileServer:
    """UDP and TCP on the same loopback port, answering with ``answer``."""

    answer: Answer
    host: str = "127.0.0.1"
    port: int = 0
    #: UDP datagrams received, by source
    udp_packets: list[tuple[str, int]] = field(default_factory=list)
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.AbstractServer | None = None

    async def start(self) -> HostileServer:
        loop = asyncio.get_running_loop()
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                source = (str(addr[0]), int(addr[1]))
                server.udp_packets.append(source)
                for packet in server.answer(data, source):
                    self.transport.sendto(packet, addr)  # type: ignore[attr-defined]

        self._tcp = await asyncio.start_server(self._stream, self.host, self.port)
        self.port = self._tcp.sockets[0].getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.port))
        self._udp = transport
        return self

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            header = await reader.readexactly(20)
            (length,) = struct.unpack("!H", header[2:4])
            request = header + await reader.readexactly(length)
            peer = writer.get_extra_info("peername")
            for packet in self.answer(request, (str(peer[0]), int(peer[1]))):
                writer.write(packet)
            await writer.drain()
            await reader.read(1)  # hold the connection until the client closes it
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @property
    def stun_uri(self) -> str:
        return f"stun:{self.host}:{self.port}"

    @property
    def turn_uri(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


def probe_against(answer: Answer, transport: str = "udp", timeout: float = 2.0) -> ProbeResult:
    async def scenario() -> ProbeResult:
        server = await HostileServer(answer).start()
        try:
            return await stun_binding(server.stun_uri, timeout, transport=transport)  # type: ignore[arg-type]
        finally:
            await server.stop()

    return run_bounded(scenario(), 20)


@pytest.mark.parametrize(
    ("answer", "transport", "expected", "fast"),
    [
        (bad_family, "udp", "malformed answer from 127.0.0.1:", True),
        (bad_family, "tcp", "an address attribute with an unknown address family", True),
        (short_lifetime, "udp", "an attribute of the wrong length", True),
        (error_400, "udp", "STUN error 400 Bad ?[31mRequest?[0m", True),
        (error_400, "tcp", "STUN error 400 Bad ?[31mRequest?[0m", True),
        (no_mapped_address, "udp", "without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS", True),
        (no_mapped_address, "tcp", "without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS", True),
        (wrong_txid, "udp", "an answer with a wrong transaction id", False),
        (wrong_txid, "tcp", "STUN answer with a wrong transaction id", True),
        (garbage, "udp", "a malformed packet (STUN message length is less than 20 bytes)", False),
        (garbage, "tcp", "not a STUN answer (no magic cookie", True),
    ],
)
def test_a_wrong_answer_is_a_failure_that_says_what_was_wrong(
    answer: Answer, transport: str, expected: str, fast: bool
) -> None:
    started = time.monotonic()
    result = probe_against(answer, transport)
    elapsed = time.monotonic() - started
    assert result.status is ProbeStatus.FAIL, result
    assert result.error is not None and expected in result.error, result.error
    assert "no answer" not in result.error
    assert "\x1b" not in result.error  # a server's text never reaches the terminal raw
    if fast:  # reported when it arrives, not at the timeout
        assert elapsed < 1.5, elapsed


def test_a_silent_server_gets_a_bounded_number_of_packets() -> None:
    async def scenario() -> tuple[ProbeResult, int]:
        server = await HostileServer(silent).start()
        try:
            result = await stun_binding(server.stun_uri, 9.0, transport="udp")
        finally:
            await server.stop()
        return result, len(server.udp_packets)

    result, packets = run_bounded(scenario(), 30)
    assert result.status is ProbeStatus.FAIL and result.error and "no answer" in result.error
    assert packets == 1 + RETRANSMISSIONS  # 0, 0.5, 1.5, 3.5, 7.5 s; aioice alone would send 7


def test_turn_allocation_with_a_malformed_answer_fails_naming_it() -> None:
    async def scenario() -> ProbeResult:
        server = await HostileServer(short_lifetime).start()
        try:
            return await turn_allocation(server.turn_uri, "user", "password", 3.0)
        finally:
            await server.stop()

    result = run_bounded(scenario(), 20)
    assert result.status is ProbeStatus.FAIL
    assert result.error is not None and "malformed answer: an attribute of the wrong length" in result.error
    assert result.duration_ms < 1500


def test_the_cli_reports_hostile_answers_in_json_without_tracebacks() -> None:
    async def scenario() -> tuple[int, str, str]:
        servers = [await HostileServer(answer).start() for answer in (short_lifetime, bad_family, wrong_txid)]
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "callops", "turn", "probe",
                servers[0].stun_uri, servers[1].stun_uri, servers[2].stun_uri,
                servers[0].turn_uri, "--user", "u",
                "--nat", "--json", "--timeout", "2",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT), "CALLOPS_TURN_PASSWORD": "x"},
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 30)
        finally:
            for server in servers:
                await server.stop()
        return process.returncode or 0, out.decode(), err.decode()

    code, out, err = run_bounded(scenario(), 60)
    assert "Traceback" not in err and "Exception" not in err, err
    document = json.loads(out)
    errors = " | ".join(r["error"] or "" for r in document["results"])
    assert "an attribute of the wrong length" in errors
    assert "unknown address family" in errors
    assert "wrong transaction id" in errors
    assert code == 1


# -- RFC 5780 OTHER-ADDRESS scope -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("8.8.8.8", "public"),
        ("203.0.113.7", "public"),
        ("2001:db8::1", "public"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unusable"),
        ("::", "unusable"),
        ("224.0.0.1", "unusable"),
        ("ff02::1", "unusable"),
        ("255.255.255.255", "unusable"),
        ("240.0.0.1", "unusable"),
        ("::ffff:127.0.0.1", "unusable"),
    ],
)
def test_address_scopes(ip: str, scope: str) -> None:
    assert address_scope(ip) == scope


@pytest.mark.parametrize(
    ("server", "other", "allowed"),
    [
        ("127.0.0.1", "127.0.0.2", True),
        ("127.0.0.1", "10.0.0.2", True),
        ("10.0.0.1", "10.0.0.2", True),
        ("10.0.0.1", "127.0.0.1", True),
        ("198.51.100.1", "198.51.100.2", True),
        ("198.51.100.1", "127.0.0.1", False),
        ("198.51.100.1", "10.0.0.1", False),
        ("198.51.100.1", "169.254.169.254", False),
        ("198.51.100.1", "224.0.0.1", False),
        ("198.51.100.1", "0.0.0.0", False),
        ("127.0.0.1", "0.0.0.0", False),
        ("127.0.0.1", "255.255.255.255", False),
        ("127.0.0.1", "::1", False),
    ],
)
def test_other_address_is_followed_only_within_the_server_scope(
    server: str, other: str, allowed: bool
) -> None:
    refusal = alternate_refusal((server, 3478), (other, 3479))
    assert (refusal is None) is allowed, refusal


def test_other_address_with_port_0_is_never_followed() -> None:
    assert "port 0" in (alternate_refusal(("127.0.0.1", 3478), ("127.0.0.2", 0)) or "")


def test_a_server_naming_an_unusable_alternate_gets_no_packet_there_and_the_probe_says_why() -> None:
    async def scenario() -> tuple[ProbeResult, int]:
        server = await HostileServer(other_address(("0.0.0.0", 9))).start()
        try:
            result = await nat_behaviour(server.stun_uri, 3.0)
        finally:
            await server.stop()
        return result, len(server.udp_packets)

    result, packets = run_bounded(scenario(), 20)
    assert result.status is ProbeStatus.SKIPPED, result
    assert "tests II and III skipped" in result.detail and "0.0.0.0:9" in result.detail
    assert isinstance(result.data, NatData) and result.data.other_address_refused
    assert packets == 1  # test I only: nothing was sent on the alternate's account


def test_a_malformed_answer_to_test_one_is_reported_not_read_as_silence() -> None:
    async def scenario() -> ProbeResult:
        server = await HostileServer(bad_family).start()
        try:
            return await nat_behaviour(server.stun_uri, 3.0)
        finally:
            await server.stop()

    result = run_bounded(scenario(), 20)
    assert result.status is ProbeStatus.FAIL
    assert result.error and "unknown address family" in result.error


def test_discovery_against_a_loopback_server_naming_a_loopback_alternate_runs_the_tests() -> None:
    async def scenario() -> tuple[str, int, int]:
        primary = await HostileServer(silent).start()
        alternate = HostileServer(
            other_address(("127.0.0.1", primary.port)), host="127.0.0.2", port=primary.port
        )
        await alternate.start()
        primary.answer = other_address(("127.0.0.2", primary.port))
        try:
            report = await discover(("127.0.0.1", primary.port), timeout=1.5)
        finally:
            await primary.stop()
            await alternate.stop()
        return report.mapping.behaviour.value, len(primary.udp_packets), len(alternate.udp_packets)

    mapping, primary_packets, alternate_packets = run_bounded(scenario(), 20)
    assert mapping == "endpoint-independent"
    assert alternate_packets >= 1  # loopback server, loopback alternate: followed
    assert primary_packets + alternate_packets <= 5 * (1 + RETRANSMISSIONS)
