"""Fuzzing the emulator's HTTP layer: the sans-I/O parse (h11) with the control API routes behind
it, and the real server socket. Each input gets a documented status, never another exception."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callops.orchestrator.emulator import Emulator, EmulatorConfig
from callops.orchestrator.emulator.control import handle_control
from callops.orchestrator.emulator.http11 import HttpError, HttpServerConnection
from callops.orchestrator.emulator.model import EmulatorModel
from callops.secret import Secret
from callops.testing import fuzz_examples

#: Statuses docs/emulator.md lists for the control API and the upgrade path.
DOCUMENTED = {101, 200, 201, 400, 401, 404, 405, 408, 409, 411, 413, 426, 431, 501}
#: Statuses of a request the parser refuses.
REFUSALS = {400, 408, 411, 413, 431, 501}

METHODS = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "G\u00c9T", ""]
)
TARGETS = st.one_of(
    st.sampled_from(
        [
            "/healthz",
            "//[",
            "/control/accounts/le1/conversations",
            "/control/accounts/le1/conversations/c1/call",
            "/ws_api/account/le1/messaging/consumer?v=3",
            "/cobrowse/account/le1?v=1",
            "http://[/",
            "*",
            "/%ff%fe?a=%zz&&=&" + "b=1&" * 5,
        ]
    ),
    st.text(min_size=0, max_size=40).map(lambda t: "/" + t),
    st.text(max_size=20),
)
HEADER_NAMES = st.sampled_from(
    [
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "Authorization",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "X-Junk",
        "Bad Name",
        "",
    ]
)
HEADER_VALUES = st.one_of(
    st.sampled_from(
        [
            "x",
            "²",
            "0",
            "2",
            "-1",
            "9" * 25,
            "99999",
            "chunked",
            "gzip, chunked",
            "Upgrade",
            "websocket",
            "13",
            "dGhlIHNhbXBsZSBub25jZQ==",
            "Bearer t",
        ]
    ),
    st.text(max_size=30),
)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b'{"mode":"VIDEO_CALL"}', b"[" * 30_000, b'{"mode":NaN}', b"0\r\n\r\n"]),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """Request-shaped bytes: a request line, header lines, a body; separators CRLF or bare LF."""
    eol = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "http/1.1", ""]))
    lines = [f"{draw(METHODS)} {draw(TARGETS)} {version}"]
    for _ in range(draw(st.integers(0, 6))):
        lines.append(f"{draw(HEADER_NAMES)}: {draw(HEADER_VALUES)}")
    head = (eol.join(lines) + eol + eol).encode("utf-8", "surrogatepass")
    return head + draw(BODIES)


STREAMS = st.one_of(requests(), st.binary(max_size=300))


def _parse(data: bytes, cuts: list[int]) -> None:
    http = HttpServerConnection()
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    try:
        request = None
        for piece in [*pieces, b""]:
            http.receive_data(piece)
            request = http.next_request()
            if request is not None or http.closed:
                break
        if request is None:
            assert http.closed or not data, "a complete stream gives a request, a refusal or a clean close"
            return
        if not request.is_websocket_upgrade:
            answer = handle_control(EmulatorModel(), request, 1_700_000_000.0, token=Secret("t"))
            assert answer.status in DOCUMENTED, (answer.status, answer.body)
            assert http.respond(answer.status, answer.body).startswith(b"HTTP/1.1 ")
    except HttpError as exc:
        assert exc.status in REFUSALS, exc
        assert exc.details
        assert http.respond(exc.status, {"details": exc.details}).startswith(
            f"HTTP/1.1 {exc.status} ".encode()
        )


@settings(max_examples=fuzz_examples(1500))
@given(data=STREAMS, cut_points=st.lists(st.integers(0, 400), max_size=4))
def test_sans_io_parse_gives_a_request_or_a_documented_refusal(data: bytes, cut_points: list[int]) -> None:
    _parse(data, sorted({c for c in cut_points if 0 < c < len(data)}))


# --- over the real server socket ----------------------------------------------------------------


class _Tracebacks(logging.Handler):
    """Log records with a traceback or at ERROR and above (a handler crashed)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture(scope="module")
def tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    loggers = [logging.getLogger("callops"), logging.getLogger("asyncio")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture(scope="module")
def live_emulator() -> Iterator[Emulator]:
    """One emulator for every example (it must stay up), on its own loop in a thread."""
    loop = asyncio.new_event_loop()
    emu = Emulator(EmulatorConfig(request_timeout=2.0, init_timeout=0.5, control_token=Secret("t")))
    loop.run_until_complete(asyncio.wait_for(emu.start(), 10))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield emu
    finally:
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(emu.stop(), 10), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(10)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before reading everything
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


@settings(max_examples=fuzz_examples(400))
@given(data=STREAMS)
def test_the_server_answers_every_stream_with_a_documented_status(
    live_emulator: Emulator, tracebacks: _Tracebacks, data: bytes
) -> None:
    answer = _exchange(live_emulator.port, data)
    if answer:
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 "), answer[:100]
        assert int(status_line.split()[1]) in DOCUMENTED, status_line
    else:
        assert not data.strip(b"\r\n "), "only an empty stream may go unanswered"
    assert not tracebacks.records, [r.getMessage() for r in tracebacks.records]
    assert _exchange(live_emulator.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 200 "
    )
