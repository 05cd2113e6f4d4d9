"""The ``turns:`` certificate as a browser sees it, against a real coturn serving each certificate."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from callops.testing import run_bounded, tls_coturn
from callops.turn.coturn import CoturnProcess, find_turnserver, free_port
from callops.turn.results import ProbeStatus, TlsResult
from callops.turn.tls import (
    assess,
    certificate_check,
    make_ca,
    make_certificate,
    make_self_signed,
    name_matches,
)

Serve = Callable[[tuple[Path, Path]], str]
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture
def serve_turns(tmp_path: Path) -> Iterator[Serve]:
    """Factory: start coturn with TLS on a free port serving ``(cert, key)``; returns the ``turns:`` URI."""
    find_turnserver()
    started: list[CoturnProcess] = []

    def serve(pair: tuple[Path, Path]) -> str:
        workdir = tmp_path / f"coturn{len(started)}"
        workdir.mkdir()
        process, _, tls_port = tls_coturn(workdir, pair, "tls-test-secret")
        process.start()
        started.append(process)
        return f"turns:127.0.0.1:{tls_port}?transport=tcp"

    yield serve
    for process in started:
        process.stop()


def check(uri: str, ca: Path | None) -> TlsResult:
    return run_bounded(certificate_check(uri, 10, ca_file=ca), 20)


@pytest.mark.coturn
def test_a_lab_ca_certificate_for_the_right_name_is_accepted(tmp_path: Path, serve_turns: Serve) -> None:
    ca = make_ca(tmp_path / "ca")
    uri = serve_turns(make_certificate(tmp_path / "srv", ca, ["127.0.0.1", "turn.example.com"]))
    result = check(uri, ca[0])
    assert result.status is ProbeStatus.OK, result.error
    data = result.data
    assert data.browser_accepts is True and data.trusted is True and data.name_matches is True
    assert data.names == ["turn.example.com", "127.0.0.1"]
    assert data.chain is not None and data.chain[0].issuer == "CN=callops ca"
    assert data.days_left is not None and 29 < data.days_left <= 30
    assert data.problems == [] and data.tls_version in ("TLSv1.2", "TLSv1.3")


@pytest.mark.coturn
def test_a_self_signed_certificate_fails_with_the_fix_even_when_given_as_ca(
    tmp_path: Path, serve_turns: Serve
) -> None:
    pair = make_self_signed(tmp_path / "self", ["127.0.0.1"])
    result = check(serve_turns(pair), pair[0])
    assert result.status is ProbeStatus.FAIL
    assert result.data.problems == ["self-signed"] and result.data.browser_accepts is False
    assert result.error is not None and "public CA" in result.error


@pytest.mark.coturn
def test_a_certificate_for_another_name_fails_naming_both(tmp_path: Path, serve_turns: Serve) -> None:
    ca = make_ca(tmp_path / "ca")
    result = check(serve_turns(make_certificate(tmp_path / "srv", ca, ["turn.example.org"])), ca[0])
    assert result.status is ProbeStatus.FAIL
    assert result.data.problems == ["name-mismatch"] and result.data.trusted is True
    assert result.error is not None and "turn.example.org" in result.error and "127.0.0.1" in result.error


@pytest.mark.coturn
def test_an_expired_certificate_fails_and_trust_is_still_reported(tmp_path: Path, serve_turns: Serve) -> None:
    ca = make_ca(tmp_path / "ca")
    expired = make_certificate(
        tmp_path / "srv",
        ca,
        ["127.0.0.1"],
        not_before=NOW - datetime.timedelta(days=60),
        not_after=NOW - datetime.timedelta(days=2),
    )
    result = check(serve_turns(expired), ca[0])
    assert result.status is ProbeStatus.FAIL
    assert result.data.problems == ["expired"] and result.data.trusted is True
    assert result.data.days_left is not None and result.data.days_left < 0
    assert result.error is not None and "renew" in result.error


@pytest.mark.coturn
def test_a_certificate_from_an_unknown_ca_is_untrusted(tmp_path: Path, serve_turns: Serve) -> None:
    ca = make_ca(tmp_path / "ca")
    result = check(serve_turns(make_certificate(tmp_path / "srv", ca, ["127.0.0.1"])), None)
    assert result.status is ProbeStatus.FAIL and result.data.problems == ["untrusted"]


def test_under_fourteen_days_left_is_a_warning(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    cert, _ = make_certificate(
        tmp_path / "srv", ca, ["turn.example.com"], not_after=NOW + datetime.timedelta(days=5)
    )
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    status, detail, data = assess([leaf], "turn.example.com", trusted=True, now=NOW)
    assert status is ProbeStatus.WARN and data.problems == ["expires-soon"] and data.browser_accepts
    assert "renew it soon" in detail


def test_a_closed_tls_port_is_a_failure_not_a_crash() -> None:
    result = run_bounded(certificate_check(f"turns:127.0.0.1:{free_port()}", 3), 10)
    assert result.status is ProbeStatus.FAIL and result.error is not None
    assert "TLS connection failed" in result.error


@pytest.mark.parametrize(
    ("host", "names", "ok"),
    [
        ("turn.example.com", ["turn.example.com"], True),
        ("TURN.example.com.", ["turn.example.com"], True),
        ("turn.example.com", ["*.example.com"], True),
        ("a.turn.example.com", ["*.example.com"], False),
        ("example.com", ["*.example.com"], False),
        ("203.0.113.10", ["203.0.113.10"], True),
        ("203.0.113.10", ["turn.example.com"], False),
    ],
)
def test_names_match_like_browsers(host: str, names: list[str], ok: bool) -> None:
    assert name_matches(host, names) is ok
