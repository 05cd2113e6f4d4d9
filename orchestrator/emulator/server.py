"""The emulator's asyncio adapter: one TCP port, HTTP control API and websockets.

Each accepted connection reads a bounded HTTP/1.1 request head. A websocket upgrade to
``/ws_api/account/{account}/messaging/consumer`` or ``/cobrowse/account/{account}`` is handed to
websockets' sans-I/O :class:`~websockets.server.ServerProtocol`; anything else is a control API
request (:func:`callops.orchestrator.emulator.control.handle_control`). The protocol logic lives in
the sans-I/O cores (:mod:`.model`, :mod:`.session`, :mod:`.cobrowse`); this module only moves
bytes, runs the timers (InitConnection deadline, invitation expiry, CoBrowse keep-alive) and
routes :class:`~callops.orchestrator.emulator.model.Delivery` frames to sockets.

Every connection is handled independently: a bad frame is answered or that one socket is
closed; a client that stops reading is dropped once its send buffer passes ``max_send_buffer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import re
import time
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from callops.consumer.models import MAX_FRAME_BYTES
from callops.errors import LocalProtocolError, NetworkError
from callops.orchestrator.emulator.auth import RedactedFrameLog
from callops.orchestrator.emulator.cobrowse import CoBrowseConnection
from callops.orchestrator.emulator.control import handle_control
from callops.orchestrator.emulator.http11 import (
    MAX_HEAD_BYTES,
    HttpError,
    error_body,
    parse_head,
    render_response,
)
from callops.orchestrator.emulator.model import DEFAULT_AGENT_USER_ID, Delivery, EmulatorModel
from callops.orchestrator.emulator.session import Close, ConsumerSession
from callops.orchestrator.emulator.web import web_response
from callops.secret import Secret

log = logging.getLogger("callops.emulator")
#: websockets' frame log of every emulator socket, credentials hidden
_WIRE_LOG = RedactedFrameLog(logging.getLogger("callops.emulator.wire"))

_CONSUMER_PATH = re.compile(r"^/ws_api/account/([^/]+)/messaging/consumer/?$")
_COBROWSE_PATH = re.compile(r"^/cobrowse/account/([^/]+)/?$")


class EmulatorConfig(BaseModel):
    """How the emulator listens and behaves."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    #: 0: an ephemeral port (read it from :attr:`Emulator.port`)
    port: int = Field(default=0, ge=0, le=65535)
    #: seconds before an invitation that was not accepted closes as CLOSED
    invite_expiry: float = Field(default=120.0, gt=0)
    #: HS256 secret for consumer JWTs; None: dev mode (any well-formed JWT, ``sub`` = consumer id)
    jwt_secret: Secret | None = None
    #: seconds a websocket has to authenticate (InitConnection / CoBrowse ``auth``)
    init_timeout: float = Field(default=5.0, gt=0)
    #: seconds to read an HTTP request head
    request_timeout: float = Field(default=10.0, gt=0)
    #: CoBrowse channel keep-alive: ping every this many seconds ...
    cobrowse_ping_interval: float = Field(default=2.0, gt=0)
    #: ... and drop a socket silent for ping interval + this (presence "left" to the peer)
    cobrowse_ping_timeout: float = Field(default=3.0, gt=0)
    #: a socket whose unsent data passes this is dropped (a client that does not read)
    max_send_buffer: int = Field(default=4 * 1024 * 1024, gt=0)
    agent_user_id: str = DEFAULT_AGENT_USER_ID


class _Socket:
    """One upgraded websocket: the sans-I/O protocol, the stream writer, the session core."""

    __slots__ = ("core", "deadline", "last_seen", "limit", "message", "protocol", "writer")

    def __init__(
        self,
        protocol: ServerProtocol,
        writer: asyncio.StreamWriter,
        core: ConsumerSession | CoBrowseConnection,
        limit: int,
    ) -> None:
        self.protocol = protocol
        self.writer = writer
        self.core = core
        self.limit = limit
        self.deadline: asyncio.TimerHandle | None = None
        self.last_seen = time.monotonic()
        #: fragments of a message being received
        self.message: list[bytes] | None = None

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
            else:  # SEND_EOF
                self.writer.close()
                return
        transport = self.writer.transport
        if not transport.is_closing() and transport.get_write_buffer_size() > self.limit:
            log.warning("socket %d: client does not read, dropping it", self.core.session_id)
            transport.abort()

    def send(self, frame: dict[str, Any]) -> None:
        if self.protocol.state is not State.OPEN:
            return
        self.protocol.send_text(json.dumps(frame, separators=(",", ":")).encode())
        self.flush()

    def close(self, close: Close) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(close.code, close.reason)
            self.flush()


