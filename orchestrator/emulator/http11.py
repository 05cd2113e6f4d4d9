"""The HTTP/1.1 (RFC 9112) server codec of the emulator and the exporter, on h11, sans-I/O.

:class:`HttpServerConnection` wraps an ``h11.Connection`` in the server role: feed it bytes with
:meth:`~HttpServerConnection.receive_data`, take the request with
:meth:`~HttpServerConnection.next_request` (``None`` while more bytes are needed), render the
answer with :meth:`~HttpServerConnection.respond` / :meth:`~HttpServerConnection.respond_content`.
Sizes are bounded (:class:`HttpLimits`); every problem is an :class:`HttpError` -- a
:class:`~callops.errors.RemoteProtocolError` that carries the status to answer (400, 408, 411,
413, 431, 501). h11 is used here and nowhere else, so its exceptions are translated only here.

The servers' asyncio adapters only move bytes: :meth:`~HttpServerConnection.read_request` awaits
the caller's stream until a request is complete (this module imports no asyncio; the caller bounds
the time and asks :meth:`~HttpServerConnection.timed_out` what to answer), and
:meth:`~HttpServerConnection.next_cycle` starts the next request of a keep-alive connection
(the exporter; the emulator answers one request per connection).

A websocket upgrade request is returned as soon as its head is complete (h11 pauses there);
:attr:`HttpRequest.raw_head` is its head in canonical CRLF form, for websockets' sans-I/O
handshake. Bodies may be sized by Content-Length or chunked.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import h11

from callops.consumer.models import decode_json
from callops.errors import RemoteProtocolError

#: Largest request head (request line + headers) accepted.
MAX_HEAD_BYTES = 16 * 1024
#: Largest control API request body accepted.
MAX_BODY_BYTES = 64 * 1024
MAX_HEADERS = 100
#: Methods whose request must say how long its body is (411 otherwise).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class HttpError(RemoteProtocolError):
    """A request the emulator answers with ``status`` and a JSON error body."""

    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.details = details


def parse_target(target: str) -> tuple[str, dict[str, str]]:
    """``(path, query)`` of a request target (RFC 9112 section 3.2): origin-form
    ``/path?query``, or absolute-form ``http://host/path?query``. :class:`HttpError` 400 otherwise."""
    if target.startswith("/"):
        # origin-form: never urlsplit() it -- "//[" would be read as a network location
        rest = target.partition("#")[0]
        raw_path, _, raw_query = rest.partition("?")
    elif target[:7].lower() == "http://" or target[:8].lower() == "https://":
        try:
            parts = urlsplit(target)
        except ValueError as exc:
            raise HttpError(400, f"request target {target[:80]!r} is not a valid URL: {exc}") from None
        raw_path, raw_query = parts.path or "/", parts.query
    else:
        raise HttpError(400, f"request target {target[:80]!r} must be an absolute path such as /healthz")
    try:
        query = dict(parse_qsl(raw_query, max_num_fields=MAX_HEADERS))
    except ValueError as exc:
        raise HttpError(400, f"query of {target[:80]!r}: {exc}") from None
    return unquote(raw_path), query


class HttpRequest:
    """A parsed request: method, target, headers (names lower-cased, the last value kept), body."""

    __slots__ = ("body", "headers", "method", "path", "query", "raw_head", "target")

    def __init__(self, method: str, target: str, headers: dict[str, str], raw_head: bytes = b"") -> None:
        self.method = method
        self.target = target
        self.path, self.query = parse_target(target)
        self.headers = headers
        #: the head in canonical CRLF form (request line, header lines, blank line)
        self.raw_head = raw_head
        self.body = b""

    @property
    def is_websocket_upgrade(self) -> bool:
        return (
            self.method == "GET"
            and "websocket" in self.headers.get("upgrade", "").lower()
            and "upgrade" in self.headers.get("connection", "").lower()
        )

    def json(self) -> Any:
        """The body as JSON; :class:`HttpError` 400 if it is not (or nests deeper than allowed)."""
        if not self.body:
            return None
        try:
            return decode_json(self.body)
        except RemoteProtocolError as exc:
            raise HttpError(400, f"body is {exc.message}") from None


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _describe(exc: h11.ProtocolError) -> str:
    # h11 names the bad part as a bytearray repr: keep the message short and readable
    return str(exc).replace("bytearray(b", "(")[:200]


