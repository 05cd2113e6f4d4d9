"""Inputs found by fuzzing, over real loopback sockets: each gets its documented status or close
code and one log line, never a traceback, and the emulator keeps serving."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from callops.orchestrator.emulator import Emulator, EmulatorConfig
from callops.secret import Secret
from callops.testing import run_bounded

ACCOUNT = "le1"
SECRET = Secret("a-secret-of-at-least-32-bytes-for-hs256", source="test")


@pytest.fixture
def emulator_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="callops.emulator"):
        yield caplog


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


async def _raw_http(port: int, data: bytes) -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), raw[:200]
    return int(head.split()[1]), json.loads(body) if body else None


CALL = b"/control/accounts/le1/conversations/c1/call"

HTTP_CASES = [
    (
        "superscript Content-Length",
        b"POST " + CALL + "HTTP/1.1\r\nHost: x\r\nContent-Length: ²\r\n\r\n".encode(),
        400,
    ),
    ("target //[", b"GET //[ HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    ("absolute target http://[", b"GET http://[/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (
        "body of 30,000 [",
        b"POST " + CALL + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n" + b"[" * 30000,
        400,
    ),
    (
        "Content-Length of 5,000 digits",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        400,
    ),
    ("huge Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 19 + b"\r\n\r\n", 413),
    (
        "chunked body over 64 KiB",
        b"POST "
        + CALL
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"8000\r\n" + b"x" * 0x8000 + b"\r\n") * 3,
        413,
    ),
    ("bare-LF garbage", b"garbage\n\n", 400),
    ("no Host", b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    ("NUL in header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
    ("head over 16 KiB", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    ("body NaN", b"POST " + CALL + b' HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n{"mode": NaN }', 400),
]


@pytest.mark.parametrize(("name", "request_bytes", "status"), HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_malformed_http_gets_its_status_and_one_log_line(
    name: str, request_bytes: bytes, status: int, emulator_log: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async with Emulator() as emu:
            emulator_log.clear()
            got, answer = await _raw_http(emu.port, request_bytes)
            assert got == status, (name, answer)
            assert answer["code"] == status and answer["details"], answer
            lines = [r for r in emulator_log.records if r.getMessage().startswith("http ")]
            assert len(lines) == 1 and f": {status} " in lines[0].getMessage(), [
                r.getMessage() for r in lines
            ]
            assert (await _raw_http(emu.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 200

    run_bounded(body(), 30)
    _no_tracebacks(emulator_log)


def test_bare_lf_request_lines_are_answered() -> None:
    async def body() -> None:
        async with Emulator() as emu:
            assert await _raw_http(emu.port, b"GET /healthz HTTP/1.1\nHost: x\n\n") == (200, {"status": "ok"})
            got, answer = await _raw_http(emu.port, b"GET /nowhere HTTP/1.1\nHost: x\n\n")
            assert got == 404 and "no route" in answer["details"]
            reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
            writer.write(
                b"GET /ws_api/account/le1/messaging/consumer?v=3 HTTP/1.1\nHost: x\nUpgrade: websocket\n"
                b"Connection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
                b"Sec-WebSocket-Version: 13\n\n"
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 101 "), head
            writer.close()

    run_bounded(body(), 30)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(payload: bytes, header: bytes = b'{"alg":"HS256","typ":"JWT"}') -> str:
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    digest = hmac.new(SECRET.reveal().encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def _exp(value: str) -> str:
    return _signed(b'{"sub":"c1","exp":' + value.encode() + b"}")


HOSTILE_TOKENS = [
    ("exp 10^400", _exp("1" + "0" * 400), "not a time"),
    ("exp 1e400", _exp("1e400"), "finite"),
    ("exp NaN", _exp("NaN"), "finite"),
    ("exp Infinity", _exp("Infinity"), "finite"),
    ("alg none", _signed(b'{"sub":"c1","exp":4000000000}', b'{"alg":"none"}'), "alg 'none' rejected"),
    ("alg HS512", _signed(b'{"sub":"c1","exp":4000000000}', b'{"alg":"HS512"}'), "alg 'HS512' rejected"),
    ("nested header", _signed(b'{"sub":"c1"}', b"[" * 1100), "well-formed"),
    ("oversized", _exp(str(int(time.time()) + 60)) + "A" * 3000, "character limit"),
]


@pytest.mark.parametrize(("name", "token", "words"), HOSTILE_TOKENS, ids=[t[0] for t in HOSTILE_TOKENS])
def test_hostile_jwts_close_with_4401_on_every_entry_point(
    name: str, token: str, words: str, init_frame: Any, emulator_log: pytest.LogCaptureFixture
) -> None:
    async def expect_4401(ws: Any, send: str | None) -> None:
        if send is not None:
            await ws.send(send)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 4401, info.value
        assert words in info.value.rcvd.reason, info.value.rcvd.reason

    async def body() -> None:
        async with Emulator(EmulatorConfig(jwt_secret=SECRET)) as emu:
            async with connect(emu.consumer_url(ACCOUNT)) as ws:
                await expect_4401(ws, init_frame(token))
            async with connect(
                emu.consumer_url(ACCOUNT), additional_headers={"Authorization": f"jwt {token}"}
            ) as ws:
                await expect_4401(ws, None)
            async with connect(emu.cobrowse_url(ACCOUNT)) as ws:
                await expect_4401(
                    ws, json.dumps({"type": "auth", "role": "consumer", "jwt": token, "id": "1"})
                )
            rejected = [r for r in emulator_log.records if "token rejected" in r.getMessage()]
            assert len(rejected) == 3, [r.getMessage() for r in rejected]
            assert (await _raw_http(emu.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 200

    run_bounded(body(), 30)
    _no_tracebacks(emulator_log)
    assert token not in emulator_log.text


def test_hostile_consumer_frames_get_400_and_the_socket_stays_open(
    raw_consumer: Any, emulator_log: pytest.LogCaptureFixture
) -> None:
    frames = [
        '{"kind":"req","id":1' + "0" * 400 + ',"type":"GetClock"}',
        '{"kind":"req","id":1e400,"type":"GetClock"}',
        '{"kind":"req","id":NaN,"type":"GetClock"}',
        "[" * 30_000,
        '{"kind":"req","id":"d","type":"GetClock","body":' + "[" * 100 + "]" * 100 + "}",
        '{"kind":"req","id":"h","type":"GetClock","headers":[' + "[" * 5000 + "]}",
    ]

    async def body() -> None:
        async with Emulator() as emu:
            consumer = await raw_consumer.connect(emu.consumer_url(ACCOUNT))
            emulator_log.clear()
            for frame in frames:
                await consumer.ws.send(frame)
                answer = await consumer.next_frame()
                assert answer["code"] == 400 and answer["type"] == ".ReqBody$ErrorResp", (frame[:60], answer)
                assert answer["reqId"] in ("", "d"), answer
            assert (await consumer.request("GetClock"))["code"] == 200
            lines = [r for r in emulator_log.records if "400 bad frame" in r.getMessage()]
            assert len(lines) == len(frames)
            await consumer.close()

    run_bounded(body(), 30)
    _no_tracebacks(emulator_log)


def test_hostile_cobrowse_frames_get_error_answers(emulator_log: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with Emulator() as emu, connect(emu.cobrowse_url(ACCOUNT)) as ws:
            for frame in ("[" * 30_000, '{"type":"auth","role":NaN}', '{"type":' + "{" * 70 + "}" * 70 + "}"):
                await ws.send(frame)
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer["type"] == "error" and answer["code"] == 400, answer
            await ws.send(json.dumps({"type": "auth", "role": "agent", "id": 10**400}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ack["type"] == "ack" and ack["id"] == 10**400

    run_bounded(body(), 30)
    _no_tracebacks(emulator_log)


async def _raw_websocket(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def _close_code(reader: asyncio.StreamReader) -> int:
    """The code of the first close frame the server sends (server frames are not masked)."""
    async with asyncio.timeout(10):
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            payload = await reader.readexactly(length)
            if first & 0x0F == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])


@pytest.mark.parametrize(
    ("name", "frame", "code"),
    [
        ("reserved opcode", b"\x83\x80abcd", 1002),
        ("unmasked client frame", b"\x81\x05hello", 1002),
        ("frame over 1 MiB", b"\x81\xff" + struct.pack("!Q", 2 * 2**20) + b"abcd", 1009),
    ],
)
def test_websocket_protocol_violations_close_with_their_code(
    name: str, frame: bytes, code: int, emulator_log: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async with Emulator() as emu:
            for path in (
                f"/ws_api/account/{ACCOUNT}/messaging/consumer?v=3",
                f"/cobrowse/account/{ACCOUNT}?v=1",
            ):
                emulator_log.clear()
                reader, writer = await _raw_websocket(emu.port, path)
                writer.write(frame)
                assert await _close_code(reader) == code
                writer.close()
                lines = [r for r in emulator_log.records if f"closing with {code}" in r.getMessage()]
                assert len(lines) == 1, [r.getMessage() for r in emulator_log.records]
            assert (await _raw_http(emu.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 200

    run_bounded(body(), 30)
    _no_tracebacks(emulator_log)
