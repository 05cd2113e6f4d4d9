"""The CoBrowse stand-in: one channel socket of ``/cobrowse/account/{account}?v=1``, sans-I/O.

The real call service behind lpTag is proprietary; callops stands in for it with its own JSON
protocol, keyed by ``serviceId`` (docs/emulator.md has the full reference). A connection:

1. authenticates: ``{"type":"auth","role":"consumer","jwt":...}`` (same dev-mode/HS256 rules as
   the consumer websocket; the identity is the JWT ``sub``) or ``{"type":"auth","role":"agent",
   "token":...}`` (dev mode: no token needed; with a secret, an HS256 JWT signed with it whose
   ``sub`` is the agent id);
2. consumers publish lpTag events: ``{"type":"lptag","event":"cobrowseAccepted","payload":{...}}``,
   validated by :func:`callops.consumer.lptag.validate_event` (every bad field named);
3. peers ``join`` a call by ``serviceId``, relay ``signal`` messages verbatim to the other peer,
   learn ``presence`` of the other peer, and ``hangup``.

Every message may carry an ``id``; answers (``ack`` or ``error``) echo it. ``signal`` and
``leave`` are acknowledged only when they carry an ``id``; errors are always sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum

from callops.consumer.lptag import LpTagEventName, validate_event
from callops.consumer.models import decode_json
from callops.errors import AuthenticationError, RemoteProtocolError, ValidationError
from callops.jsontypes import JsonObject, JsonValue
from callops.orchestrator.emulator.auth import CLOSE_TOKEN_REJECTED, verify_jwt
from callops.orchestrator.emulator.model import (
    Call,
    CallEvent,
    CallStateError,
    Delivery,
)
from callops.orchestrator.emulator.session import CLOSE_INIT_TIMEOUT, Close, Outcome, SocketCore

log = logging.getLogger("callops.emulator")

#: Signals held for a peer that has not joined yet, per direction; more is an error (503).
MAX_PENDING_SIGNALS = 64


class Role(StrEnum):
    AGENT = "agent"
    CONSUMER = "consumer"


class ChannelError(Exception):
    """An error answer: ``code`` (HTTP semantics), title, details and the bad fields."""

    def __init__(
        self, code: int, title: str, details: str, problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(details)
        self.code = code
        self.title = title
        self.details = details
        self.problems = problems or []


def _other(role: Role) -> Role:
    return Role.CONSUMER if role == Role.AGENT else Role.AGENT


def _peer(call: Call, role: Role) -> int | None:
    return call.agent_peer if role == Role.AGENT else call.consumer_peer


def _set_peer(call: Call, role: Role, session_id: int | None) -> None:
    if role == Role.AGENT:
        call.agent_peer = session_id
    else:
        call.consumer_peer = session_id


#: the page's events about one call (``sliderOpened`` is about every joined call)
_CALL_EVENTS = frozenset(
    {LpTagEventName.COBROWSE_OFFERED, LpTagEventName.COBROWSE_ACCEPTED, LpTagEventName.COBROWSE_DECLINED}
)


def _check_matches(call: Call, event: str, payload: JsonObject) -> None:
    """The event's agentId and mode must be the call's (400 naming each field otherwise)."""
    problems = []
    if payload.get("agentId") != call.agent_id:
        problems.append(("agentId", f"is {payload.get('agentId')!r}, the call's agent is {call.agent_id!r}"))
    if payload.get("mode") != call.mode:
        problems.append(("mode", f"is {payload.get('mode')!r}, the call's mode is {call.mode!r}"))
    if problems:
        raise ChannelError(
            400, "Invalid lpTag event", f"{event} does not match call {call.service_id}", problems
        )


class CoBrowseConnection(SocketCore):
    """The protocol state of one CoBrowse channel socket."""

    role: Role | None
    identity: str | None
    #: serviceIds this socket has joined
    joined: set[str]
    closed: bool

    def _begin(self) -> None:
        self.role = None
        self.identity = None
        self.joined = set()
        self.closed = False

    # entry points -----------------------------------------------------------------------------------

    def check_deadline(self, now: float) -> Close | None:
        if self.role is None and not self.closed and now >= self.init_deadline:
            self.closed = True
            return Close(CLOSE_INIT_TIMEOUT, f"auth not received within {self.init_timeout:g} s")
        return None

    def receive_text(self, data: str | bytes, now: float) -> Outcome:
        if self.closed:
            return Outcome()
        msg_id: JsonValue = None
        try:
            try:
                message = decode_json(data)
            except RemoteProtocolError as exc:
                raise ChannelError(400, "Bad frame", f"frame is {exc.message}") from None
            if not isinstance(message, dict):
                raise ChannelError(
                    400, "Bad frame", f"frame must be a JSON object, got {type(message).__name__}"
                )
            msg_id = message.get("id")
            kind = message.get("type")
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is None:
                known = ", ".join(sorted(self._handlers))
                raise ChannelError(
                    400,
                    "Unknown message type",
                    f"message type {kind!r} is not one of: {known}",
                    [("type", "unknown")],
                )
            if kind != "auth" and self.role is None:
                raise ChannelError(401, "Not authenticated", f"send 'auth' before {kind!r}")
            return handler(self, message, now)
        except ChannelError as exc:
            if exc.code in (400, 401):
                log.info("cobrowse %d: %d %s: %s", self.session_id, exc.code, exc.title, exc.details[:200])
            return Outcome([Delivery(self.session_id, self._error(msg_id, exc))])
        except AuthenticationError as exc:
            log.info("cobrowse %d: token rejected: %s", self.session_id, exc.message)
            self.closed = True
            return Outcome(close=Close(CLOSE_TOKEN_REJECTED, exc.message))

    def disconnected(self, now: float) -> list[Delivery]:
        """The socket is gone: leave every call, tell the other peers."""
        self.closed = True
        out: list[Delivery] = []
        for service_id in list(self.joined):
            out += self._leave(service_id)
        return out

    # answers ------------------------------------------------------------------------------------------

    def _error(self, msg_id: JsonValue, exc: ChannelError) -> JsonObject:
        frame: JsonObject = {
            "type": "error",
            "code": exc.code,
            "title": exc.title,
            "details": exc.details,
        }
        if msg_id is not None:
            frame["id"] = msg_id
        if exc.problems:
            frame["problems"] = [{"field": f, "message": m} for f, m in exc.problems]
        return frame

    def _ack(self, message: JsonObject, **fields: JsonValue) -> Delivery:
        frame: JsonObject = {"type": "ack", **fields}
        if message.get("id") is not None:
            frame["id"] = message["id"]
        return Delivery(self.session_id, frame)

    # lookups ------------------------------------------------------------------------------------------

    def _call(self, message: JsonObject) -> Call:
        service_id = message.get("serviceId")
        if not isinstance(service_id, str) or not service_id:
            raise ChannelError(
                400,
                "Bad message",
                "serviceId is mandatory and must be a non-empty string",
                [("serviceId", "missing")],
            )
        call = self.model.calls_by_service_id.get(service_id)
        if call is None or call.account != self.account:
            raise ChannelError(
                404,
                "Unknown serviceId",
                f"no call {service_id!r} on account {self.account}",
                [("serviceId", "unknown")],
            )
        if self.role == Role.CONSUMER and call.consumer_id != self.identity:
            raise ChannelError(
                403, "Not your call", f"call {service_id} belongs to another consumer, not {self.identity}"
            )
        return call

    def _apply(self, call: Call, event: CallEvent, now: float, reason: str) -> list[Delivery]:
        try:
            return self.model.apply(call, event, now, reason=reason)
        except CallStateError as exc:
            raise ChannelError(409, "Call state conflict", exc.message) from None

    # handlers -----------------------------------------------------------------------------------------

    def _auth(self, message: JsonObject, now: float) -> Outcome:
        if self.role is not None:
            raise ChannelError(
                409, "Already authenticated", f"this socket is already {self.role} {self.identity}"
            )
        try:
            role = Role(str(message.get("role")))
        except ValueError:
            raise ChannelError(
                400, "Bad message", "role must be 'agent' or 'consumer'", [("role", "invalid")]
            ) from None
        if role == Role.CONSUMER:
            claims = verify_jwt(message.get("jwt"), self.jwt_secret, now=now)
            identity = claims.sub
        elif self.jwt_secret is not None:
            identity = verify_jwt(message.get("token"), self.jwt_secret, now=now, what="agent token").sub
        else:
            identity = str(message.get("agentId") or self.model.agent_id(self.account))
        self.role, self.identity = role, identity
        log.info("cobrowse %d: %s %s on account %s", self.session_id, role, identity, self.account)
        return Outcome([self._ack(message, role=str(role), identity=identity)])

    def _lptag(self, message: JsonObject, now: float) -> Outcome:
        if self.role != Role.CONSUMER:
            raise ChannelError(403, "Consumers only", "lpTag events are published by the consumer side")
        event = message.get("event")
        try:
            validated = validate_event(str(event), message.get("payload"))
        except ValidationError as exc:
            raise ChannelError(400, "Invalid lpTag event", exc.message, exc.problems) from None
        payload = validated.model_dump(mode="json", exclude_none=True)
        if event == LpTagEventName.SLIDER_OPENED:
            if not self.joined:
                raise ChannelError(409, "No call", "sliderOpened: join the call (by serviceId) first")
            out: list[Delivery] = [self._ack(message, event=event)]
            for service_id in self.joined:
                out += self._forward(
                    self.model.calls_by_service_id[service_id], Role.CONSUMER, event, payload
                )
            return Outcome(out)
        if event not in _CALL_EVENTS:
            raise ChannelError(
                400,
                "Unsupported lpTag event",
                f"{event!r} is not published by the page",
                [("event", "unsupported")],
            )
        call = self._call(payload)
        _check_matches(call, str(event), payload)
        out = self._call_event(call, LpTagEventName(event), now)
        out.insert(
            0, self._ack(message, event=event, serviceId=call.service_id, sessionState=str(call.state))
        )
        out += self._forward(call, Role.CONSUMER, str(event), payload)
        return Outcome(out)

    def _call_event(self, call: Call, event: LpTagEventName, now: float) -> list[Delivery]:
        """The call's answer to the page's cobrowseOffered / cobrowseDeclined / cobrowseAccepted."""
        if event == LpTagEventName.COBROWSE_OFFERED:
            if not call.live:
                raise ChannelError(
                    409, "Call state conflict", f"call {call.service_id} is CLOSED ({call.closed_reason})"
                )
            call.offered = True
            return []
        if event == LpTagEventName.COBROWSE_DECLINED:
            return self._apply(call, CallEvent.CONSUMER_DECLINE, now, "declined by consumer")
        if call.state == "ACCEPTED":
            return []  # a duplicate accept is idempotent (docs/emulator.md)
        return self._apply(call, CallEvent.CONSUMER_ACCEPT, now, "accepted by consumer") + self._join(
            call, now
        )

    def _forward(self, call: Call, sender: Role, event: str, payload: JsonObject) -> list[Delivery]:
        peer = _peer(call, _other(sender))
        if peer is None:
            return []
        frame: JsonObject = {
            "type": "lptag",
            "serviceId": call.service_id,
            "event": event,
            "payload": payload,
        }
        return [Delivery(peer, frame)]

    def _join(self, call: Call, now: float) -> list[Delivery]:
        """Bind this socket as the call's peer of its role; presence to the other peer."""
        assert self.role is not None
        role = self.role
        out: list[Delivery] = []
        old = _peer(call, role)
        if old is not None and old != self.session_id:
            out.append(Delivery(old, {"type": "replaced", "serviceId": call.service_id}))
            log.info("call %s: %s socket %d replaced by %d", call.service_id, role, old, self.session_id)
        _set_peer(call, role, self.session_id)
        self.joined.add(call.service_id)
        other = _peer(call, _other(role))
        if other is not None and old != self.session_id:
            out.append(
                Delivery(
                    other,
                    {"type": "presence", "serviceId": call.service_id, "role": str(role), "event": "joined"},
                )
            )
        for frame in call.pending[role]:
            out.append(Delivery(self.session_id, frame))
        call.pending[role] = []
        if role == Role.CONSUMER and call.state == "ACCEPTED":
            out += self._apply(call, CallEvent.CONSUMER_JOIN, now, "consumer joined")
        return out

    def _join_message(self, message: JsonObject, now: float) -> Outcome:
        call = self._call(message)
        if not call.live:
            raise ChannelError(
                409, "Call state conflict", f"call {call.service_id} is CLOSED ({call.closed_reason})"
            )
        if self.role == Role.CONSUMER and call.state != "ACCEPTED":
            raise ChannelError(
                409,
                "Call state conflict",
                f"call {call.service_id} is {call.state}: publish cobrowseAccepted first",
            )
        ack_index = 0
        out = self._join(call, now)
        peers: JsonObject = {"agent": call.agent_peer is not None, "consumer": call.consumer_peer is not None}
        # the ack comes before the pending signals
        out.insert(
            ack_index,
            self._ack(message, serviceId=call.service_id, sessionState=str(call.state), peers=peers),
        )
        return Outcome(out)

    def _leave(self, service_id: str) -> list[Delivery]:
        assert self.role is not None
        self.joined.discard(service_id)
        call = self.model.calls_by_service_id.get(service_id)
        if call is None or _peer(call, self.role) != self.session_id:
            return []
        _set_peer(call, self.role, None)
        log.info("call %s: %s left", service_id, self.role)
        other = _peer(call, _other(self.role))
        if other is None:
            return []
        return [
            Delivery(
                other, {"type": "presence", "serviceId": service_id, "role": str(self.role), "event": "left"}
            )
        ]

    def _leave_message(self, message: JsonObject, now: float) -> Outcome:
        call = self._call(message)
        out = self._leave(call.service_id)
        if message.get("id") is not None:
            out.insert(0, self._ack(message, serviceId=call.service_id))
        return Outcome(out)

    def _signal(self, message: JsonObject, now: float) -> Outcome:
        assert self.role is not None
        call = self._call(message)
        if call.service_id not in self.joined:
            raise ChannelError(409, "Not joined", f"join call {call.service_id} before signalling")
        if not call.live:
            raise ChannelError(
                409, "Call state conflict", f"call {call.service_id} is CLOSED ({call.closed_reason})"
            )
        if "data" not in message:
            raise ChannelError(400, "Bad message", "signal needs 'data'", [("data", "missing")])
        frame = {
            "type": "signal",
            "serviceId": call.service_id,
            "from": str(self.role),
            "data": message["data"],
        }
        out: list[Delivery] = []
        target = _other(self.role)
        peer = _peer(call, target)
        if peer is not None:
            out.append(Delivery(peer, frame))
        else:
            pending = call.pending[target]
            if len(pending) >= MAX_PENDING_SIGNALS:
                raise ChannelError(
                    503,
                    "Peer absent",
                    f"the {target} has not joined; {MAX_PENDING_SIGNALS} signals already held",
                )
            pending.append(frame)
        if message.get("id") is not None:
            out.insert(0, self._ack(message, serviceId=call.service_id, delivered=peer is not None))
        return Outcome(out)

    def _hangup(self, message: JsonObject, now: float) -> Outcome:
        call = self._call(message)
        if not call.live:
            raise ChannelError(
                409, "Call state conflict", f"call {call.service_id} is CLOSED ({call.closed_reason})"
            )
        if self.role == Role.AGENT:
            event = CallEvent.AGENT_CANCEL if call.state == "INVITED" else CallEvent.AGENT_HANG_UP
        else:
            event = CallEvent.CONSUMER_DECLINE if call.state == "INVITED" else CallEvent.CONSUMER_HANG_UP
        ack = self._ack(message, serviceId=call.service_id, sessionState="CLOSED")
        return Outcome([ack, *self._apply(call, event, now, str(event))])

    _handlers: dict[str, Callable[[CoBrowseConnection, JsonObject, float], Outcome]] = {
        "auth": _auth,
        "lptag": _lptag,
        "join": _join_message,
        "leave": _leave_message,
        "signal": _signal,
        "hangup": _hangup,
    }


__all__ = ["MAX_PENDING_SIGNALS", "ChannelError", "CoBrowseConnection", "Role"]