@dataclass(frozen=True)
class HttpLimits:
    """What one request may be: larger heads get 431, larger bodies 413."""

    #: request line + headers
    head_bytes: int = MAX_HEAD_BYTES
    body_bytes: int = MAX_BODY_BYTES
    headers: int = MAX_HEADERS


class ByteStream(Protocol):
    """What :meth:`HttpServerConnection.read_request` reads from (an ``asyncio.StreamReader``)."""

    async def read(self, n: int = -1) -> bytes: ...


#: bytes asked of the stream at a time
READ_SIZE = 65536


class HttpServerConnection:
    """One HTTP/1.1 connection in the server role (sans-I/O, h11): requests in, answers out."""

    def __init__(self, limits: HttpLimits | None = None) -> None:
        self.limits = limits or HttpLimits()
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.head_bytes)
        #: the peer closed the connection before sending a byte
        self.closed = False
        self._reset(b"")

    def _reset(self, pending: bytes) -> None:
        """A new request cycle; ``pending``: bytes of it already received (pipelined)."""
        self._request: HttpRequest | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._received = len(pending)
        #: the first bytes of the request: where the head must end
        self._prefix = pending[: self.limits.head_bytes + 4]

    @property
    def started(self) -> bool:
        """Whether any byte of the current request arrived."""
        return self._received > 0

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` is the end of the stream."""
        self._received += len(data)
        if len(self._prefix) <= self.limits.head_bytes:
            self._prefix += data[: self.limits.head_bytes + 4 - len(self._prefix)]
        # RuntimeError: data after the end of the stream -- there is nothing more to parse
        with contextlib.suppress(RuntimeError):
            self._h11.receive_data(data)

    async def read_request(self, stream: ByteStream) -> HttpRequest | None:
        """Read ``stream`` until the request is complete: the request, or ``None`` after a clean
        close. Raises :class:`HttpError`. The caller bounds the time (see :meth:`timed_out`)."""
        while (request := self.next_request()) is None:
            if self.closed:
                return None
            self.receive_data(await stream.read(READ_SIZE))
        return request

    def timed_out(self) -> HttpError | None:
        """What to answer when the request did not arrive in time: 408 once a byte of it came,
        else nothing (an idle connection is closed without a word)."""
        return HttpError(408, "request not received in time") if self.started else None

    def next_request(self) -> HttpRequest | None:
        """The complete request, or ``None`` while more bytes are needed (or after a clean close:
        then :attr:`closed` is set). Raises :class:`HttpError`."""
        limit = self.limits.head_bytes
        if (
            self._request is None
            and len(self._prefix) > limit
            and b"\n\r\n" not in self._prefix
            and b"\n\n" not in self._prefix
        ):
            # checked before h11 parses a complete but oversized head (h11 bounds only incomplete ones)
            raise HttpError(431, f"request head exceeds {limit} bytes")
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(exc.error_status_hint, f"malformed request: {_describe(exc)}") from None
            except ValueError as exc:
                # a safety net: h11 converts numbers with int() (bounded to 20 digits in h11 0.16)
                raise HttpError(400, f"malformed request: {str(exc)[:120]}") from None
            if event is h11.NEED_DATA:
                return None
            if event is h11.PAUSED:
                return self._request  # an upgrade request: the rest of the stream is not HTTP
            done, request = self._on_event(event)
            if done:
                return request

    def _on_event(self, event: object) -> tuple[bool, HttpRequest | None]:
        """``(True, request)`` when ``event`` ends what :meth:`next_request` waits for."""
        if isinstance(event, h11.Request):
            self._request = self._start(event)
            return self._request.is_websocket_upgrade, self._request
        if isinstance(event, h11.Data):
            self._body_size += len(event.data)
            if self._body_size > self.limits.body_bytes:
                raise HttpError(413, f"body exceeds the {self.limits.body_bytes}-byte limit")
            self._body.append(bytes(event.data))
            return False, None
        if isinstance(event, h11.EndOfMessage):
            assert self._request is not None
            self._request.body = b"".join(self._body)
            return True, self._request
        if isinstance(event, h11.ConnectionClosed):
            if self._request is None and not self.started:
                self.closed = True
                return True, None
            raise HttpError(400, "connection closed before the request was complete")
        return False, None

    def _start(self, event: h11.Request) -> HttpRequest:
        limits = self.limits
        items = [(_text(name), _text(value)) for name, value in event.headers.raw_items()]
        if len(items) > limits.headers:
            raise HttpError(431, f"more than {limits.headers} headers")
        method, target = _text(event.method), _text(event.target)
        lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in items), "", ""]
        raw_head = "\r\n".join(lines).encode("latin-1")
        if len(raw_head) > limits.head_bytes:
            raise HttpError(431, f"request head exceeds {limits.head_bytes} bytes")
        headers = {name.lower(): value for name, value in items}
        request = HttpRequest(method, target, headers, raw_head)
        if request.is_websocket_upgrade:
            return request
        raw_length = headers.get("content-length")
        if raw_length is not None:
            # h11 checked that it is ASCII digits
            if len(raw_length) > 20 or int(raw_length) > limits.body_bytes:
                raise HttpError(
                    413, f"body of {raw_length[:24]} bytes exceeds the {limits.body_bytes}-byte limit"
                )
        elif "transfer-encoding" not in headers and method in _BODY_METHODS:
            raise HttpError(411, "Content-Length is required")
        return request

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after an upgrade request's head (the start of the websocket stream)."""
        return bytes(self._h11.trailing_data[0])

    def next_cycle(self) -> bool:
        """After an answer: get ready for the connection's next request; ``False`` if the
        connection must close instead (the peer or the answer said so, or it was not HTTP)."""
        if h11.MUST_CLOSE in (self._h11.our_state, self._h11.their_state):
            return False
        try:
            self._h11.start_next_cycle()
        except h11.LocalProtocolError:
            return False
        self._reset(self.trailing_data)
        return True

    def respond(self, status: int, body: Any = None, *, headers: dict[str, str] | None = None) -> bytes:
        """A complete response with a JSON body (``Connection: close``)."""
        payload = b"" if body is None else json.dumps(body).encode()
        return self.respond_content(
            status, payload, "application/json" if body is not None else None, headers=headers
        )

    def respond_content(
        self,
        status: int,
        content: bytes,
        content_type: str | None,
        *,
        headers: dict[str, str] | None = None,
        head: bool = False,
        keep_alive: bool = False,
    ) -> bytes:
        """A complete response with ``content``; ``head``: the head only; ``keep_alive``: without
        ``Connection: close`` (then :meth:`next_cycle` may read another request)."""
        fields = [] if keep_alive else [("Connection", "close")]
        fields.append(("Content-Length", str(len(content))))
        if content_type is not None:
            fields.append(("Content-Type", content_type))
        fields += list((headers or {}).items())
        response = h11.Response(
            status_code=status, headers=fields, reason=HTTPStatus(status).phrase.encode("latin-1")
        )
        payload = b"" if head else content
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                return _write(self._h11, response, payload)
            except h11.LocalProtocolError:
                pass  # e.g. a body for a HEAD request: h11 refuses it, a fresh codec writes it
        # the connection cannot answer any more (after a protocol error): a fresh codec can
        return _write(h11.Connection(h11.SERVER), response, payload)


def _write(connection: h11.Connection, response: h11.Response, payload: bytes) -> bytes:
    out = connection.send(response) or b""
    if payload:
        out += connection.send(h11.Data(data=payload)) or b""
    return out + (connection.send(h11.EndOfMessage()) or b"")


def error_body(status: int, details: str) -> dict[str, Any]:
    """The control API's error body: ``{"code","title","details"}``."""
    return {"code": status, "title": HTTPStatus(status).phrase, "details": details}


__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "READ_SIZE",
    "ByteStream",
    "HttpError",
    "HttpLimits",
    "HttpRequest",
    "HttpServerConnection",
    "error_body",
    "parse_target",
]
