"""JSON over HTTPS to LivePerson's REST services (CSDS, IDP): one request, errors translated.

The HTTP client is ``httpx`` (asyncio, HTTP/1.1 with the ``h11`` codec, TLS with the system's or
certifi's CAs). This module is the one place where its exceptions enter callops: every failure
comes out as a :mod:`callops.errors` error that names the service and the fix --
:class:`~callops.errors.NetworkError` for a refused or unreachable endpoint,
:class:`~callops.errors.DeadlineExceeded` for an endpoint that does not answer within ``timeout``
seconds (the whole exchange is bounded, not only each read), and
:class:`~callops.errors.RemoteProtocolError` for an answer that is not HTTP or not JSON.

URLs are logged at DEBUG level only: they carry the account id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from callops.errors import CallopsError, DeadlineExceeded, NetworkError, RemoteProtocolError, UsageError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("callops.consumer.rest")

#: Seconds one CSDS or IDP exchange may take, connection included.
DEFAULT_TIMEOUT = 10.0
#: Largest answer body read (CSDS and IDP answers are a few KiB).
MAX_ANSWER_BYTES = 1024 * 1024


_DEFAULT_TLS: ssl.SSLContext | None = None


def _tls(verify: ssl.SSLContext | bool) -> ssl.SSLContext | bool:
    """The default verifying TLS context, built once per process (loading the CA bundle costs
    tens of milliseconds, more than the whole exchange with a nearby service)."""
    global _DEFAULT_TLS  # noqa: PLW0603 - a per-process cache
    if verify is not True:
        return verify
    if _DEFAULT_TLS is None:
        import httpx

        _DEFAULT_TLS = httpx.create_ssl_context()
    return _DEFAULT_TLS


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """An HTTP answer: its status and its body parsed as JSON (``None`` for an empty body)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def raise_unless_ok(self, where: str, *, refused: str, hint: str, request: str = "") -> None:
        """Raise for a non-2xx answer: 401/403 as a :class:`UsageError` (``"<refused> refused"``,
        with ``hint``), any other as a :class:`NetworkError` (``"<request> answered HTTP ..."``)."""
        if self.status in (401, 403):
            raise UsageError(f"{where}: {refused} refused (HTTP {self.status})", hint=hint)
        if not self.ok:
            answered = f"{request} answered" if request else "answered"
            raise NetworkError(f"{where}: {answered} HTTP {self.status}", hint="try again later")


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` -- what errors and warnings show (the path holds the account)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def request_json(
    method: str,
    url: str,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | bool = True,
    json_body: Any = None,
) -> JsonAnswer:
    """One ``method`` request to ``url``; the status and JSON body of whatever answer comes back.

    ``what`` names the service in errors ("CSDS", "IDP"). Non-2xx answers are returned, not raised
    (the caller knows what a 404 means for it; their body is None when it is not JSON); a 2xx
    answer whose body is not JSON raises :class:`RemoteProtocolError`.
    """
    import httpx

    where = f"{what} {origin(url)}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{what} URL {origin(url)!r} is not an http:// or https:// URL")
    log.debug("%s %s", method, url)
    try:
        async with asyncio.timeout(timeout):
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(timeout), verify=_tls(verify), follow_redirects=False
            ) as client:
                status, content_type, raw = await _exchange(client, method, url, json_body, where=where)
    except (TimeoutError, httpx.TimeoutException):
        raise DeadlineExceeded(
            f"{where}: no answer within {timeout:g} s",
            hint="check the network path to the service (firewall, proxy) or try again",
        ) from None
    except httpx.HTTPError as exc:
        raise _translated(exc, what=what, where=where, url=url) from None
    return _json_answer(status, content_type, raw, where=where)


async def _exchange(
    client: httpx.AsyncClient, method: str, url: str, json_body: object, *, where: str
) -> tuple[int, str, bytes]:
    """``(status, content type, body)``; a body over :data:`MAX_ANSWER_BYTES` is refused as it streams."""
    kwargs: dict[str, Any] = {"headers": {"Accept": "application/json"}}
    if json_body is not None:
        kwargs["json"] = json_body
    elif method == "POST":
        kwargs["content"] = b""
    async with client.stream(method, url, **kwargs) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise RemoteProtocolError(
                    f"{where}: answer exceeds {MAX_ANSWER_BYTES} bytes", hint="is the URL right?"
                )
            chunks.append(chunk)
        return response.status_code, response.headers.get("content-type", ""), b"".join(chunks)


def _translated(exc: httpx.HTTPError, *, what: str, where: str, url: str) -> CallopsError:
    """The :mod:`callops.errors` error for an httpx failure (timeouts are handled by the caller)."""
    import httpx

    if isinstance(exc, httpx.ConnectError):
        reason = _reason(exc)
        hint = (
            "is the service listening on that port?"
            if "refused" in reason.lower()
            else "check the host name and the network path (DNS, firewall, proxy)"
        )
        return NetworkError(f"{where}: cannot connect: {reason}", hint=hint)
    if isinstance(exc, httpx.RemoteProtocolError):
        return RemoteProtocolError(f"{where}: not a valid HTTP answer: {_reason(exc)}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UsageError(f"{what} URL {origin(url)!r} is not an http:// or https:// URL")
    if isinstance(exc, httpx.InvalidURL):
        return UsageError(f"{what} URL is invalid: {exc}")
    return NetworkError(f"{where}: {exc.__class__.__name__}: {_reason(exc)}")


def _json_answer(status: int, content_type: str, raw: bytes, *, where: str) -> JsonAnswer:
    """The answer with its body parsed; a 2xx answer that is not JSON is a protocol error."""
    if not raw.strip():
        return JsonAnswer(status, None)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        if not 200 <= status < 300:
            return JsonAnswer(status, None)  # an error page: the status says enough
        shown = content_type.split(";", maxsplit=1)[0] or "no content type"
        raise RemoteProtocolError(
            f"{where}: answer {status} is not JSON ({shown}, {len(raw)} bytes)",
            hint="is the URL that of LivePerson's service (or of a proxy that rewrites answers)?",
        ) from None
    return JsonAnswer(status, body)


def _reason(exc: BaseException) -> str:
    """The innermost OS reason of an httpx error ("Connection refused"), else its text."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        seen = nxt
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror) and seen.strerror:
            return f"cannot resolve the host name: {seen.strerror}"
        if isinstance(seen, OSError) and seen.errno and seen.errno > 0:
            return os.strerror(seen.errno)
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
    return str(exc) or exc.__class__.__name__


__all__ = ["DEFAULT_TIMEOUT", "MAX_ANSWER_BYTES", "JsonAnswer", "origin", "request_json"]
