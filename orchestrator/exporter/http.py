"""The asyncio HTTP/1.1 adapter: h11 parses and frames, :class:`Exporter` answers.

h11 is sans-I/O: bytes read from the socket go into ``receive_data``, events come out, responses
are events turned into bytes by ``send``. This module only moves bytes and owns the timers: an
idle keep-alive connection is closed after ``idle_timeout``; a request head must arrive within it.
Malformed requests get h11's status (400, 431, ...) and the connection is closed; one client's bad
request never touches another connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging

import h11

from callops.errors import NetworkError
from callops.orchestrator.exporter.service import Exporter, Reply

log = logging.getLogger(__name__)

#: largest request head (h11 refuses bigger with 431)
MAX_HEAD_BYTES = 16 * 1024
#: largest request body read (a GET has none; more gets 413)
MAX_BODY_BYTES = 64 * 1024
IDLE_TIMEOUT = 75.0
#: open connections; more are closed at once (probes are bounded separately, see ``max_pending``)
MAX_CONNECTIONS = 1024


def _headers(reply: Reply, close: bool) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", reply.content_type),
        ("Content-Length", str(len(reply.body))),
        ("Server", "callops-exporter"),
    ]
    if close:
        headers.append(("Connection", "close"))
    return headers


class HttpServer:
    """Serves an :class:`Exporter` on one listening socket."""

    def __init__(self, exporter: Exporter, *, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.exporter = exporter
        self.idle_timeout = idle_timeout
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        try:
            self.server = await asyncio.start_server(self._accept, host, port, reuse_address=True)
        except OSError as exc:
            raise NetworkError(
                f"exporter: cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="choose a free port with --listen HOST:PORT",
            ) from None
        sockname = self.server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connections):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self.connections, return_exceptions=True)
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self.connections) >= MAX_CONNECTIONS:
            self.exporter.metrics.rejected.labels("connections").inc()
            writer.transport.abort()
            return
        self.connections.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.discard(task)
            writer.transport.abort()

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader) -> object:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
            conn.receive_data(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        while True:
            try:
                event = await self._next_event(conn, reader)
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if not isinstance(event, h11.Request):
                    return
                # h11 bounds heads that arrive in pieces; one that arrived whole is measured here
                head = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
                if head > MAX_HEAD_BYTES:
                    await self._send(
                        conn, writer, Reply(431, "text/plain", b"request head too large\n"), None
                    )
                    return
                body = 0
                while True:
                    more = await self._next_event(conn, reader)
                    if isinstance(more, h11.Data):
                        body += len(more.data)
                        if body > MAX_BODY_BYTES:
                            await self._send(
                                conn, writer, Reply(413, "text/plain", b"body too large\n"), None
                            )
                            return
                    elif isinstance(more, h11.EndOfMessage):
                        break
                    else:
                        return
            except TimeoutError:
                return
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    reply = Reply(exc.error_status_hint, "text/plain", f"bad request: {exc}\n".encode())
                    with contextlib.suppress(h11.LocalProtocolError):
                        await self._send(conn, writer, reply, None)
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            method = event.method.decode("ascii", "replace")
            try:
                reply = await self.exporter.handle(method, event.target.decode("latin-1"), headers)
            except Exception:
                log.exception("exporter: request %s failed", event.target[:200])
                reply = Reply(500, "text/plain", b"internal error (see the exporter's log)\n")
            await self._send(conn, writer, reply, method)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply, method: str | None
    ) -> None:
        close = method is None
        reason = http.HTTPStatus(reply.status).phrase.encode()
        out = conn.send(h11.Response(status_code=reply.status, headers=_headers(reply, close), reason=reason))
        if method != "HEAD":
            out += conn.send(h11.Data(data=reply.body))
        out += conn.send(h11.EndOfMessage())
        writer.write(out)
        await writer.drain()


async def serve(exporter: Exporter, host: str, port: int, *, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled or sent SIGTERM/SIGINT (then close connections and return)."""
    import signal

    server = HttpServer(exporter)
    bound = await server.start(host, port)
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    log.warning("callops exporter listening on http://%s:%d/", shown, bound[1])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
        log.warning("callops exporter stopping")
    finally:
        await server.close()


__all__ = ["HttpServer", "serve"]
