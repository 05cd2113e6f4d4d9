"""The exporter's asyncio HTTP/1.1 adapter: the h11 codec parses and frames, :class:`Exporter` answers.

The codec (:mod:`callops.orchestrator.emulator.http11`, shared with the emulator) is sans-I/O and
bounds heads and bodies; this module only moves bytes and owns the timers: an idle keep-alive
connection is closed after ``idle_timeout``; a request must arrive within it (408 once it began).
Malformed requests get the codec's status (400, 411, 413, 431, ...) with the reason as text and
the connection is closed; one client's bad request never touches another connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callops.errors import NetworkError
from callops.orchestrator.emulator.http11 import HttpError, HttpLimits, HttpServerConnection
from callops.orchestrator.exporter.service import Exporter, Reply

log = logging.getLogger(__name__)

#: request heads up to 16 KiB (else 431), bodies up to 64 KiB (a GET has none; else 413)
LIMITS = HttpLimits(head_bytes=16 * 1024, body_bytes=64 * 1024)
#: seconds an idle keep-alive connection is kept; a request must arrive within it
IDLE_TIMEOUT = 75.0
SERVER = {"Server": "callops-exporter"}
#: open connections; more are closed at once (probes are bounded separately, see ``max_pending``)
MAX_CONNECTIONS = 1024


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

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        http = HttpServerConnection(LIMITS)
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    request = await http.read_request(reader)
            except HttpError as exc:
                await self._send(writer, _refusal(http, exc))
                return
            except TimeoutError:
                if (late := http.timed_out()) is not None:
                    await self._send(writer, _refusal(http, late))
                return
            if request is None:
                return
            try:
                reply = await self.exporter.handle(request.method, request.target, request.headers)
            except Exception:
                log.exception("exporter: request %s failed", request.target[:200])
                reply = Reply(500, "text/plain", b"internal error (see the exporter's log)\n")
            await self._send(writer, _response(http, reply, head=request.method == "HEAD", keep_alive=True))
            if not http.next_cycle():
                return

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, response: bytes) -> None:
        writer.write(response)
        await writer.drain()


def _response(
    http: HttpServerConnection, reply: Reply, *, head: bool = False, keep_alive: bool = False
) -> bytes:
    return http.respond_content(
        reply.status, reply.body, reply.content_type, headers=SERVER, head=head, keep_alive=keep_alive
    )


def _refusal(http: HttpServerConnection, error: HttpError) -> bytes:
    """A request that cannot be served: its status, the reason as text, and the connection closes."""
    return _response(http, Reply(error.status, "text/plain", f"{error.details}\n".encode()))


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
