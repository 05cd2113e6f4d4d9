"""The DevTools protocol over ``--remote-debugging-pipe``, sans-I/O.

Chromium reads commands from fd 3 and writes answers and events to fd 4; each message is one JSON
object followed by a NUL byte. :class:`CdpConnection` frames and matches them and never touches a
file descriptor: feed it bytes with :meth:`~CdpConnection.receive_data`, take what to write from
:meth:`~CdpConnection.data_to_send`.

* a command ``{"id", "method", "params", "sessionId"?}`` is answered by ``{"id", "result"}`` or
  ``{"id", "error": {"code", "message"}}``;
* an event ``{"method", "params", "sessionId"?}`` (``sessionId`` names the attached page).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from callops.errors import RemoteProtocolError

#: a larger message means a bug or a hostile page; the connection fails instead of buffering it
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class CommandResult:
    """The answer to command ``id``: ``result`` or ``error``."""

    id: int
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    method: str
    params: dict[str, Any]
    session_id: str | None = None


class CdpConnection:
    """Framing and command ids of one DevTools pipe."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._buffer = bytearray()
        self._outgoing = bytearray()

    def send_command(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> int:
        """Queue a command; its id (to match the :class:`CommandResult`)."""
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self._outgoing += json.dumps(message).encode() + b"\0"
        return command_id

    def data_to_send(self) -> bytes:
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes) -> list[CommandResult | Event]:
        """The complete messages in ``data`` (and what was buffered before)."""
        self._buffer += data
        out: list[CommandResult | Event] = []
        while True:
            end = self._buffer.find(b"\0")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise RemoteProtocolError(f"DevTools message larger than {MAX_MESSAGE_BYTES} bytes")
                return out
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            try:
                message = json.loads(raw)
            except ValueError as exc:
                raise RemoteProtocolError(f"DevTools sent invalid JSON: {exc}") from None
            if not isinstance(message, dict):
                raise RemoteProtocolError("DevTools sent a message that is not an object")
            if "id" in message:
                out.append(
                    CommandResult(int(message["id"]), message.get("result") or {}, message.get("error"))
                )
            elif "method" in message:
                out.append(
                    Event(str(message["method"]), message.get("params") or {}, message.get("sessionId"))
                )


__all__ = ["MAX_MESSAGE_BYTES", "CdpConnection", "CommandResult", "Event"]
