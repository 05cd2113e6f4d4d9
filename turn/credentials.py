"""TURN REST API credentials (draft-uberti-behave-turn-rest, coturn ``use-auth-secret``).

The username is ``<expiry>:<user>`` (expiry in Unix seconds), the password is
``base64(HMAC-SHA1(secret, username))``. coturn recomputes the password from its
``static-auth-secret`` and refuses a username whose expiry has passed. :func:`ice_servers` shapes
them as an ``RTCIceServer`` list, the form a browser's ``RTCPeerConnection`` takes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from callops.errors import UsageError
from callops.secret import Secret
from callops.turn.uri import ServerUri, parse_uri

#: Default lifetime of REST credentials: one day, as in coturn's examples.
DEFAULT_TTL = 86400


class TurnCredentials(BaseModel):
    """A TURN REST API username/password pair."""

    model_config = ConfigDict(frozen=True)

    username: str
    #: the password (``credential`` in ``RTCIceServer`` words)
    credential: str
    ttl: int
    #: Unix time after which coturn refuses the username
    expires_at: int

    def __repr__(self) -> str:
        return f"TurnCredentials(username={self.username!r}, credential=***, expires_at={self.expires_at})"


class RtcIceServer(BaseModel):
    """One ``RTCIceServer`` dictionary (W3C webrtc-pc section 4.2.2); a STUN entry has no credentials."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class CredentialsDocument(BaseModel):
    """The ``callops turn creds --json`` document."""

    username: str
    credential: str
    ttl: int
    uris: list[str]
    ice_servers: list[RtcIceServer] = Field(serialization_alias="iceServers")


def rest_username(user: str, expires_at: int) -> str:
    if not user or ":" in user:
        raise UsageError(f"TURN REST user {user!r} must be non-empty and contain no ':'")
    return f"{expires_at}:{user}"


def rest_password(secret: Secret, username: str) -> str:
    """``base64(HMAC-SHA1(secret, username))`` -- what coturn computes for ``use-auth-secret``."""
    digest = hmac.new(secret.reveal().encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def rest_credentials(
    secret: Secret, user: str, ttl: int = DEFAULT_TTL, now: float | None = None
) -> TurnCredentials:
    """Credentials for ``user`` valid for ``ttl`` seconds from ``now`` (default: the current time)."""
    if ttl <= 0:
        raise UsageError(f"TURN REST ttl {ttl} must be a positive number of seconds")
    if not secret:
        raise UsageError("the TURN shared secret is empty")
    expires_at = int(time.time() if now is None else now) + ttl
    username = rest_username(user, expires_at)
    return TurnCredentials(
        username=username, credential=rest_password(secret, username), ttl=ttl, expires_at=expires_at
    )


def rest_expiry(username: str) -> int | None:
    """The expiry of a REST username ``<expiry>:<user>``, or None for a long-term username."""
    head, sep, _ = username.partition(":")
    return int(head) if sep and head.isdigit() else None


def ice_servers(uris: Iterable[ServerUri | str], username: str, credential: str) -> list[RtcIceServer]:
    """One ``RTCIceServer`` with every URI; STUN URIs need no credentials but carry them harmlessly."""
    urls = [str(u if isinstance(u, ServerUri) else parse_uri(u)) for u in uris]
    if not urls:
        raise UsageError("no server URI given", hint="pass --uri turn:host:3478 (several allowed)")
    return [RtcIceServer(urls=urls, username=username, credential=credential)]


def credentials_document(creds: TurnCredentials, uris: Iterable[ServerUri | str]) -> CredentialsDocument:
    servers = ice_servers(uris, creds.username, creds.credential)
    return CredentialsDocument(
        username=creds.username,
        credential=creds.credential,
        ttl=creds.ttl,
        uris=servers[0].urls,
        ice_servers=servers,
    )


__all__ = [
    "DEFAULT_TTL",
    "CredentialsDocument",
    "RtcIceServer",
    "TurnCredentials",
    "credentials_document",
    "ice_servers",
    "rest_credentials",
    "rest_expiry",
    "rest_password",
    "rest_username",
]
