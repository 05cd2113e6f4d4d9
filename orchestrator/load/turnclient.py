"""A sans-I/O TURN client for one load-test allocation: Allocate, ChannelBind, refreshes.

The control plane of ``callops load``. Messages are aioice's STUN codec (``stun.Message``,
``stun.parse_message``, MESSAGE-INTEGRITY and FINGERPRINT); credentials are callops' TURN REST
credentials; failures become the same :class:`~callops.turn.allocation.TurnRequestFailed`
sentences as the probes'. There is no socket and no clock here: the worker feeds received STUN
messages to :meth:`TurnClient.receive` and the time to :meth:`TurnClient.poll`, and sends
what :meth:`TurnClient.data_to_send` returns on the allocation's own 5-tuple -- so data and control
share one socket, as a browser's do, and thousands of allocations run in one loop.

Timers follow RFC 8656: the allocation is refreshed before its lifetime ends (section 7), and the
channel binding -- which also refreshes the permission (section 12) -- is re-sent before the
permission's 300 s run out, so calls longer than 5 minutes keep their relay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aioice import stun
from aioice.turn import make_integrity_key

from callops.turn.allocation import ERROR_MEANINGS

log = logging.getLogger(__name__)

#: RFC 8656 section 12: channel numbers 0x4000-0x4FFF
FIRST_CHANNEL = 0x4000
#: UDP retransmission: first RTO and the number of sends (RFC 8489 section 6.2.1, shortened)
RTO_S = 0.5
MAX_SENDS = 5
#: a request over TCP/TLS is given up after this long (no retransmissions on streams)
STREAM_TIMEOUT_S = 5.0

_UDP_TRANSPORT = 17 << 24


@dataclass(slots=True)
class _Pending:
    request: stun.Message
    kind: str
    sent_at: float
    next_send: float
    sends: int
    authenticated: bool


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """What happened: ``allocated``, ``bound``, ``refreshed``, ``failed``."""

    kind: str
    detail: str = ""
    #: the TURN error code of a failure (0 for a timeout)
    code: int = 0


class TurnClient:
    """One allocation's control plane (RFC 8656), as a state machine fed with messages and time.

    States: ``new`` -> ``allocating`` -> ``allocated`` -> ``binding`` -> ``ready``; ``failed`` and
    ``released`` end it. :meth:`_set_state` is the one place that changes it.
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        stream: bool,
        lifetime: int = 600,
        refresh_s: float | None = None,
        rebind_s: float = 240.0,
        label: str = "TURN",
    ) -> None:
        self.username = username
        self._password = password
        self.stream = stream
        self.lifetime = lifetime
        #: allocation refresh interval (default: a minute before the lifetime ends, at least half way)
        self.refresh_s = refresh_s if refresh_s is not None else max(lifetime / 2, lifetime - 60.0)
        #: channel binding (and with it permission) refresh interval: below the 300 s permission
        self.rebind_s = rebind_s
        self.label = label
        self.state = "new"
        self.realm: str | None = None
        self.nonce: bytes | None = None
        self._key: bytes | None = None
        self.relayed: tuple[str, int] | None = None
        self.mapped: tuple[str, int] | None = None
        self.peer: tuple[str, int] | None = None
        self.channel = 0
        self.allocate_ms: float | None = None
        self.refreshes = 0
        self.rebinds = 0
        #: allocations whose success answer was lost and that were deleted and made again
        self.recoveries = 0
        self._pending: dict[bytes, _Pending] = {}
        self._outbox: list[bytes] = []
        self._events: list[TurnEvent] = []
        self._next_refresh = float("inf")
        self._next_rebind = float("inf")
        self._started = 0.0

    # -- state ------------------------------------------------------------------------------------

    def _set_state(self, state: str, why: str = "") -> None:
        log.debug("%s %s -> %s%s", self.label, self.state, state, f" ({why})" if why else "")
        self.state = state

    def _fail(self, detail: str, code: int = 0) -> None:
        self._set_state("failed", detail)
        self._pending.clear()
        self._events.append(TurnEvent("failed", detail, code))

    # -- requests ---------------------------------------------------------------------------------

    def _send(self, request: stun.Message, kind: str, now: float) -> None:
        authenticated = self._key is not None
        if authenticated:
            assert self.realm is not None and self.nonce is not None and self._key is not None
            request.attributes["USERNAME"] = self.username
            request.attributes["REALM"] = self.realm
            request.attributes["NONCE"] = self.nonce
            request.add_message_integrity(self._key)
        self._pending[request.transaction_id] = _Pending(
            request, kind, now, now + (STREAM_TIMEOUT_S if self.stream else RTO_S), 1, authenticated
        )
        self._outbox.append(bytes(request))

    def _resend(self, pending: _Pending, now: float) -> None:
        """The same request with a new transaction id and fresh credentials (after 401/438)."""
        request = stun.Message(
            message_method=pending.request.message_method, message_class=stun.Class.REQUEST
        )
        for name, value in pending.request.attributes.items():
            if name not in ("USERNAME", "REALM", "NONCE", "MESSAGE-INTEGRITY", "FINGERPRINT"):
                request.attributes[name] = value
        self._send(request, pending.kind, now)

    def allocate(self, now: float) -> None:
        """Start the Allocate (RFC 8656 section 7.1); the 401 round follows by itself."""
        self._started = now
        self._set_state("allocating")
        self._allocate_request(now)

    def _allocate_request(self, now: float) -> None:
        request = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
        request.attributes["LIFETIME"] = self.lifetime
        request.attributes["REQUESTED-TRANSPORT"] = _UDP_TRANSPORT
        self._send(request, "allocate", now)

    def bind(self, peer: tuple[str, int], channel: int, now: float) -> None:
        """ChannelBind ``channel`` to ``peer`` (RFC 8656 section 11.1), which also installs the permission."""
        self.peer = peer
        self.channel = channel
        self._set_state("binding")
        self._channel_bind(now)

    def _channel_bind(self, now: float) -> None:
        assert self.peer is not None
        request = stun.Message(message_method=stun.Method.CHANNEL_BIND, message_class=stun.Class.REQUEST)
        request.attributes["CHANNEL-NUMBER"] = self.channel
        request.attributes["XOR-PEER-ADDRESS"] = self.peer
        self._send(request, "bind", now)

    def _refresh(self, now: float, lifetime: int, kind: str | None = None) -> None:
        request = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
        request.attributes["LIFETIME"] = lifetime
        self._send(request, kind or ("refresh" if lifetime else "release"), now)

    def release(self, now: float) -> None:
        """Refresh with LIFETIME 0 (RFC 8656 section 7.2); nobody waits for the answer."""
        if self.state in ("allocated", "binding", "ready"):
            self._refresh(now, 0)
            self._set_state("released")
        self._pending.clear()

    # -- input ------------------------------------------------------------------------------------

    def receive(self, message: stun.Message, now: float) -> None:
        """A STUN message from the server."""
        pending = self._pending.pop(message.transaction_id, None)
        if pending is None or self.state in ("failed", "released"):
            return
        if message.message_class == stun.Class.ERROR:
            self._error_response(pending, message, now)
        elif pending.kind == "allocate":
            self._allocated(message, now)
        elif pending.kind == "bind":
            self._next_rebind = now + self.rebind_s
            if self.state == "binding":
                self._set_state("ready")
                self._events.append(TurnEvent("bound"))
            else:
                self.rebinds += 1
                self._events.append(TurnEvent("refreshed", "channel"))
        elif pending.kind == "refresh":
            self.refreshes += 1
            self._events.append(TurnEvent("refreshed", "allocation"))
        elif pending.kind == "reset":
            self._allocate_request(now)

    def _error_response(self, pending: _Pending, message: stun.Message, now: float) -> None:
        """401 and 438 are answered with the new nonce, a 437 after a retransmission recovered;
        any other error fails the client with its code's meaning."""
        code, reason = message.attributes.get("ERROR-CODE", (0, ""))
        if code == 401 and not pending.authenticated and "NONCE" in message.attributes:
            self.realm = str(message.attributes.get("REALM", ""))
            self.nonce = message.attributes["NONCE"]
            self._key = make_integrity_key(self.username, self.realm, self._password)
            self._resend(pending, now)
        elif code == 438 and "NONCE" in message.attributes:
            self.nonce = message.attributes["NONCE"]
            self._resend(pending, now)
        elif code == 437 and pending.kind == "allocate" and pending.sends > 1 and not self.recoveries:
            # a retransmitted Allocate whose first copy created the allocation, but whose answer
            # was lost (or overtaken): delete that allocation, then allocate again
            self.recoveries += 1
            self._set_state("allocating", "437 after a retransmission: deleting the orphan")
            self._refresh(now, 0, kind="reset")
        elif pending.kind == "reset":  # the orphan is gone either way: allocate again
            self._allocate_request(now)
        else:
            meaning = ERROR_MEANINGS.get(int(code), str(reason).strip() or "error")
            self._fail(f"{self.label}: {pending.kind} failed: {code}: {meaning}", int(code))

    def _allocated(self, message: stun.Message, now: float) -> None:
        """Allocate success: the relayed address, the granted lifetime, the refresh timer."""
        relayed = message.attributes.get("XOR-RELAYED-ADDRESS")
        if relayed is None:
            self._fail(f"{self.label}: Allocate success response lacks XOR-RELAYED-ADDRESS", 0)
            return
        self.relayed = (str(relayed[0]), int(relayed[1]))
        mapped = message.attributes.get("XOR-MAPPED-ADDRESS")
        self.mapped = None if mapped is None else (str(mapped[0]), int(mapped[1]))
        granted = int(message.attributes.get("LIFETIME", self.lifetime))
        self.refresh_s = min(self.refresh_s, max(1.0, granted - 60.0), max(1.0, granted / 2))
        self.allocate_ms = (now - self._started) * 1000
        self._next_refresh = now + self.refresh_s
        self._set_state("allocated")
        self._events.append(TurnEvent("allocated"))

    def poll(self, now: float) -> None:
        """Retransmit (UDP), give up on unanswered requests, and send due refreshes."""
        for tid, pending in list(self._pending.items()):
            if now < pending.next_send:
                continue
            if self.stream or pending.sends >= MAX_SENDS:
                del self._pending[tid]
                self._fail(f"{self.label}: {pending.kind}: no answer within {now - pending.sent_at:.1f} s", 0)
                return
            pending.sends += 1
            pending.next_send = now + RTO_S * (2 ** (pending.sends - 1))
            self._outbox.append(bytes(pending.request))
        if self.state in ("allocated", "binding", "ready"):
            if now >= self._next_refresh:
                self._next_refresh = now + self.refresh_s
                self._refresh(now, self.lifetime)
            if self.state == "ready" and now >= self._next_rebind:
                self._next_rebind = now + self.rebind_s
                self._channel_bind(now)

    # -- output -----------------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[TurnEvent]:
        out, self._events = self._events, []
        return out


__all__ = ["FIRST_CHANNEL", "TurnClient", "TurnEvent"]
