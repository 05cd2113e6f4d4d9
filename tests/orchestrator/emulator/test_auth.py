"""JWT checks of the emulator (sans-I/O): dev mode and HS256 mode."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from callops.consumer.client import jwt_subject
from callops.errors import AuthenticationError
from callops.orchestrator.emulator.auth import MAX_TOKEN_LENGTH, mint_jwt, verify_jwt
from callops.secret import Secret

NOW = 1_700_000_000.0
SECRET = Secret("s3cret-s3cret", source="test")


def _segment(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_dev_mode_accepts_any_well_formed_token_and_takes_sub_as_consumer_id() -> None:
    token = f"{_segment({'alg': 'none'})}.{_segment({'sub': 'visitor-7'})}.Z2FyYmFnZQ"
    assert verify_jwt(token, None, now=NOW).sub == "visitor-7"


def test_dev_mode_ignores_expiry_and_signature() -> None:
    token = mint_jwt("c1", Secret("other"), now=NOW - 10_000, lifetime=1)
    assert verify_jwt(token, None, now=NOW).sub == "c1"


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("", "missing"),
        ("abc.def", "2 segment"),
        ("a.b.c.d", "4 segment"),
        ("!!!.???.sig", "base64url"),
        (f"{_segment([1])}.{_segment({'sub': 'x'})}.sig", "JSON objects"),
        (f"{_segment({'alg': 'HS256'})}.{_segment({'name': 'x'})}.sig", "'sub'"),
        (f"{_segment({'alg': 'HS256'})}.{_segment({'sub': 'x', 'exp': 'soon'})}.sig", "'exp'"),
    ],
)
def test_malformed_tokens_are_rejected_with_the_reason(token: str, words: str) -> None:
    with pytest.raises(AuthenticationError, match="4401") as info:
        verify_jwt(token, None, now=NOW)
    assert words in info.value.message


def test_secret_mode_accepts_a_token_signed_with_the_secret() -> None:
    claims = verify_jwt(mint_jwt("c1", SECRET, now=NOW), SECRET, now=NOW + 1)
    assert (claims.sub, claims.exp) == ("c1", NOW + 3600)


def test_secret_mode_rejects_a_bad_signature() -> None:
    with pytest.raises(AuthenticationError, match="signature does not verify"):
        verify_jwt(mint_jwt("c1", Secret("wrong"), now=NOW), SECRET, now=NOW)


def test_secret_mode_rejects_an_expired_token() -> None:
    token = mint_jwt("c1", SECRET, now=NOW - 100, lifetime=10)
    with pytest.raises(AuthenticationError, match="expired 90 s ago"):
        verify_jwt(token, SECRET, now=NOW)


def test_secret_mode_requires_exp_and_hs256() -> None:
    no_exp = mint_jwt("c1", SECRET, now=NOW, extra={"exp": None})
    with pytest.raises(AuthenticationError, match="no 'exp'"):
        verify_jwt(no_exp, SECRET, now=NOW)
    _header, payload, sig = mint_jwt("c1", SECRET, now=NOW).split(".")
    with pytest.raises(AuthenticationError, match="alg 'none' rejected"):
        verify_jwt(f"{_segment({'alg': 'none'})}.{payload}.{sig}", SECRET, now=NOW)


def test_secret_never_appears_in_errors() -> None:
    with pytest.raises(AuthenticationError) as info:
        verify_jwt(mint_jwt("c1", Secret("x"), now=NOW), SECRET, now=NOW)
    assert SECRET.reveal() not in str(info.value)


def _signed(payload: bytes, secret: Secret = SECRET, header: bytes = b'{"alg":"HS256","typ":"JWT"}') -> str:
    """A token over raw JSON bytes, signed with HS256 (what a hostile client can send)."""
    signing_input = f"{_raw(header)}.{_raw(payload)}"
    digest = hmac.new(secret.reveal().encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_raw(digest)}"


def _raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("exp", "words"),
    [
        (b"1" + b"0" * 400, "not a time"),
        (b"1e400", "finite"),
        (b"NaN", "finite"),
        (b"Infinity", "finite"),
        (b"-Infinity", "finite"),
        (str(int(NOW) + 10 * 366 * 86400).encode(), "ahead"),
        (b'"soon"', "must be a number"),
        (b"true", "must be a number"),
    ],
)
def test_secret_mode_rejects_absurd_or_non_finite_exp(exp: bytes, words: str) -> None:
    token = _signed(b'{"sub":"c1","exp":' + exp + b"}")
    with pytest.raises(AuthenticationError, match="4401") as info:
        verify_jwt(token, SECRET, now=NOW)
    assert words in info.value.message, info.value.message


def test_dev_mode_rejects_non_finite_exp_but_not_a_late_one() -> None:
    with pytest.raises(AuthenticationError, match="finite"):
        verify_jwt(_signed(b'{"sub":"c1","exp":NaN}'), None, now=NOW)
    assert verify_jwt(mint_jwt("c1", None, now=0, lifetime=10**10), None, now=NOW).sub == "c1"


@pytest.mark.parametrize("alg", ["none", "HS384", "HS512", "RS256", "hs256"])
def test_secret_mode_accepts_only_hs256(alg: str) -> None:
    token = _signed(
        b'{"sub":"c1","exp":' + str(int(NOW) + 60).encode() + b"}", header=f'{{"alg":"{alg}"}}'.encode()
    )
    with pytest.raises(AuthenticationError, match=f"alg '{alg}' rejected, expected 'HS256'"):
        verify_jwt(token, SECRET, now=NOW)


@pytest.mark.parametrize("secret", [None, SECRET], ids=["dev", "secret"])
def test_deeply_nested_segments_are_refused_without_recursion_error(secret: Secret | None) -> None:
    deep_header = _signed(b'{"sub":"c1"}', header=b"[" * 1100)
    deep_payload = _signed(b'{"sub":' + b"[" * 1100 + b"}")
    for token in (deep_header, deep_payload):
        assert len(token) <= MAX_TOKEN_LENGTH
        with pytest.raises(AuthenticationError, match="4401"):
            verify_jwt(token, secret, now=NOW)


@pytest.mark.parametrize("secret", [None, SECRET], ids=["dev", "secret"])
def test_oversized_tokens_are_refused_before_decoding(secret: Secret | None) -> None:
    token = _signed(b'{"sub":"c1","pad":"' + b"x" * 5000 + b'"}')
    with pytest.raises(AuthenticationError, match=f"exceeds the {MAX_TOKEN_LENGTH}-character limit"):
        verify_jwt(token, secret, now=NOW)
    with pytest.raises(AuthenticationError, match="character limit"):
        verify_jwt("[" * 30_000, secret, now=NOW)


def test_consumer_side_jwt_subject_survives_hostile_tokens() -> None:
    assert jwt_subject(mint_jwt("visitor-9", None, now=NOW)) == "visitor-9"
    for token in (
        _signed(b'{"sub":' + b"[" * 1100 + b"}"),
        _signed(b'{"sub":"x"}', header=b"[" * 1100),
        _signed(b'{"sub":"x","exp":1e400}', header=b'{"alg":"HS256"}') + "x" * 3000,
        "a.b.c",
        "not a jwt",
        "",
    ):
        assert jwt_subject(token) is None
