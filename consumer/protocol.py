"""The consumer side of the Messaging Window API, sans-I/O: requests, answers, timers, decisions.

:class:`ConsumerProtocol` builds the ``InitConnection`` request (its ClientProperties
``features`` include CO_BROWSE, or no voice/video invitation ever arrives), numbers requests,
matches answers to requests by ``reqId`` and feeds conversation change notifications to an
:class:`~callops.consumer.tracker.InvitationTracker`. It also makes the connection's decisions,
as data for the adapter (:class:`~callops.consumer.client.ConsumerClient`) to carry out:

- timers: :meth:`~ConsumerProtocol.next_deadline` says when to call
  :meth:`~ConsumerProtocol.on_timer`, which expires invitations, sends the keep-alive
  ``GetClock`` every ``keepalive_interval`` seconds (the server closes connections idle for 60 s)
  and drops a connection whose keep-alive is not answered within ``keepalive_timeout``;
- closes: :meth:`~ConsumerProtocol.on_close` says whether to renew the identity (a renewable one,
  on 4401/4407, once), reconnect, or give up (:class:`CloseDecision`);
- back-off: :meth:`~ConsumerProtocol.reconnect_delays`, exponential with jitter.

It never touches a socket or a clock: time is passed in.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from callops import __version__
from callops.consumer.models import (
    EX_CONVERSATION_CHANGE_NOTIFICATION,
    GET_CLOCK,
    INIT_CONNECTION,
    MAX_FRAME_BYTES,
    MAX_JWT_LENGTH,
    ClientProperties,
    ConsumerAuthentication,
    ExConversationChangeNotification,
    Notification,
    Request,
    Response,
    parse_body,
    parse_frame,
)
from callops.consumer.tracker import InvitationTracker, TrackerEvent
from callops.errors import LocalProtocolError, RemoteProtocolError
from callops.secret import Secret

#: Close codes after which a fresh token is needed.
AUTH_CLOSE_CODES = frozenset({4401, 4407, 1011})
#: Close codes after which an unauthenticated consumer signs up again and reconnects once.
RENEW_CLOSE_CODES = frozenset({4401, 4407})
#: Seconds after a renewal during which another rejection counts as a repeat (final, not renewed).
RENEW_HOLDOFF = 5.0
DEFAULT_FEATURES = ("CO_BROWSE",)


def jwt_subject(token: str) -> str | None:
    """The ``sub`` claim of a JWT, unverified (the consumer id), or None -- also for a token that is
    not a JWT, is longer than ``MAX_JWT_LENGTH`` or is hostile (PyJWT decodes it)."""
    import jwt

    if not isinstance(token, str) or len(token) > MAX_JWT_LENGTH or token.count(".") != 2:
        return None
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, RecursionError, ValueError, TypeError, OverflowError):
        return None
    sub = payload.get("sub")
    return sub if isinstance(sub, str) and sub else None


def backoff_delays(
    initial: float, maximum: float, factor: float, *, rng: Callable[[], float] = random.random
) -> Iterable[float]:
    """Exponential back-off with "equal jitter": attempt n waits between d/2 and d, d = initial*factor**n."""
    delay = initial
    while True:
        yield delay / 2 + rng() * delay / 2
        delay = min(maximum, delay * factor)


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request the protocol wants sent: its id, type and the frame text."""

    id: str
    type: str
    text: str


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The answer to one of our requests."""

    request_type: str
    response: Response


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    """A notification the tracker does not handle (e.g. ``ms.MessagingEventNotification``)."""

    notification: Notification


ProtocolEvent = ResponseReceived | NotificationReceived | TrackerEvent


@dataclass(frozen=True, slots=True)
class DropConnection:
    """The connection is dead (the keep-alive went unanswered): close it with ``code``, then reconnect."""

    code: int
    reason: str


#: what :meth:`ConsumerProtocol.on_timer` asks of the adapter: send a request, drop the connection,
#: or hand out a tracker event (an invitation expired)
TimerAction = OutgoingRequest | DropConnection | TrackerEvent


class CloseDecision(StrEnum):
    """What to do after the server closed the connection or rejected the token."""

    FAIL = "fail"
    """Final: the error ends the client."""
    RENEW = "renew"
    """Get a fresh identity from the IDP, then reconnect at once."""
    RECONNECT = "reconnect"
    """Reconnect with back-off (:meth:`ConsumerProtocol.reconnect_delays`)."""
    REPEATED = "repeated"
    """Rejected again right after a renewal: final, not renewed again."""


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """Keep-alive, reconnect and back-off settings of a :class:`ConsumerProtocol`."""

    #: seconds between keep-alive ``GetClock`` requests (the server closes connections idle for 60 s)
    keepalive_interval: float = 30.0
    #: seconds a keep-alive answer may take before the connection counts as dead
    keepalive_timeout: float = 10.0
    #: reconnect after a drop (else a drop is final)
    reconnect: bool = True
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    backoff_factor: float = 2.0
    #: reconnect attempts after one drop before giving up (``None``: no limit)
    max_reconnect_attempts: int | None = None
    #: the identity can be renewed (an unauthenticated consumer's IDP signup)
    renewable: bool = False


class ConsumerProtocol:
    """Request ids, answer matching, notification dispatch and the connection's decisions; no I/O,
    no clock.

    Request ids count up from ``"0"`` per connection (:meth:`connection_made` restarts them). The
    adapter asks :meth:`next_deadline` when to call :meth:`on_timer` (the tracker's expiry and the
    keep-alive), :meth:`on_close` what to do when the connection closes, and
    :meth:`reconnect_delays` how long to wait before each reconnect attempt.
    """

    def __init__(
        self,
        jwt: Secret,
        *,
        features: Iterable[str] = DEFAULT_FEATURES,
        client_properties: ClientProperties | None = None,
        tracker: InvitationTracker | None = None,
        policy: ConnectionPolicy | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._jwt = jwt
        self.policy = policy or ConnectionPolicy()
        self._rng = rng
        features = list(features)
        props = client_properties or ClientProperties(
            appId="callops",
            appVersion=__version__,
            deviceFamily="DESKTOP",
            os="LINUX",
            integration="BRAND_SDK",
        )
        merged = list(props.features or [])
        merged += [f for f in features if f not in merged]
        self.client_properties = props.model_copy(update={"features": merged})
        self.tracker = (
            tracker if tracker is not None else InvitationTracker(consumer_id=jwt_subject(jwt.reveal()))
        )
        self._next_id = 0
        self._pending: dict[str, str] = {}
        self.initialized = False
        #: when the next keep-alive is due, and the id and answer deadline of the one in flight
        self._keepalive_at: float | None = None
        self._keepalive: tuple[str, float] | None = None
        self._renewed_at: float | None = None

    def set_jwt(self, jwt: Secret, now: float | None = None) -> None:
        """A fresh identity: the next InitConnection carries ``jwt``; the tracker learns its consumer id.
        With ``now`` it was a renewal: a rejection within :data:`RENEW_HOLDOFF` s is a repeat."""
        self._jwt = jwt
        self.tracker.consumer_id = jwt_subject(jwt.reveal())
        if now is not None:
            self._renewed_at = now

    # --- timers: the tracker's expiry and the keep-alive ----------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` next has work to do (the adapter's clock), or ``None``."""
        deadlines = [self.tracker.next_deadline(), self._keepalive_at]
        if self._keepalive is not None:
            deadlines.append(self._keepalive[1])
        return min((d for d in deadlines if d is not None), default=None)

    def on_timer(self, now: float) -> list[TimerAction]:
        """Expire invitations, send a keep-alive when due, drop a connection whose keep-alive went
        unanswered; what the adapter must do, in order."""
        actions: list[TimerAction] = list(self.tracker.tick(now))
        if self._keepalive is not None and now >= self._keepalive[1]:
            self.forget(self._keepalive[0])
            self._keepalive = None
            actions.append(DropConnection(4000, "keep-alive timeout"))
        elif self._keepalive_at is not None and now >= self._keepalive_at and self.initialized:
            self._keepalive_at = None
            request = self._request(GET_CLOCK, None)
            self._keepalive = (request.id, now + self.policy.keepalive_timeout)
            actions.append(request)
        return actions

    # --- decisions: close, renewal, reconnect -----------------------------------------------------

    def on_close(self, code: int | None, now: float) -> CloseDecision:
        """The server closed the connection with ``code`` (``None``: without a close frame), or rejected
        the token at InitConnection: whether to renew the identity, reconnect or give up.

        Codes 4401, 4407 and 1011 mean the token was rejected: a renewable identity is renewed once on
        4401/4407 (a second rejection within :data:`RENEW_HOLDOFF` s of a renewal is final), any other
        is final. Other codes reconnect, unless reconnecting is off.
        """
        if code in AUTH_CLOSE_CODES:
            if not self.may_renew(code):
                return CloseDecision.FAIL
            recent = self._renewed_at is not None and now - self._renewed_at < RENEW_HOLDOFF
            return CloseDecision.REPEATED if recent else CloseDecision.RENEW
        return CloseDecision.RECONNECT if self.policy.reconnect else CloseDecision.FAIL

    def may_renew(self, code: int | None) -> bool:
        """Whether a rejection with ``code`` gets a fresh identity (renewable identity, 4401/4407)."""
        return self.policy.renewable and code in RENEW_CLOSE_CODES

    def reconnect_delays(self) -> Iterator[float]:
        """The waits before each reconnect attempt after one drop: exponential back-off with jitter,
        as many as ``max_reconnect_attempts`` allows."""
        p = self.policy
        delays = backoff_delays(p.backoff_initial, p.backoff_max, p.backoff_factor, rng=self._rng)
        if p.max_reconnect_attempts is None:
            return iter(delays)
        return itertools.islice(delays, p.max_reconnect_attempts)

    @property
    def features(self) -> list[str]:
        return list(self.client_properties.features or [])

    def connection_made(self) -> OutgoingRequest:
        """A new connection: forget old requests, and the InitConnection to send first."""
        self._next_id = 0
        self._pending.clear()
        self.initialized = False
        self._keepalive_at = self._keepalive = None
        auth = ConsumerAuthentication(jwt=self._jwt.reveal())
        return self._request(INIT_CONNECTION, None, headers=[self.client_properties.wire(), auth.wire()])

    def connection_lost(self) -> list[str]:
        """The connection is gone: the ids of the requests that will never be answered."""
        lost = list(self._pending)
        self._pending.clear()
        self.initialized = False
        self._keepalive_at = self._keepalive = None
        return lost

    def request(self, request_type: str, body: object = None) -> OutgoingRequest:
        """A request to send (only after the InitConnection answer)."""
        if not self.initialized:
            raise LocalProtocolError(
                f"{request_type} before the InitConnection answer", hint="await connect()"
            )
        return self._request(request_type, body)

    def forget(self, request_id: str) -> None:
        """Stop waiting for the answer to ``request_id`` (it timed out)."""
        self._pending.pop(request_id, None)

    def _request(
        self, request_type: str, body: object, headers: list[dict[str, Any]] | None = None
    ) -> OutgoingRequest:
        request_id = str(self._next_id)
        self._next_id += 1
        frame: dict[str, object] = {"kind": "req", "id": request_id, "type": request_type}
        if headers is not None:
            frame["headers"] = headers
        if body is not None:
            frame["body"] = body
        text = json.dumps(frame, separators=(",", ":"))
        if len(text) > MAX_FRAME_BYTES:
            raise LocalProtocolError(f"{request_type} frame of {len(text)} bytes exceeds {MAX_FRAME_BYTES}")
        self._pending[request_id] = request_type
        return OutgoingRequest(request_id, request_type, text)

    def receive(self, data: str | bytes, now: float) -> list[ProtocolEvent]:
        """One frame from the server; :class:`RemoteProtocolError` says what is wrong with it."""
        frame = parse_frame(data)
        if isinstance(frame, Response):
            request_type = self._pending.pop(frame.reqId, None)
            if request_type is None:
                raise RemoteProtocolError(f"answer to unknown request id {frame.reqId!r} (code {frame.code})")
            if request_type == INIT_CONNECTION and frame.ok:
                self.initialized = True
                self._keepalive_at = now + self.policy.keepalive_interval
            elif self._keepalive is not None and frame.reqId == self._keepalive[0]:
                self._keepalive = None
                self._keepalive_at = now + self.policy.keepalive_interval
            return [ResponseReceived(request_type, frame)]
        if isinstance(frame, Request):
            raise RemoteProtocolError(
                f"the server sent a request ({frame.type!r}); consumers do not serve any"
            )
        if frame.type == EX_CONVERSATION_CHANGE_NOTIFICATION:
            body = parse_body(ExConversationChangeNotification, frame.body, what=frame.type)
            return list(self.tracker.receive(body, now))
        return [NotificationReceived(frame)]


__all__ = [
    "AUTH_CLOSE_CODES",
    "DEFAULT_FEATURES",
    "RENEW_CLOSE_CODES",
    "RENEW_HOLDOFF",
    "CloseDecision",
    "ConnectionPolicy",
    "ConsumerProtocol",
    "DropConnection",
    "NotificationReceived",
    "OutgoingRequest",
    "ProtocolEvent",
    "ResponseReceived",
    "TimerAction",
    "backoff_delays",
    "jwt_subject",
]
