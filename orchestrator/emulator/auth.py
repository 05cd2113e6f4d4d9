"""Consumer JWTs as the emulator checks them (RFC 7519, HS256 only), on PyJWT, sans-I/O.

Two modes:

- **dev mode** (no secret): any *well-formed* JWT is accepted -- three base64url segments, a JSON
  object header and payload, and a non-empty string ``sub`` (the consumer id). The signature and
  ``exp`` are not checked (an ``exp`` that is there must still be a finite number of seconds).
- **secret mode**: the header's ``alg`` must be ``HS256`` (no other, ``none`` included), the
  signature must verify with the shared secret (RFC 7515 section 5.2), and ``exp`` must be present,
  a finite number, in the future and at most :data:`MAX_TOKEN_LIFETIME` ahead (RFC 7519 section
  4.1.4): ``exp`` 10^400, NaN or Infinity would never expire.

In both modes a token longer than :data:`MAX_TOKEN_LENGTH` characters is refused before it is
decoded. Every failure is a :class:`callops.errors.AuthenticationError` whose message starts with
``4401:`` (the websocket adapter closes with 4401); PyJWT's exceptions are translated here.
``aud``, ``iat`` and ``nbf`` are not checked (documented in docs/emulator.md). Time is passed in
(``now``, epoch seconds). :func:`mint_jwt` makes tokens for tests, the bench and the headless consumer.
"""

from __future__ import annotations

import math
import warnings

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from callops.consumer.models import MAX_JWT_LENGTH
from callops.errors import AuthenticationError
from callops.jsontypes import JsonObject
from callops.secret import RedactedFrameLog, Secret

#: Close code for a token that is missing, malformed, badly signed or expired.
CLOSE_TOKEN_REJECTED = 4401
#: The one algorithm of secret mode.
ALGORITHM = "HS256"
#: Longest token accepted (characters), as for ConsumerAuthentication.jwt.
MAX_TOKEN_LENGTH = MAX_JWT_LENGTH
#: Secret mode: ``exp`` at most this far ahead (seconds, 366 days).
MAX_TOKEN_LIFETIME = 366 * 86400.0
#: Any mode: an ``exp`` past the year 9999 is not a time.
MAX_EPOCH = 253402300799
#: RFC 7518 section 3.2: an HS256 key should have at least 256 bits.
MIN_SECRET_BYTES = 32


def weak_secret(secret: Secret) -> bool:
    """Whether ``secret`` is shorter than RFC 7518 asks of an HS256 key (warn once, at start-up)."""
    return len(secret.reveal().encode()) < MIN_SECRET_BYTES


class Claims:
    """The claims of an accepted token: ``sub`` is the consumer (or agent) id."""

    __slots__ = ("exp", "raw", "sub")

    def __init__(self, sub: str, exp: float | None, raw: JsonObject) -> None:
        self.sub = sub
        self.exp = exp
        self.raw = raw

    def __repr__(self) -> str:
        return f"Claims(sub={self.sub!r}, exp={self.exp!r})"


def _reject(what: str, problem: str, hint: str | None = None) -> AuthenticationError:
    return AuthenticationError(f"4401: {what} {problem}", hint=hint)


def _decode(token: str, secret: Secret | None, what: str) -> JsonObject:
    """The payload, by PyJWT; its exceptions become :class:`AuthenticationError`."""
    try:
        if secret is None:
            return jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise _reject(
                what,
                f"alg {str(header.get('alg'))[:20]!r} rejected, expected {ALGORITHM!r}",
                hint=f"sign the token with {ALGORITHM} and the emulator's secret",
            )
        with warnings.catch_warnings():
            # a short secret is reported once when the emulator starts, not per token
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.decode(
                token,
                secret.reveal(),
                algorithms=[ALGORITHM],
                # exp is checked below against the ``now`` passed in; iat, nbf and aud are not checked
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
    except jwt.InvalidSignatureError:
        raise _reject(
            what,
            "signature does not verify",
            hint="sign with the same secret as the emulator's --jwt-secret-file",
        ) from None
    except jwt.DecodeError as exc:
        raise _reject(
            what,
            f"is not well-formed ({str(exc)[:120]}): expected header.payload.signature, "
            "base64url-encoded, header and payload JSON objects",
        ) from None
    except jwt.PyJWTError as exc:
        raise _reject(what, f"rejected: {str(exc)[:120]}") from None
    except (RecursionError, ValueError, TypeError, OverflowError):
        # older PyJWT versions let these through for hostile segments
        raise _reject(what, "is not well-formed: a segment is not base64url-encoded JSON") from None


def _expiry(payload: JsonObject, what: str) -> float | None:
    exp = payload.get("exp")
    if exp is None:
        return None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise _reject(what, "claim 'exp' must be a number (epoch seconds)")
    if isinstance(exp, float) and not math.isfinite(exp):
        raise _reject(what, f"claim 'exp' must be a finite number, not {exp}")
    if not 0 <= exp <= MAX_EPOCH:
        raise _reject(what, "claim 'exp' is not a time (epoch seconds before the year 10000)")
    return float(exp)


def verify_jwt(token: object, secret: Secret | None, *, now: float, what: str = "JWT") -> Claims:
    """The claims of ``token``; :class:`AuthenticationError` says exactly why it is rejected."""
    if not isinstance(token, str) or not token:
        raise _reject(what, "missing", hint="send a ConsumerAuthentication header")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _reject(what, f"of {len(token)} characters exceeds the {MAX_TOKEN_LENGTH}-character limit")
    segments = token.count(".") + 1
    if segments != 3:
        raise _reject(
            what,
            f"is not well-formed: {segments} segment(s), expected 3",
            hint="a JWT is header.payload.signature, base64url-encoded",
        )
    payload = _decode(token, secret, what)
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _reject(what, "has no 'sub' claim", hint="'sub' is the consumer id")
    exp = _expiry(payload, what)
    if secret is not None:
        if exp is None:
            raise _reject(what, "has no 'exp' claim", hint="add an expiry")
        if exp <= now:
            raise _reject(what, f"expired {now - exp:.0f} s ago", hint="get a fresh token")
        if exp > now + MAX_TOKEN_LIFETIME:
            raise _reject(
                what,
                f"claim 'exp' is {exp - now:.0f} s ahead, more than the {MAX_TOKEN_LIFETIME:.0f} s allowed",
                hint="mint tokens that expire within a year",
            )
    return Claims(sub, exp, payload)


def mint_jwt(
    sub: str,
    secret: Secret | None = None,
    *,
    now: float,
    lifetime: float = 3600.0,
    extra: JsonObject | None = None,
) -> str:
    """An HS256 token for ``sub`` valid for ``lifetime`` seconds (signed with ``secret``, or with a
    fixed dev key when there is none -- dev mode does not check signatures)."""
    payload: JsonObject = {"sub": sub, "iat": int(now), "exp": int(now + lifetime), **(extra or {})}
    key = secret.reveal() if secret is not None else "callops-dev"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(payload, key, algorithm=ALGORITHM)


__all__ = [
    "ALGORITHM",
    "CLOSE_TOKEN_REJECTED",
    "MAX_TOKEN_LENGTH",
    "MAX_TOKEN_LIFETIME",
    "Claims",
    "RedactedFrameLog",
    "mint_jwt",
    "verify_jwt",
    "weak_secret",
]