class Emulator:
    """The Messaging Window API emulator: ``async with Emulator(EmulatorConfig()) as emu: ...``."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.model = EmulatorModel(
            invite_expiry=self.config.invite_expiry, agent_user_id=self.config.agent_user_id
        )
        self._server: asyncio.Server | None = None
        self._sockets: dict[int, _Socket] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._keepalive: asyncio.Task[None] | None = None
        self._port = 0

    # lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        host, port = self.config.host, self.config.port
        try:
            self._server = await asyncio.start_server(
                self._connection, host, port, limit=MAX_HEAD_BYTES, backlog=2048
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                hint = "choose another --port or stop the process that uses it"
            elif exc.errno in (errno.EACCES, errno.EPERM):
                hint = "ports below 1024 need privileges; choose another --port"
            else:
                hint = "check --host: it must be an address of this machine, e.g. 127.0.0.1"
            raise NetworkError(
                f"emulator {host}:{port}: cannot listen: {exc.strerror or exc}", hint=hint
            ) from None
        sock = self._server.sockets[0]
        self._port = int(sock.getsockname()[1])
        self._keepalive = asyncio.create_task(self._keepalive_loop())
        log.info("emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._keepalive is not None:
            self._keepalive.cancel()
        for sock in list(self._sockets.values()):
            sock.close(Close(1001, "emulator shutting down"))
        for writer in list(self._writers):
            writer.transport.abort()
        pending = [*self._tasks, *([self._keepalive] if self._keepalive else [])]
        _, stuck = await asyncio.wait(pending, timeout=5.0) if pending else (set(), set())
        for task in stuck:
            task.cancel()
        await self._server.wait_closed()
        self._server = None

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise LocalProtocolError("the emulator is not started", hint="await emu.start() first")
        return self._port

    @property
    def base_url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}"

    def consumer_url(self, account: str) -> str:
        return f"ws{self.base_url[4:]}/ws_api/account/{account}/messaging/consumer?v=3"

    def cobrowse_url(self, account: str) -> str:
        return f"ws{self.base_url[4:]}/cobrowse/account/{account}?v=1"

    # routing ------------------------------------------------------------------------------------------

    def deliver(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            sock = self._sockets.get(delivery.session_id)
            if sock is not None:
                sock.send(delivery.frame)

    def _schedule_expiry(self, expires: float) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, expires - time.time()) + 0.02
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self.deliver(self.model.expire_due(time.time()))

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    # connections --------------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve_connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Python 3.11's start_server callback logs a cancelled handler as an error
            pass
        except Exception:
            log.exception("emulator: connection handler failed")
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.config.request_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            writer.write(
                render_response(431, error_body(431, f"request head exceeds {MAX_HEAD_BYTES} bytes"))
            )
            return
        except (TimeoutError, asyncio.IncompleteReadError):
            return
        try:
            request = parse_head(head)
            if request.is_websocket_upgrade:
                await self._websocket(head, request.path, reader, writer)
                return
            length = request.content_length
            async with asyncio.timeout(self.config.request_timeout):
                request.body = await reader.readexactly(length) if length else b""
        except HttpError as exc:
            writer.write(render_response(exc.status, error_body(exc.status, exc.details)))
            return
        except TimeoutError:
            writer.write(render_response(408, error_body(408, "request body not received in time")))
            return
        if (asset := web_response(request.method, request.path)) is not None:  # the browser leg's pages
            writer.write(asset)
            return
        answer = handle_control(self.model, request, time.time())
        writer.write(render_response(answer.status, answer.body))
        self.deliver(answer.deliveries)
        if answer.expires is not None:
            self._schedule_expiry(answer.expires)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _websocket(
        self, head: bytes, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        protocol = ServerProtocol(max_size=MAX_FRAME_BYTES, logger=_WIRE_LOG)
        protocol.receive_data(head)
        events = protocol.events_received()
        if not events or not isinstance(events[0], WsRequest):
            writer.write(render_response(400, error_body(400, "malformed websocket handshake")))
            return
        ws_request = events[0]
        now = time.time()
        core: ConsumerSession | CoBrowseConnection
        consumer = _CONSUMER_PATH.match(path)
        cobrowse = _COBROWSE_PATH.match(path)
        secret, timeout = self.config.jwt_secret, self.config.init_timeout
        if consumer is not None:
            core = ConsumerSession(
                self.model, consumer.group(1), jwt_secret=secret, now=now, init_timeout=timeout
            )
        elif cobrowse is not None:
            core = CoBrowseConnection(
                self.model, cobrowse.group(1), jwt_secret=secret, now=now, init_timeout=timeout
            )
        else:
            details = (
                f"no websocket endpoint at {path}; use /ws_api/account/ACCOUNT/messaging/consumer"
                " or /cobrowse/account/ACCOUNT"
            )
            writer.write(render_response(404, error_body(404, details)))
            return
        response = protocol.accept(ws_request)
        protocol.send_response(response)
        sock = _Socket(protocol, writer, core, self.config.max_send_buffer)
        sock.flush()
        if response.status_code != 101:
            return
        self._sockets[core.session_id] = sock
        try:
            if isinstance(core, ConsumerSession):
                close = core.authenticate_handshake(
                    ws_request.headers.get("Authorization"), ws_request.headers.get("Client-Properties"), now
                )
                if close is not None:
                    sock.close(close)
                    self._close_soon(sock)
            loop = asyncio.get_running_loop()
            sock.deadline = loop.call_later(timeout + 0.01, self._check_deadline, sock)
            await self._read_frames(sock, reader)
        finally:
            if sock.deadline is not None:
                sock.deadline.cancel()
            self._sockets.pop(core.session_id, None)
            if isinstance(core, ConsumerSession):
                core.close()
            else:
                self.deliver(core.disconnected(time.time()))

    def _check_deadline(self, sock: _Socket) -> None:
        close = sock.core.check_deadline(time.time())
        if close is not None:
            log.info("socket %d: %s", sock.core.session_id, close.reason)
            sock.close(close)
            self._close_soon(sock)

    def _close_soon(self, sock: _Socket) -> None:
        """Drop the TCP connection if the client does not finish the closing handshake."""
        loop = asyncio.get_running_loop()
        loop.call_later(2.0, sock.writer.transport.abort)

    async def _read_frames(self, sock: _Socket, reader: asyncio.StreamReader) -> None:
        protocol, core = sock.protocol, sock.core
        while True:
            data = await reader.read(65536)
            if not data:
                protocol.receive_eof()
                sock.flush()
                return
            sock.last_seen = time.monotonic()
            protocol.receive_data(data)
            for event in protocol.events_received():
                assert isinstance(event, Frame)
                text = self._message(sock, event)
                if text is None:
                    continue
                outcome = core.receive_text(text, time.time())
                self.deliver(outcome.deliveries)
                if outcome.close is not None:
                    sock.close(outcome.close)
                    self._close_soon(sock)
            sock.flush()
            if protocol.state is State.CLOSED:
                return
            if protocol.close_expected() and protocol.state is State.CLOSING:
                self._close_soon(sock)

    @staticmethod
    def _message(sock: _Socket, frame: Frame) -> bytes | None:
        """The complete text/binary message once its last fragment arrived (RFC 6455 section 5.4)."""
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            if frame.fin:
                return bytes(frame.data)
            sock.message = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT and sock.message is not None:
            sock.message.append(bytes(frame.data))
            if frame.fin:
                message, sock.message = b"".join(sock.message), None
                return message
        return None

    async def _keepalive_loop(self) -> None:
        """Ping CoBrowse sockets; drop those silent for ping interval + ping timeout."""
        interval = self.config.cobrowse_ping_interval
        silent_limit = interval + self.config.cobrowse_ping_timeout
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for sock in list(self._sockets.values()):
                if not isinstance(sock.core, CoBrowseConnection) or sock.protocol.state is not State.OPEN:
                    continue
                if now - sock.last_seen > silent_limit:
                    log.info(
                        "cobrowse %d: silent for %.1f s, dropping it",
                        sock.core.session_id,
                        now - sock.last_seen,
                    )
                    sock.writer.transport.abort()
                else:
                    sock.protocol.send_ping(b"callops")
                    sock.flush()


__all__ = ["Emulator", "EmulatorConfig"]
