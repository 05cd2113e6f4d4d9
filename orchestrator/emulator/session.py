"""One consumer websocket of the emulator, sans-I/O: InitConnection, then requests.

A :class:`ConsumerSession` takes each received text frame with the time (``receive_text(data,
now)``) and returns an :class:`Outcome`: the frames to send (to this session and to others) and,
if the socket must close, the close code and reason. The asyncio adapter enforces
``init_deadline`` (it calls :meth:`ConsumerSession.check_deadline`).

Rules (``shared/protocol/messaging-window-api.md``):

- The consumer authenticates with ``Authorization: jwt <JWT>`` on the handshake or with an
  ``InitConnection`` request before ``init_deadline``; otherwise the socket closes with 1008.
- A rejected token closes with 4401 (reason names the problem); a token whose ``aud`` names
  another account (``acc:OTHER``) closes with 4407, the identity is not valid here.
- A request before authentication is answered 401 and the socket stays open until the deadline.
- A frame that is not JSON, not an object, not a request or too large is answered 400 in the
  unified error format (``reqId`` echoed when it can be read, else ``""``); the socket stays open.
  ``kind`` may be left out (the tutorial's InitConnection has none); it is then a request.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from callops.consumer.models import (
    CLIENT_PROPERTIES,
    CONSUMER_AUTHENTICATION,
    GET_CLOCK,
    GET_CLOCK_RESPONSE,
    INIT_CONNECTION,
    MAX_FRAME_BYTES,
    STRING_RESP,
    Request,
    decode_json,
    frame_object,
)
from callops.errors import AuthenticationError, RemoteProtocolError
from callops.orchestrator.emulator.auth import CLOSE_TOKEN_REJECTED, verify_jwt
from callops.orchestrator.emulator.idp import CLOSE_IDENTITY_INVALID, foreign_audience
from callops.orchestrator.emulator.model import Delivery, EmulatorModel, error_response, now_ms, response
from callops.secret import Secret
from callops.validation import describe_validation_error

log = logging.getLogger("callops.emulator")

#: Close code when no InitConnection arrived in time (the protocol is silent; documented).
CLOSE_INIT_TIMEOUT = 1008


class Close:
    """Close the socket with ``code`` and ``reason``."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        # a close reason is at most 123 bytes (RFC 6455 section 5.5)
        self.reason = reason.encode()[:123].decode(errors="ignore")

    def __repr__(self) -> str:
        return f"Close({self.code}, {self.reason!r})"


class Outcome:
    """What to do after a frame: send ``deliveries``, then close if ``close`` is set."""

    __slots__ = ("close", "deliveries")

    def __init__(self, deliveries: list[Delivery] | None = None, close: Close | None = None) -> None:
        self.deliveries = deliveries if deliveries is not None else []
        self.close = close


class SessionPhase(StrEnum):
    AWAITING_INIT = "AWAITING_INIT"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


def _features(client_properties: dict[str, Any] | None) -> frozenset[str]:
    if not client_properties:
        return frozenset()
    features = client_properties.get("features")
    if isinstance(features, str):
        return frozenset([features])
    if isinstance(features, list):
        return frozenset(f for f in features if isinstance(f, str))
    return frozenset()


def _request_id(data: str | bytes) -> str:
    """The ``id`` of a frame that failed validation, if it can be read (at most 64 characters)."""
    if len(data) > MAX_FRAME_BYTES:
        return ""
    try:
        raw = decode_json(data)
    except RemoteProtocolError:
        return ""
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) < 10**64:
            rid = str(rid)
        if isinstance(rid, str) and 0 < len(rid) <= 64:
            return rid
    return ""


def parse_request(data: str | bytes) -> Request:
    """A consumer's request frame. ``kind`` may be left out: the tutorial's InitConnection has none."""
    raw = frame_object(data)
    kind = raw.get("kind", "req")
    if kind != "req":
        raise RemoteProtocolError(f"consumers send requests (kind 'req'), got kind {kind!r}")
    try:
        return Request.model_validate(raw)
    except PydanticValidationError as exc:
        raise RemoteProtocolError(f"invalid request: {describe_validation_error(exc)}") from None


class SocketCore:
    """What every websocket's protocol state starts with: the model, the account of the path, the
    JWT secret (None: dev mode), a session id, and the time by which the socket must authenticate."""

    def __init__(
        self,
        model: EmulatorModel,
        account: str,
        *,
        jwt_secret: Secret | None,
        now: float,
        init_timeout: float = 5.0,
    ) -> None:
        self.model = model
        self.account = account
        self.jwt_secret = jwt_secret
        self.session_id = model.open_session()
        self.init_deadline = now + init_timeout
        self.init_timeout = init_timeout
        self._begin()

    def _begin(self) -> None:
        """The state of a socket that has not authenticated yet (each protocol's own)."""


