"""Fuzzing JWTs: the emulator's ``verify_jwt`` (dev and secret mode) and the consumer side's
``jwt_subject``. A token gives claims or an ``AuthenticationError`` starting with ``4401:`` --
never RecursionError, OverflowError or another exception; secret mode never accepts a token that
is not HS256-signed with the secret, or whose ``exp`` is past, non-finite or absurd."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from callops.consumer.client import jwt_subject
from callops.errors import AuthenticationError
from callops.orchestrator.emulator.auth import MAX_TOKEN_LIFETIME, verify_jwt
from callops.secret import Secret
from callops.testing import fuzz_examples

NOW = 1_700_000_000.0
SECRET = Secret("fuzz-secret-of-at-least-32-bytes-long", source="test")
OTHER = Secret("another-secret-of-at-least-32-bytes", source="test")

EXPS = st.one_of(
    st.none(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([10**400, int(NOW) + 60, int(NOW) - 60, int(NOW + MAX_TOKEN_LIFETIME) + 10, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
)
SUBS = st.one_of(st.text(max_size=12), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2))
ALGS = st.one_of(st.sampled_from(["HS256", "none", "HS512", "RS256", "hs256", ""]), st.integers(), st.none())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def tokens(draw: st.DrawFn) -> tuple[str, bool]:
    """``(token, signed_with_the_secret_as_hs256)``: well-formed, hostile and random tokens."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=80)), False
    if kind == 1:
        depth = draw(st.integers(500, 3000))
        nested = draw(st.sampled_from([b"[", b'{"a":'])) * depth
        where = draw(st.booleans())
        deep_header = nested if where else b'{"alg":"HS256"}'
        deep_payload = b'{"sub":"c1"}' if where else b'{"sub":' + nested + b"}"
        return _sign(deep_header, deep_payload, SECRET), False
    header: dict[str, Any] = {"alg": draw(ALGS)}
    if draw(st.booleans()):
        header["typ"] = draw(st.sampled_from(["JWT", 7, None]))
    payload: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        payload["sub"] = draw(SUBS)
    if draw(st.integers(0, 4)):
        payload["exp"] = draw(EXPS)
    if draw(st.booleans()):
        payload[draw(st.sampled_from(["iat", "nbf", "aud", "iss", "jti"]))] = draw(EXPS)
    raw_header = json.dumps(header, allow_nan=True).encode()
    raw_payload = json.dumps(payload, allow_nan=True).encode()
    key = draw(st.sampled_from([SECRET, OTHER]))
    token = _sign(raw_header, raw_payload, key)
    if draw(st.integers(0, 5)) == 0:
        position = draw(st.integers(0, len(token) - 1))
        token = (
            token[:position] + draw(st.sampled_from([".", "=", "!", "A", "", "é"])) + token[position + 1 :]
        )
    if draw(st.integers(0, 20)) == 0:
        token += "A" * draw(st.integers(1, 4000))
    signed = key is SECRET and header["alg"] == "HS256" and token == _sign(raw_header, raw_payload, key)
    return token, signed


def _sign(header: bytes, payload: bytes, key: Secret) -> str:
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    digest = hmac.new(key.reveal().encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


@settings(max_examples=fuzz_examples(750))
@given(token_and_signed=tokens(), secret=st.sampled_from([None, SECRET]))
def test_verify_jwt_gives_claims_or_a_4401(token_and_signed: tuple[str, bool], secret: Secret | None) -> None:
    token, signed = token_and_signed
    try:
        claims = verify_jwt(token, secret, now=NOW)
    except AuthenticationError as exc:
        assert exc.message.startswith("4401: JWT "), exc.message
        assert SECRET.reveal() not in str(exc)
    else:
        assert isinstance(claims.sub, str) and claims.sub
        if secret is not None:
            assert signed, "secret mode accepted a token not HS256-signed with the secret"
            assert claims.exp is not None and math.isfinite(claims.exp)
            assert NOW < claims.exp <= NOW + MAX_TOKEN_LIFETIME
    subject = jwt_subject(token)
    assert subject is None or (isinstance(subject, str) and subject)
