"""The small HTTP/1.1 the emulator needs (RFC 9112), pure functions: parse a request head, render a
JSON response. Bounded sizes; every problem is an :class:`HttpError` with the status to answer.

No chunked bodies, no keep-alive: the control API answers one request per connection and closes.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

#: Largest request head (request line + headers) accepted.
MAX_HEAD_BYTES = 16 * 1024
#: Largest control API request body accepted.
MAX_BODY_BYTES = 64 * 1024
MAX_HEADERS = 100


class HttpError(Exception):
    """A request the emulator answers with ``status`` and a JSON error body."""

    def __init__(self, status: int, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.details = details


class HttpRequest:
    """A parsed request head (and the body, once read)."""

    __slots__ = ("body", "headers", "method", "path", "query", "target")

    def __init__(self, method: str, target: str, headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        parts = urlsplit(target)
        self.path = unquote(parts.path)
        self.query = dict(parse_qsl(parts.query))
        #: header names lower-cased; a repeated header keeps the last value
        self.headers = headers
        self.body = b""

    @property
    def is_websocket_upgrade(self) -> bool:
        return (
            self.method == "GET"
            and "websocket" in self.headers.get("upgrade", "").lower()
            and "upgrade" in self.headers.get("connection", "").lower()
        )

    @property
    def content_length(self) -> int:
        """The body length (RFC 9112 section 6.3); :class:`HttpError` 400/411/413/501 when unusable."""
        if "transfer-encoding" in self.headers:
            raise HttpError(501, "Transfer-Encoding is not supported; send Content-Length")
        raw = self.headers.get("content-length")
        if raw is None:
            if self.method in ("POST", "PUT", "PATCH"):
                raise HttpError(411, "Content-Length is required")
            return 0
        if not raw.isdigit():
            raise HttpError(400, f"Content-Length {raw!r} is not a number")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            raise HttpError(413, f"body of {length} bytes exceeds the {MAX_BODY_BYTES}-byte limit")
        return length

    def json(self) -> Any:
        """The body as JSON; :class:`HttpError` 400 if it is not."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"body is not valid JSON: {exc}") from None


def parse_head(head: bytes) -> HttpRequest:
    """Parse ``request-line CRLF *(field-line CRLF) CRLF`` (RFC 9112 sections 3 and 5)."""
    if len(head) > MAX_HEAD_BYTES:
        raise HttpError(431, f"request head exceeds {MAX_HEAD_BYTES} bytes")
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise HttpError(400, "request head is not latin-1") from None
    lines = text.split("\r\n")
    request_line = lines[0]
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, f"malformed request line {request_line[:80]!r}")
    method, target, _version = parts
    if not method.isalpha() or not method.isupper():
        raise HttpError(400, f"malformed method {method[:20]!r}")
    if not target.startswith("/"):
        raise HttpError(400, f"request target {target[:80]!r} must be an absolute path")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        headers[name.lower()] = value.strip()
        if len(headers) > MAX_HEADERS:
            raise HttpError(431, f"more than {MAX_HEADERS} headers")
    return HttpRequest(method, target, headers)


def render_response(status: int, body: Any = None, *, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a JSON body; the connection closes after it."""
    payload = b"" if body is None else json.dumps(body).encode()
    reason = HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}", "Connection: close", f"Content-Length: {len(payload)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def error_body(status: int, details: str) -> dict[str, Any]:
    """The control API's error body: ``{"code","title","details"}``."""
    return {"code": status, "title": HTTPStatus(status).phrase, "details": details}


__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "HttpError",
    "HttpRequest",
    "error_body",
    "parse_head",
    "render_response",
]
