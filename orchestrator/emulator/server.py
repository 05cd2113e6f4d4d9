"""The emulator's asyncio adapter: one TCP port, HTTP control API and websockets.

Each accepted connection reads one bounded HTTP/1.1 request (h11, :mod:`.http11`). A websocket upgrade to
``/ws_api/account/{account}/messaging/consumer`` or ``/cobrowse/account/{account}`` is handed to
websockets' sans-I/O :class:`~websockets.server.ServerProtocol`; anything else is a control API
request (:func:`callops.orchestrator.emulator.control_api.handle_control`). The protocol logic lives in
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
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from callops.consumer.models import MAX_FRAME_BYTES
from callops.errors import LocalProtocolError, NetworkError
from callops.lifecycle import AsyncStartStop
from callops.orchestrator.emulator.auth import RedactedFrameLog
from callops.orchestrator.emulator.cobrowse import CoBrowseConnection
from callops.orchestrator.emulator.control_api import ControlAnswer, handle_control
from callops.orchestrator.emulator.http11 import HttpError, HttpRequest, HttpServerConnection, error_body
from callops.orchestrator.emulator.idp import IdentityConfig, authority, handle_identity
from callops.orchestrator.emulator.model import DEFAULT_AGENT_USER_ID, Delivery, EmulatorModel
from callops.orchestrator.emulator.session import Close, ConsumerSession
from callops.orchestrator.emulator.web import web_asset
from callops.secret import Secret

log = logging.getLogger("callops.emulator")
#: websockets' frame log of every emulator socket, credentials hidden
_WIRE_LOG = RedactedFrameLog(logging.getLogger("callops.emulator.wire"))

#: Longest stretch (seconds) one fan-out writes before it lets the loop serve others.
FANOUT_SLICE = 0.005

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
    #: the Domain API (CSDS) and signup IDP on the same port (:mod:`.identity`)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    #: bearer token of the control API (None: no token needed); never logged
    control_token: Secret | None = None


class _Socket:
    """One upgraded websocket: the sans-I/O protocol, the stream writer, the session core."""

    __slots__ = ("closing", "core", "deadline", "last_seen", "limit", "message", "protocol", "writer")

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
        #: a close was sent (or the transport is going): nothing more is written
        self.closing = False

    def flush(self) -> None:
        outgoing = self.protocol.data_to_send()
        transport = self.writer.transport
        if transport.is_closing():
            return  # the peer is gone or was dropped: writing more would only log warnings
        for data in outgoing:
            if data:
                self.writer.write(data)
            else:  # SEND_EOF
                self.writer.close()
                return
        if transport.get_write_buffer_size() > self.limit:
            log.warning("socket %d: client does not read, dropping it", self.core.session_id)
            transport.abort()

    def send(self, data: bytes) -> None:
        """Send one text message (UTF-8 JSON) unless the socket is closing."""
        if self.protocol.state is not State.OPEN or self.writer.transport.is_closing():
            return
        self.protocol.send_text(data)
        self.flush()

    def close(self, close: Close) -> None:
        if self.protocol.state is State.OPEN:
            self.closing = True
            self.protocol.send_close(close.code, close.reason)
            self.flush()


class Emulator(AsyncStartStop):
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
        #: frames of a long fan-out not yet written, per socket (see :meth:`deliver`)
        self._backlog: dict[int, deque[Delivery]] = {}
        self._backlog_scheduled = False

    # lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        host, port = self.config.host, self.config.port
        try:
            self._server = await asyncio.start_server(self._connection, host, port, backlog=2048)
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
        """Send frames to their sockets. A fan-out that takes more than :data:`FANOUT_SLICE` seconds
        leaves the rest in per-socket backlogs, written a slice per loop iteration, round-robin;
        a socket without a backlog is always served at once (frame order per socket is kept)."""
        deadline = time.perf_counter() + FANOUT_SLICE
        over = False
        for count, delivery in enumerate(deliveries):
            sid = delivery.session_id
            sock = self._sockets.get(sid)
            if sock is None:
                continue
            if not over and count & 63 == 63:
                over = time.perf_counter() > deadline
            backlog = self._backlog.get(sid)
            if backlog is None and not over:
                sock.send(delivery.encoded())
            else:
                (backlog if backlog is not None else self._backlog.setdefault(sid, deque())).append(delivery)
        self._schedule_backlog()

    def _schedule_backlog(self) -> None:
        if self._backlog and not self._backlog_scheduled:
            self._backlog_scheduled = True
            asyncio.get_running_loop().call_soon(self._write_backlog)

    def _write_backlog(self) -> None:
        self._backlog_scheduled = False
        deadline = time.perf_counter() + FANOUT_SLICE
        first = True  # one round at least, whatever the clock says
        while self._backlog and (first or time.perf_counter() < deadline):
            first = False
            for sid in list(self._backlog):
                backlog = self._backlog[sid]
                sock = self._sockets.get(sid)
                for _ in range(min(16, len(backlog))):
                    delivery = backlog.popleft()
                    if sock is not None:
                        sock.send(delivery.encoded())
                if not backlog:
                    del self._backlog[sid]
        self._schedule_backlog()

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
        http = HttpServerConnection()
        try:
            async with asyncio.timeout(self.config.request_timeout):
                request = await http.read_request(reader)
        except HttpError as exc:
            await self._answer(writer, self._refusal(writer, http, exc))
            return
        except TimeoutError:
            if (late := http.timed_out()) is not None:
                await self._answer(writer, self._refusal(writer, http, late))
            return
        if request is None:
            return
        if request.is_websocket_upgrade:
            await self._websocket(http, request, reader, writer)
            return
        await self._answer(writer, *self._response(http, request, writer))

    def _response(
        self, http: HttpServerConnection, request: HttpRequest, writer: asyncio.StreamWriter
    ) -> tuple[bytes, ControlAnswer | None]:
        """The answer to a plain request -- identity (CSDS, IDP), a web asset or the control API --
        and, for the control API, what it caused (frames to fan out, a timer to set)."""
        served = handle_identity(
            request.method,
            request.path,
            request.query,
            host=authority(request.headers.get("host"), self.base_url.removeprefix("http://")),
            config=self.config.identity,
            secret=self.config.jwt_secret,
            now=time.time(),
        )
        if served is not None:  # CSDS and IDP (docs/emulator.md)
            return http.respond(served.status, served.body), None
        if request.method in ("GET", "HEAD") and (asset := web_asset(request.path)) is not None:
            content_type, content = asset  # the browser leg's pages (docs/browser.md)
            return http.respond_content(200, content, content_type, head=request.method == "HEAD"), None
        answer = handle_control(self.model, request, time.time(), token=self.config.control_token)
        if answer.status >= 400:
            details = answer.body.get("details", "") if isinstance(answer.body, dict) else ""
            log.info("http %s: %d %s", _peer(writer), answer.status, str(details)[:200])
        return http.respond(answer.status, answer.body, headers=answer.headers), answer

    async def _answer(
        self, writer: asyncio.StreamWriter, response: bytes, caused: ControlAnswer | None = None
    ) -> None:
        """Write one HTTP answer and drain it. A control answer's frames fan out after its bytes
        are queued (the agent reads its 201 before the consumer's UPSERT can arrive)."""
        writer.write(response)
        if caused is not None:
            self.deliver(caused.deliveries)
            if caused.expires is not None:
                self._schedule_expiry(caused.expires)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    @staticmethod
    def _refusal(writer: asyncio.StreamWriter, http: HttpServerConnection, error: HttpError) -> bytes:
        """The answer to a request that cannot be served: one log line, the documented status."""
        log.info("http %s: %d %s", _peer(writer), error.status, error.details[:200])
        return http.respond(error.status, error_body(error.status, error.details))

    async def _websocket(
        self,
        http: HttpServerConnection,
        request: HttpRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        make_core = self._session_factory(request.path)
        if make_core is None:
            details = (
                f"no websocket endpoint at {request.path[:200]}; use"
                " /ws_api/account/ACCOUNT/messaging/consumer or /cobrowse/account/ACCOUNT"
            )
            await self._answer(writer, self._refusal(writer, http, HttpError(404, details)))
            return
        protocol = ServerProtocol(max_size=MAX_FRAME_BYTES, logger=_WIRE_LOG)
        protocol.receive_data(request.raw_head)
        events = protocol.events_received()
        if not events or not isinstance(events[0], WsRequest):
            refusal = HttpError(400, "malformed websocket handshake")
            await self._answer(writer, self._refusal(writer, http, refusal))
            return
        ws_request = events[0]
        now = time.time()
        core = make_core(now)
        response = protocol.accept(ws_request)
        protocol.send_response(response)
        sock = _Socket(protocol, writer, core, self.config.max_send_buffer)
        sock.flush()
        if response.status_code != 101:
            log.info(
                "http %s: %d websocket handshake refused: %s",
                _peer(writer),
                response.status_code,
                protocol.handshake_exc,
            )
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
            sock.deadline = loop.call_later(self.config.init_timeout + 0.01, self._check_deadline, sock)
            await self._read_frames(sock, reader, http.trailing_data)
        finally:
            self._detach(sock)

    def _session_factory(self, path: str) -> Callable[[float], ConsumerSession | CoBrowseConnection] | None:
        """What serves a websocket at ``path`` (made once the handshake is read), or None: 404."""
        kinds: tuple[tuple[re.Pattern[str], type[ConsumerSession | CoBrowseConnection]], ...] = (
            (_CONSUMER_PATH, ConsumerSession),
            (_COBROWSE_PATH, CoBrowseConnection),
        )
        for pattern, kind in kinds:
            if (match := pattern.match(path)) is not None:
                account, secret, timeout = match.group(1), self.config.jwt_secret, self.config.init_timeout
                return lambda now: kind(self.model, account, jwt_secret=secret, now=now, init_timeout=timeout)
        return None

    def _detach(self, sock: _Socket) -> None:
        """A websocket ended: forget it, and tell its core (a CoBrowse peer learns it "left")."""
        if sock.deadline is not None:
            sock.deadline.cancel()
        core = sock.core
        self._sockets.pop(core.session_id, None)
        self._backlog.pop(core.session_id, None)
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

    async def _read_frames(self, sock: _Socket, reader: asyncio.StreamReader, first: bytes = b"") -> None:
        protocol, core = sock.protocol, sock.core
        while True:
            data, first = (first, b"") if first else (await reader.read(65536), b"")
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
            if protocol.close_sent is not None and protocol.close_rcvd is None and not sock.closing:
                # websockets failed the connection (1002 protocol error, 1009 too big ...): say so once
                sock.closing = True
                log.info(
                    "socket %d: closing with %d %s",
                    core.session_id,
                    protocol.close_sent.code,
                    protocol.close_sent.reason[:120],
                )
                self._close_soon(sock)
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


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "client"


__all__ = ["Emulator", "EmulatorConfig"]
