"""callops.turn.audit and ``callops turn audit``: forbidden peers against insecure and secure coturn."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.audit import FORBIDDEN, AuditReport, audit_server, forbidden_targets
from callops.turn.coturn import CoturnProcess, LoopbackCoturn, free_port
from callops.turn.credentials import rest_credentials
from callops.turn.uri import parse_uri

StartCoturn = Callable[..., LoopbackCoturn]

PRIVATE = {"10.0.0.1", "172.16.0.1", "192.168.0.1"}


def test_forbidden_targets_cover_the_issue_list_and_the_servers_own_addresses() -> None:
    targets = forbidden_targets("203.0.113.10", ["203.0.113.11"])
    ips = [t.ip for t in targets]
    for ip in ("127.0.0.1", "::1", "0.0.0.0", *PRIVATE, "169.254.169.254", "100.64.0.1", "224.0.0.1"):
        assert ip in ips
    assert "255.255.255.255" in ips
    assert ips[-2:] == ["203.0.113.10", "203.0.113.11"]
    assert len(ips) == len(set(ips)) == len(FORBIDDEN) + 2


def test_forbidden_targets_merge_reasons_when_the_server_listens_on_a_listed_address() -> None:
    targets = {t.ip: t.why for t in forbidden_targets("127.0.0.1", ["127.0.0.1"])}
    assert len(targets) == len(FORBIDDEN)
    assert "loopback" in targets["127.0.0.1"]
    assert "own listening address" in targets["127.0.0.1"]
    assert "own relayed address" in targets["127.0.0.1"]


def _audit(server: LoopbackCoturn) -> AuditReport:
    creds = rest_credentials(server.secret, "auditor", ttl=300)
    return run_bounded(
        audit_server(parse_uri(server.turn_udp), creds.username, creds.credential, timeout=10), 60
    )


@pytest.mark.coturn
def test_audit_flags_loopback_and_private_ranges_on_an_insecure_coturn(start_coturn: StartCoturn) -> None:
    # allow-loopback-peers and no denied-peer-ip, plus an IPv6 relay so that ::1 is really tried.
    server = start_coturn(extra=["allow-loopback-peers", "listening-ip=::1", "relay-ip=::1"], rfc5780=False)
    report = _audit(server)
    permitted = {f.ip for f in report.permitted}
    assert {"127.0.0.1", "::1", *PRIVATE} <= permitted
    assert not report.passed
    loopback = next(f for f in report.findings if f.ip == "127.0.0.1")
    assert loopback.data_relayed is True  # our one datagram came back from our own echo peer
    assert next(f for f in report.findings if f.ip == "::1").data_relayed is True
    # Only our own echo peers got data: every other permitted target carries no datagram.
    assert all(f.data_relayed is None for f in report.findings if f.ip not in ("127.0.0.1", "::1"))


@pytest.fixture
def secure_coturn(tmp_path: Path) -> Iterator[tuple[LoopbackCoturn, CoturnProcess]]:
    """coturn with the secure config of callops.turn.config (denied-peer-ip for every special range)."""
    from callops.turn.config import TurnDeployment, write_turnserver_conf

    secret = Secret(secrets.token_hex(16), source="test")
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret.reveal())
    port = free_port()
    deployment = TurnDeployment.loopback(port=port, min_port=40000, max_port=40999, secret_file=secret_file)
    conf = write_turnserver_conf(deployment, tmp_path / "turnserver.conf", secret=secret)
    process = CoturnProcess(conf, workdir=tmp_path, ready_address=("127.0.0.1", port), start_timeout=20)
    process.start()
    try:
        yield (
            LoopbackCoturn(
                host="127.0.0.1",
                port=port,
                tls_port=port,
                other_host=None,
                other_port=0,
                secret=secret,
                realm=deployment.realm,
                ca_file=conf,
                config_file=conf,
                process=process,
            ),
            process,
        )
    finally:
        process.stop()


@pytest.mark.coturn
def test_audit_passes_against_the_secure_rendered_config(
    secure_coturn: tuple[LoopbackCoturn, CoturnProcess],
) -> None:
    server, _ = secure_coturn
    report = _audit(server)
    assert report.passed, [(f.ip, f.detail) for f in report.permitted]
    refused = {f.ip: f for f in report.findings if f.outcome == "refused"}
    assert {"127.0.0.1", *PRIVATE, "169.254.169.254", "100.64.0.1"} <= set(refused)
    assert refused["10.0.0.1"].error_code == 403


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callops", "turn", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.coturn
def test_audit_command_exits_1_on_an_insecure_coturn_and_0_on_a_secure_one(
    start_coturn: StartCoturn, secure_coturn: tuple[LoopbackCoturn, CoturnProcess]
) -> None:
    insecure = start_coturn(extra=["allow-loopback-peers"], rfc5780=False)
    bad = _cli(insecure.turn_udp, "--json", env={"CALLOPS_TURN_SECRET": insecure.secret.reveal()})
    assert bad.returncode == 1, bad.stderr
    report = json.loads(bad.stdout)
    assert "127.0.0.1" in {f["ip"] for f in report["findings"] if f["permitted"]}

    secure, _ = secure_coturn
    good = _cli(secure.turn_udp, env={"CALLOPS_TURN_SECRET": secure.secret.reveal()})
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS: 0 of" in good.stdout


@pytest.mark.coturn
def test_audit_command_with_wrong_credentials_exits_6_without_a_traceback(coturn: LoopbackCoturn) -> None:
    res = _cli(coturn.turn_udp, env={"CALLOPS_TURN_SECRET": "wrong-secret"})
    assert res.returncode == 6
    assert "401: credentials rejected" in res.stderr
    assert "Traceback" not in res.stderr
    assert "wrong-secret" not in res.stderr
