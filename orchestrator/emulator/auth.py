"""Consumer JWTs as the emulator checks them (RFC 7519, HS256 only), sans-I/O.

Two modes:

- **dev mode** (no secret): any *well-formed* JWT is accepted -- three base64url segments, a JSON
  object header and payload, and a non-empty string ``sub`` (the consumer id). The signature and
  ``exp`` are not checked.
- **secret mode**: the header's ``alg`` must be ``HS256``, the signature must verify with the
  shared secret (RFC 7515 section 5.2), and ``exp`` must be present and in the future (RFC 7519
  section 4.1.4). Failures raise :class:`callops.errors.AuthenticationError`; the websocket adapter
  closes with 4401.

``aud`` is not checked (documented in docs/emulator.md). Time is passed in (``now``, epoch seconds).
:func:`mint_jwt` makes tokens for tests, the bench and the headless consumer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from callops.errors import AuthenticationError
from callops.secret import RedactedFrameLog, Secret

#: Close code for a token that is missing, malformed, badly signed or expired.
CLOSE_TOKEN_REJECTED = 4401


def _b64url_decode(segment: str) -> bytes:
    padded = segment + "=" * (-len(segment) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Claims:
    """The claims of an accepted token: ``sub`` is the consumer (or agent) id."""

    __slots__ = ("exp", "raw", "sub")

    def __init__(self, sub: str, exp: float | None, raw: dict[str, Any]) -> None:
        self.sub = sub
        self.exp = exp
        self.raw = raw

    def __repr__(self) -> str:
        return f"Claims(sub={self.sub!r}, exp={self.exp!r})"


def verify_jwt(token: object, secret: Secret | None, *, now: float, what: str = "JWT") -> Claims:
    """The claims of ``token``; :class:`AuthenticationError` says exactly why it is rejected."""
    if not isinstance(token, str) or not token:
        raise AuthenticationError(f"4401: {what} missing", hint="send a ConsumerAuthentication header")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthenticationError(
            f"4401: {what} is not well-formed: {len(parts)} segment(s), expected 3",
            hint="a JWT is header.payload.signature, base64url-encoded",
        )
    try:
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise AuthenticationError(
            f"4401: {what} is not well-formed: a segment is not base64url-encoded JSON"
        ) from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AuthenticationError(f"4401: {what} is not well-formed: header and payload must be JSON objects")
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthenticationError(f"4401: {what} has no 'sub' claim", hint="'sub' is the consumer id")
    exp = payload.get("exp")
    if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float)):
        raise AuthenticationError(f"4401: {what} claim 'exp' must be a number (epoch seconds)")
    if secret is not None:
        if header.get("alg") != "HS256":
            raise AuthenticationError(
                f"4401: {what} alg {header.get('alg')!r} rejected, expected 'HS256'",
                hint="sign the token with HS256 and the emulator's secret",
            )
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        expected = hmac.new(secret.reveal().encode(), signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise AuthenticationError(
                f"4401: {what} signature does not verify",
                hint="sign with the same secret as the emulator's --jwt-secret-file",
            )
        if exp is None:
            raise AuthenticationError(f"4401: {what} has no 'exp' claim", hint="add an expiry")
        if float(exp) <= now:
            raise AuthenticationError(
                f"4401: {what} expired {now - float(exp):.0f} s ago", hint="get a fresh token"
            )
    return Claims(sub, float(exp) if exp is not None else None, payload)


def mint_jwt(
    sub: str,
    secret: Secret | None = None,
    *,
    now: float,
    lifetime: float = 3600.0,
    extra: dict[str, Any] | None = None,
) -> str:
    """An HS256 token for ``sub`` valid for ``lifetime`` seconds (signed with ``secret``, or with a
    fixed dev key when there is none -- dev mode does not check signatures)."""
    header = {"alg": "HS256", "typ": "JWT"}
    payload: dict[str, Any] = {"sub": sub, "iat": int(now), "exp": int(now + lifetime), **(extra or {})}
    signing_input = (
        _b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    )
    key = secret.reveal().encode() if secret is not None else b"callops-dev"
    signature = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url_encode(signature)}"


__all__ = ["CLOSE_TOKEN_REJECTED", "Claims", "RedactedFrameLog", "mint_jwt", "verify_jwt"]
