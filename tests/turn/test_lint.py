"""``callops turn lint``: the parser, every rule, the report and the command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from callops.errors import UsageError
from callops.orchestrator.cli import cli
from callops.secret import Secret
from callops.turn.config import TurnDeployment, render_turnserver_conf, write_turnserver_conf
from callops.turn.lint import Finding, lint_conf, lint_file, parse_turnserver_conf

SECURE = render_turnserver_conf(TurnDeployment(realm="turn.example.com"))


def ids(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.id for f in findings if severity is None or f.severity == severity}


def with_lines(*extra: str, drop: tuple[str, ...] = ()) -> str:
    kept = [line for line in SECURE.splitlines() if line.split("=")[0] not in drop and line not in drop]
    return "\n".join([*kept, *extra]) + "\n"


def test_parser_reads_every_line_form() -> None:
    conf = parse_turnserver_conf(
        "# comment\n"
        "\n"
        "realm=turn.example.com\n"
        "listening-port 3478\n"
        "fingerprint\n"
        "  --no-cli  \n"
        "user = alice:0xabcdef\n"
        "user=bob:secret-password-long\n"
        'cipher-list="ECDHE-RSA-AES256-GCM-SHA384"\n'
        "-a\n"
        "# callops: coturn-version=4.7.0\n"
    )
    got = [(d.key, d.value, d.line) for d in conf.directives]
    assert got == [
        ("realm", "turn.example.com", 3),
        ("listening-port", "3478", 4),
        ("fingerprint", None, 5),
        ("no-cli", None, 6),
        ("user", "alice:0xabcdef", 7),
        ("user", "bob:secret-password-long", 8),
        ("cipher-list", "ECDHE-RSA-AES256-GCM-SHA384", 9),
        ("lt-cred-mech", None, 10),
    ]
    assert [d.value for d in conf.all("user")] == ["alice:0xabcdef", "bob:secret-password-long"]
    assert conf.meta == {"coturn-version": "4.7.0"}


def test_rendered_config_lints_clean_for_each_coturn_version() -> None:
    for version in ("4.5.2", "4.6.1", "4.7.0", "4.10.0"):
        for tls in ({}, {"tls_cert_file": "/etc/c.pem", "tls_key_file": "/etc/k.pem"}):
            fields = {"realm": "t.example", "coturn_version": version, **tls}
            text = render_turnserver_conf(TurnDeployment.model_validate(fields))
            assert lint_conf(text) == [], (version, tls)


def test_rendered_behind_nat_config_lints_clean() -> None:
    deployment = TurnDeployment.model_validate(
        {
            "realm": "turn.example.com",
            "listening_ips": ["10.0.0.5"],
            "relay_ips": ["10.0.0.5"],
            "external_ips": [{"public": "203.0.113.10", "private": "10.0.0.5"}],
        }
    )
    assert lint_conf(render_turnserver_conf(deployment)) == []


def test_loopback_preset_is_flagged() -> None:
    deployment = TurnDeployment.loopback(
        port=3478, min_port=50000, max_port=50100, secret_file="/s", allow_loopback_peers=True
    )
    findings = lint_conf(render_turnserver_conf(deployment, secret=Secret("x" * 32)))
    assert ids(findings, "error") == {"allow-loopback-peers"}
    assert "peer-range-allowed" in ids(findings, "info")


@pytest.mark.parametrize(
    ("text", "rule", "severity"),
    [
        (with_lines("no-auth"), "no-auth", "error"),
        (with_lines(drop=("use-auth-secret",)), "no-auth", "error"),
        (with_lines(drop=("realm",)), "missing-realm", "error"),
        (with_lines("allow-loopback-peers"), "allow-loopback-peers", "error"),
        (with_lines(drop=("denied-peer-ip",)), "peer-range-not-denied", "error"),
        (with_lines(drop=("denied-peer-ip",)), "metadata-not-denied", "error"),
        (with_lines(drop=("no-multicast-peers", "denied-peer-ip")), "multicast-peers-allowed", "error"),
        (with_lines("cli-password=qwerty", drop=("no-cli",)), "cli-weak-password", "error"),
        (with_lines("cli-password=short", drop=("no-cli",)), "cli-weak-password", "error"),
        (with_lines(drop=("no-cli",)), "cli-enabled", "warning"),
        (
            with_lines("cli-password=$5$1234$abcdef", "cli-ip=0.0.0.0", drop=("no-cli",)),
            "cli-exposed",
            "error",
        ),
        (
            with_lines("cert=/c.pem", "pkey=/k.pem", drop=("no-tls", "no-dtls", "no-tlsv1_1")),
            "old-tls-enabled",
            "error",
        ),
        (with_lines("tlsv1"), "old-tls-enabled", "error"),
        (with_lines("user=alice:alice"), "weak-static-user", "error"),
        (with_lines("user=bob:password"), "weak-static-user", "error"),
        (with_lines("lt-cred-mech"), "lt-cred-mech-with-auth-secret", "warning"),
        (
            with_lines("min-port=50000", "max-port=50099", drop=("min-port", "max-port")),
            "relay-port-range-too-small",
            "error",
        ),
        (
            with_lines("min-port=60000", "max-port=50000", drop=("min-port", "max-port")),
            "relay-port-range-too-small",
            "error",
        ),
        (with_lines("listening-ip=192.168.1.10"), "private-address-without-external-ip", "warning"),
        (with_lines("server-relay"), "server-relay", "error"),
        (with_lines("static-auth-secret=short"), "weak-auth-secret", "warning"),
        (with_lines("denied-peer-ip=10.0.0.0-banana"), "bad-peer-range", "error"),
        (with_lines("denied-peer-ip=10.0.0.0/8"), "bad-peer-range", "error"),
    ],
)
def test_each_rule_fires(text: str, rule: str, severity: str) -> None:
    findings = lint_conf(text)
    matching = [f for f in findings if f.id == rule]
    assert matching, [f.id for f in findings]
    assert matching[0].severity == severity
    assert matching[0].message and matching[0].why and matching[0].fix


def test_findings_point_at_the_offending_line() -> None:
    text = "realm=t.example\nuse-auth-secret\nstatic-auth-secret=0123456789abcdef0123\nallow-loopback-peers\n"
    finding = next(f for f in lint_conf(text) if f.id == "allow-loopback-peers")
    assert finding.line == 4


def test_missing_private_ranges_cite_the_channelbind_failure() -> None:
    finding = next(
        f
        for f in lint_conf(with_lines(drop=("denied-peer-ip",)))
        if f.id == "peer-range-not-denied" and "192.168.0.0/16" in f.message
    )
    assert "ChannelBind" in finding.why and finding.fix == "add denied-peer-ip=192.168.0.0-192.168.255.255"


def test_explicitly_allowed_private_range_is_info_only() -> None:
    findings = lint_conf(with_lines("allowed-peer-ip=10.1.2.3"))
    assert ids(findings) == {"peer-range-allowed"}
    assert all(f.severity == "info" for f in findings)


def test_use_auth_secret_without_secret_or_secret_file_is_an_error() -> None:
    text = "\n".join(line for line in SECURE.splitlines() if not line.startswith("# callops: secret-file"))
    assert "auth-secret-missing" in ids(lint_conf(text), "error")


def test_removed_tls_switches_warn_for_coturn_4_7() -> None:
    findings = lint_conf(with_lines(), coturn_version="4.7.0")
    assert ids(findings) == {"removed-option"}


def test_secret_file_permissions_are_checked(tmp_path: Path) -> None:
    secret_file = tmp_path / "turn-secret"
    secret_file.write_text("0123456789abcdef0123456789\n")
    secret_file.chmod(0o644)
    conf = tmp_path / "turnserver.conf"
    conf.write_text(SECURE)
    report = lint_file(conf, secret_file=str(secret_file))
    assert [f.id for f in report.findings] == ["secret-file-readable"] and report.errors == 1
    secret_file.chmod(0o640)
    assert lint_file(conf, secret_file=str(secret_file)).findings[0].severity == "warning"
    secret_file.chmod(0o600)
    assert lint_file(conf, secret_file=str(secret_file)).findings == []


def test_conf_with_a_literal_secret_must_not_be_world_readable(tmp_path: Path) -> None:
    deployment = TurnDeployment(realm="t.example", secret_file=tmp_path / "absent")
    conf = write_turnserver_conf(
        deployment, tmp_path / "turnserver.conf", secret=Secret("0123456789abcdef0123")
    )
    assert lint_file(conf).findings == []
    os.chmod(conf, 0o644)
    assert ids(lint_file(conf).findings, "error") == {"secret-file-readable"}


def test_cli_exit_code_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    clean = tmp_path / "clean.conf"
    clean.write_text(SECURE)
    result = runner.invoke(cli, ["turn", "lint", str(clean)])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output
    bad = tmp_path / "bad.conf"
    bad.write_text("no-auth\nallow-loopback-peers\n")
    result = runner.invoke(cli, ["turn", "lint", str(bad), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["errors"] >= 2
    first = document["findings"][0]
    assert set(first) == {"id", "severity", "line", "message", "why", "fix"}
    result = runner.invoke(cli, ["turn", "lint", str(bad)])
    assert result.exit_code == 1 and "fix:" in result.output
    result = runner.invoke(cli, ["turn", "lint", str(tmp_path / "missing.conf")])
    assert isinstance(result.exception, UsageError) and result.exception.exit_code == 2


def test_debian_example_config_parses_and_is_flagged() -> None:
    example = Path("/etc/turnserver.conf")
    if not example.exists():
        pytest.skip("coturn's example /etc/turnserver.conf is not installed")
    report = lint_file(example, secret_file="/nonexistent")
    found = {f.id for f in report.findings}
    assert not report.ok
    assert {"peer-range-not-denied", "metadata-not-denied"} <= found


def test_cidr_peer_ranges_are_not_applied_by_coturn_so_the_range_counts_as_open() -> None:
    text = with_lines("denied-peer-ip=10.0.0.0/8", drop=("denied-peer-ip",))
    messages = [f.message for f in lint_conf(text)]
    assert any("uses CIDR" in m for m in messages)
    assert any(m.startswith("10.0.0.0/8 (Private-Use") for m in messages)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("relay-ip=999.1.1.1", "relay-ip=999.1.1.1: not an IP address"),
        ("listening-ip=::1%lo", None),
        ("listening-ip=fe80::1%eth0", None),
        ("listening-ip", "listening-ip has no value"),
        ("max-port=abc", "max-port=abc: not a port (1-65535)"),
        ("min-port=\u0663\u0663", "not a port"),  # Arabic-Indic digits: int() takes them, coturn does not
        ("listening-port=70000", "listening-port=70000: not a port (1-65535)"),
        ("tls-listening-port=0", "not a port"),
        ("user-quota=-1", "user-quota=-1: not a non-negative integer"),
        ("total-quota=" + "9" * 5000, "not a non-negative integer"),
        ("external-ip=203.0.113.5/10.0.0.300", "not PUBLIC or PUBLIC/PRIVATE addresses"),
        ("external-ip=203.0.113.5/10.0.0.5", None),
        ("cli-ip=not-an-ip", "cli-ip=not-an-ip: not an IP address"),
    ],
)
def test_invalid_values_are_errors_with_line_why_and_fix(line: str, message: str | None) -> None:
    findings = lint_conf(with_lines(line))
    invalid = [f for f in findings if f.id == "invalid-value"]
    if message is None:
        assert invalid == []
        return
    (finding,) = invalid
    assert finding.severity == "error" and message in finding.message
    assert finding.line == with_lines(line).splitlines().index(line) + 1
    assert finding.why and finding.fix


def test_min_port_above_max_port_points_at_min_port() -> None:
    text = with_lines("min-port=60000", "max-port=50000", drop=("min-port", "max-port"))
    (finding,) = [f for f in lint_conf(text) if f.id == "relay-port-range-too-small"]
    assert "min-port 60000 is above max-port 50000" in finding.message
    assert finding.line == text.splitlines().index("min-port=60000") + 1


def test_an_invalid_allowed_peer_range_is_reported_not_a_crash() -> None:
    text = with_lines("allowed-peer-ip=10.0.0.1-zzz", "allowed-peer-ip=10.0.0.5")
    assert "bad-peer-range" in ids(lint_conf(text), "error")


def test_a_secret_file_comment_with_a_nul_byte_does_not_crash_the_lint(tmp_path: Path) -> None:
    conf = tmp_path / "turnserver.conf"
    conf.write_text(SECURE.replace("# callops: secret-file=", "# callops: secret-file=\0"))
    assert lint_file(conf).errors == 0
