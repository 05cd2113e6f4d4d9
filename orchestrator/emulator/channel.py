"""``CoBrowseChannel``: the async client of the emulator's CoBrowse stand-in, for both sides.

The headless agent connects with ``role="agent"`` and joins the call at once; the headless
consumer connects with ``role="consumer"`` and its JWT, publishes ``cobrowseOffered`` /
``cobrowseAccepted`` (accepting joins the call), or after a reload calls :meth:`join` and
publishes ``sliderOpened``. Both then exchange WebRTC signalling with :meth:`send_signal` and read
pushed messages (``signal``, ``presence``, ``state``, ``lptag``, ``replaced``) with
:meth:`receive` or ``async for``.

Requests that carry an ``id`` are answered; a refusal raises: 400 ->
:class:`~callops.errors.ValidationError` (``problems`` name every bad field), 401/403 ->
:class:`~callops.errors.AuthenticationError`, others -> :class:`~callops.errors.ProtocolError`.
Socket problems become :class:`~callops.errors.NetworkError`; timeouts
:class:`~callops.errors.DeadlineExceeded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from callops.consumer.models import decode_json
from callops.errors import (
    AuthenticationError,
    CallopsError,
    DeadlineExceeded,
    NetworkError,
    ProtocolError,
    RemoteProtocolError,
    ValidationError,
)
from callops.jsontypes import JsonObject, JsonValue
from callops.orchestrator.emulator.auth import RedactedFrameLog
from callops.orchestrator.emulator.model import Refusal

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection


class ChannelRefused(Refusal, ProtocolError):
    """The CoBrowse service refused a request (code 404, 409, 503 ...)."""

    prefix = "cobrowse: "


def _refusal(frame: JsonObject) -> CallopsError:
    raw_code = frame.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else 0
    title, details = str(frame.get("title", "")), str(frame.get("details", ""))
    raw_problems = frame.get("problems")
    problems = [
        (str(p.get("field"))[:200], str(p.get("message"))[:200])
        for p in (raw_problems if isinstance(raw_problems, list) else [])
        if isinstance(p, dict)
    ]
    if code == 400 and problems:
        return ValidationError(f"cobrowse request ({title})", problems)
    if code in (401, 403):
        return AuthenticationError(f"cobrowse: {code} {title}: {details}")
    return ChannelRefused(code, title, details)


class CoBrowseChannel:
    """One socket of the CoBrowse stand-in, bound to one call (``service_id``)."""

    def __init__(self, ws: ClientConnection, *, role: str, service_id: str, timeout: float) -> None:
        self._ws = ws
        self.role = role
        self.service_id = service_id
        self.timeout = timeout
        self.identity: str | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[JsonObject]] = {}
        self._inbox: asyncio.Queue[JsonObject | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self.close_code: int | None = None
        self.close_reason: str | None = None

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        role: str,
        service_id: str,
        jwt: str | None = None,
        token: str | None = None,
        join: bool | None = None,
        timeout: float = 10.0,
    ) -> CoBrowseChannel:
        """Connect and authenticate (consumer: ``jwt``; agent: ``token`` if the emulator has a
        secret). ``join`` defaults to True for the agent, False for the consumer (accepting joins)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI

        try:
            async with asyncio.timeout(timeout):
                ws = await connect(
                    url,
                    max_size=2**20,
                    open_timeout=timeout,
                    logger=RedactedFrameLog(logging.getLogger("callops.cobrowse.wire"), [jwt, token]),
                )
        except TimeoutError:
            raise DeadlineExceeded(f"cobrowse {url}: no connection within {timeout:g} s") from None
        except ConnectionRefusedError:
            raise NetworkError(
                f"cobrowse {url}: connection refused", hint="is the emulator running?"
            ) from None
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise NetworkError(f"cobrowse {url}: {exc}") from None
        channel = cls(ws, role=role, service_id=service_id, timeout=timeout)
        auth: JsonObject = {"type": "auth", "role": role}
        if jwt is not None:
            auth["jwt"] = jwt
        if token is not None:
            auth["token"] = token
        try:
            ack = await channel.request(auth)
            identity = ack.get("identity")
            channel.identity = identity if isinstance(identity, str) else None
            if join if join is not None else role == "agent":
                await channel.join()
        except BaseException:
            await channel.close()
            raise
        return channel

    # requests -------------------------------------------------------------------------------------

    async def request(self, message: JsonObject) -> JsonObject:
        """Send ``message`` with a fresh ``id``; its ``ack``, or the refusal raised."""
        msg_id = str(next(self._ids))
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        try:
            await self._send({**message, "id": msg_id})
            async with asyncio.timeout(self.timeout):
                frame = await future
        except TimeoutError:
            raise DeadlineExceeded(
                f"cobrowse: no answer to {message.get('type')!r} within {self.timeout:g} s"
            ) from None
        finally:
            self._waiting.pop(msg_id, None)
        if frame.get("type") == "error":
            raise _refusal(frame)
        return frame

    async def join(self) -> JsonObject:
        """Join the call as this role's peer (after a reload: the same consumer again)."""
        return await self.request({"type": "join", "serviceId": self.service_id})

    async def publish(self, event: str, payload: JsonObject | None = None) -> JsonObject:
        """Publish an lpTag event (``cobrowseOffered``, ``cobrowseAccepted``, ``cobrowseDeclined``,
        ``sliderOpened``) -- the consumer side only."""
        message: JsonObject = {"type": "lptag", "event": event}
        if payload is not None:
            message["payload"] = payload
        return await self.request(message)

    async def send_signal(self, data: JsonValue, *, ack: bool = False) -> None:
        """Relay ``data`` (any JSON value) verbatim to the other peer (held until it joins)."""
        message = {"type": "signal", "serviceId": self.service_id, "data": data}
        if ack:
            await self.request(message)
        else:
            await self._send(message)

    async def hangup(self) -> JsonObject:
        """End the call from this side (the dialog goes CLOSED)."""
        return await self.request({"type": "hangup", "serviceId": self.service_id})

    # pushed messages ----------------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> JsonObject:
        """The next pushed message; :class:`NetworkError` once the socket is closed."""
        try:
            async with asyncio.timeout(timeout):
                frame = await self._inbox.get()
        except TimeoutError:
            raise DeadlineExceeded(f"cobrowse: nothing received within {timeout:g} s") from None
        if frame is None:
            self._inbox.put_nowait(None)  # stay closed for later callers
            raise NetworkError(
                f"cobrowse: channel closed ({self.close_code} {self.close_reason or ''})".rstrip()
            )
        return frame

    async def __aiter__(self) -> AsyncIterator[JsonObject]:
        while True:
            try:
                yield await self.receive()
            except NetworkError:
                return

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def __aenter__(self) -> CoBrowseChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # internals ----------------------------------------------------------------------------------------

    async def _send(self, message: JsonObject) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise NetworkError(f"cobrowse: channel closed ({exc})") from None

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self._ws:
                try:
                    frame = decode_json(raw)
                except RemoteProtocolError:
                    continue
                if not isinstance(frame, dict):
                    continue
                msg_id = frame.get("id")
                future = self._waiting.get(str(msg_id)) if msg_id is not None else None
                if future is not None and not future.done() and frame.get("type") in ("ack", "error"):
                    future.set_result(frame)
                else:
                    self._inbox.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = getattr(self._ws, "close_code", None)
            self.close_reason = getattr(self._ws, "close_reason", None)
            error: CallopsError = NetworkError(
                f"cobrowse: channel closed ({self.close_code} {self.close_reason or ''})".rstrip()
            )
            if self.close_code == 4401:
                error = AuthenticationError(f"cobrowse: token rejected: {self.close_reason}")
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(error)
            self._inbox.put_nowait(None)


__all__ = ["ChannelRefused", "CoBrowseChannel"]
