"""JWT checks of the emulator (sans-I/O): dev mode and HS256 mode."""

from __future__ import annotations

import base64
import json

import pytest

from callops.errors import AuthenticationError
from callops.orchestrator.emulator.auth import mint_jwt, verify_jwt
from callops.secret import Secret

NOW = 1_700_000_000.0
SECRET = Secret("s3cret-s3cret", source="test")


def _segment(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_dev_mode_accepts_any_well_formed_token_and_takes_sub_as_consumer_id() -> None:
    token = f"{_segment({'alg': 'none'})}.{_segment({'sub': 'visitor-7'})}.garbage"
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