class ConsumerSession(SocketCore):
    """The protocol state of one consumer websocket."""

    phase: SessionPhase
    consumer_id: str | None

    def _begin(self) -> None:
        self.phase = SessionPhase.AWAITING_INIT
        self.consumer_id = None

    def _set_phase(self, phase: SessionPhase) -> None:
        log.debug("session %d: %s -> %s", self.session_id, self.phase, phase)
        self.phase = phase

    def _authenticate(
        self, jwt: object, client_properties: dict[str, Any] | None, now: float
    ) -> Close | None:
        try:
            claims = verify_jwt(jwt, self.jwt_secret, now=now)
        except AuthenticationError as exc:
            log.info("session %d: token rejected: %s", self.session_id, exc.message)
            self.close()
            return Close(CLOSE_TOKEN_REJECTED, exc.message)
        foreign = foreign_audience(claims.raw, self.account)
        if foreign is not None:
            log.info("session %d: token rejected: %s", self.session_id, foreign)
            self.close()
            return Close(CLOSE_IDENTITY_INVALID, foreign)
        if self.consumer_id is not None and claims.sub != self.consumer_id:
            self.close()
            return Close(
                CLOSE_TOKEN_REJECTED, f"4401: token is for {claims.sub}, session is {self.consumer_id}"
            )
        self.consumer_id = claims.sub
        self.model.authenticate(self.session_id, self.account, claims.sub, _features(client_properties))
        self._set_phase(SessionPhase.OPEN)
        return None

    def authenticate_handshake(
        self, authorization: str | None, client_properties: str | None, now: float
    ) -> Close | None:
        """Authenticate from the handshake's ``Authorization: jwt <JWT>`` header, if present."""
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "jwt":
            self.close()
            return Close(CLOSE_TOKEN_REJECTED, f"4401: Authorization scheme {scheme!r}, expected 'jwt'")
        props: dict[str, Any] | None = None
        if client_properties:
            try:
                loaded = decode_json(client_properties)
            except RemoteProtocolError:
                loaded = None
            props = loaded if isinstance(loaded, dict) else None
        return self._authenticate(token.strip(), props, now)

    def check_deadline(self, now: float) -> Close | None:
        """The close to perform if InitConnection is overdue."""
        if self.phase == SessionPhase.AWAITING_INIT and now >= self.init_deadline:
            self.close()
            return Close(CLOSE_INIT_TIMEOUT, f"InitConnection not received within {self.init_timeout:g} s")
        return None

    def receive_text(self, data: str | bytes, now: float) -> Outcome:
        sid = self.session_id
        if self.phase == SessionPhase.CLOSED:
            return Outcome()
        try:
            frame = parse_request(data)
        except RemoteProtocolError as exc:
            log.info("session %d: 400 bad frame: %s", sid, exc.message[:200])
            return Outcome([Delivery(sid, error_response(_request_id(data), 400, "Bad frame", exc.message))])
        if frame.type == INIT_CONNECTION:
            auth = frame.header(CONSUMER_AUTHENTICATION)
            if auth is None or not auth.get("jwt"):
                self.close()
                return Outcome(
                    close=Close(
                        CLOSE_TOKEN_REJECTED, "4401: InitConnection without ConsumerAuthentication jwt"
                    )
                )
            close = self._authenticate(auth.get("jwt"), frame.header(CLIENT_PROPERTIES), now)
            if close is not None:
                return Outcome(close=close)
            return Outcome([Delivery(sid, response(frame.id, 200, STRING_RESP))])
        if self.phase != SessionPhase.OPEN:
            details = f"send InitConnection before {frame.type}"
            return Outcome([Delivery(sid, error_response(frame.id, 401, "Not authenticated", details))])
        if frame.type == GET_CLOCK:
            return Outcome(
                [Delivery(sid, response(frame.id, 200, GET_CLOCK_RESPONSE, {"currentTime": now_ms(now)}))]
            )
        return Outcome(self.model.handle_request(sid, frame, now))

    def close(self) -> None:
        """The socket is gone (or about to be): forget its subscriptions."""
        if self.phase != SessionPhase.CLOSED:
            self._set_phase(SessionPhase.CLOSED)
            self.model.close_session(self.session_id)


__all__ = [
    "CLOSE_INIT_TIMEOUT",
    "Close",
    "ConsumerSession",
    "Outcome",
    "SessionPhase",
    "SocketCore",
    "parse_request",
]
