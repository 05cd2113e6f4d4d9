"""The coturn deployment model, its renderer and callops.yaml loading."""

from __future__ import annotations

import ipaddress
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from callops.errors import ConfigError
from callops.orchestrator.cli import cli
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.config import (
    ExternalIp,
    TurnDeployment,
    load_config,
    parse_config,
    render_turnserver_conf,
    write_turnserver_conf,
)
from callops.turn.coturn import CoturnProcess, free_port
from callops.turn.ranges import denied_by_default


def directives(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_defaults_render_secure_directives() -> None:
    conf = directives(render_turnserver_conf(TurnDeployment(realm="turn.example.com")))
    for expected in (
        "use-auth-secret",
        "realm=turn.example.com",
        "fingerprint",
        "no-cli",
        "no-multicast-peers",
        "no-tlsv1",
        "no-tlsv1_1",
        "no-software-attribute",
        "denied-peer-ip=10.0.0.0-10.255.255.255",
        "denied-peer-ip=172.16.0.0-172.31.255.255",
        "denied-peer-ip=192.168.0.0-192.168.255.255",
        "denied-peer-ip=169.254.0.0-169.254.255.255",
        "denied-peer-ip=100.64.0.0-100.127.255.255",
        "denied-peer-ip=127.0.0.0-127.255.255.255",
        "denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "denied-peer-ip=fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "denied-peer-ip=224.0.0.0-239.255.255.255",
    ):
        assert expected in conf, expected
    for forbidden in ("no-auth", "allow-loopback-peers", "lt-cred-mech", "tlsv1", "tlsv1_1"):
        assert forbidden not in conf
    assert not any(line.startswith("allowed-peer-ip") for line in conf)
    assert len([line for line in conf if line.startswith("denied-peer-ip=")]) == len(denied_by_default())


def test_secret_is_not_rendered_unless_given() -> None:
    deployment = TurnDeployment(realm="turn.example.com")
    text = render_turnserver_conf(deployment)
    assert not any(line.startswith("static-auth-secret") for line in text.splitlines())
    assert "# callops: secret-file=/etc/coturn/turn-secret" in text
    with_secret = render_turnserver_conf(deployment, secret=Secret("a-long-shared-secret-value"))
    assert "static-auth-secret=a-long-shared-secret-value" in with_secret.splitlines()


def test_tls_switch_names_follow_the_coturn_version() -> None:
    tls = {"tls_cert_file": "/etc/coturn/cert.pem", "tls_key_file": "/etc/coturn/key.pem"}
    old = directives(
        render_turnserver_conf(
            TurnDeployment.model_validate({"realm": "t.example", "coturn_version": "4.6.1", **tls})
        )
    )
    new = directives(
        render_turnserver_conf(
            TurnDeployment.model_validate({"realm": "t.example", "coturn_version": "4.7.0", **tls})
        )
    )
    newest = directives(render_turnserver_conf(TurnDeployment(realm="t.example", coturn_version="4.10.0")))
    assert {"no-tlsv1", "no-tlsv1_1", "cert=/etc/coturn/cert.pem", "pkey=/etc/coturn/key.pem"} <= set(old)
    assert "no-tlsv1" not in new and "no-tlsv1_1" not in new and "tlsv1" not in new
    assert "cert=/etc/coturn/cert.pem" in new and "no-tls" not in new
    assert "no-cli" in new and "no-cli" not in newest and "cli" not in newest


def test_without_a_certificate_tls_and_dtls_listeners_are_off() -> None:
    conf = directives(render_turnserver_conf(TurnDeployment(realm="t.example")))
    assert "no-tls" in conf and "no-dtls" in conf


def test_nat_mapping_quotas_and_approved_peers_are_rendered() -> None:
    deployment = TurnDeployment(
        realm="turn.example.com",
        listening_ips=[ipaddress.ip_address("10.0.0.5")],
        external_ips=[
            ExternalIp(public=ipaddress.ip_address("203.0.113.10"), private=ipaddress.ip_address("10.0.0.5"))
        ],
        allowed_peer_ips=[ipaddress.ip_network("10.1.2.0/24")],
        user_quota=4,
        total_quota=500,
        max_bps=64000,
        bps_capacity=10_000_000,
        prometheus=True,
        log_file="/var/log/turnserver.log",
    )
    conf = directives(render_turnserver_conf(deployment))
    for expected in (
        "listening-ip=10.0.0.5",
        "external-ip=203.0.113.10/10.0.0.5",
        "allowed-peer-ip=10.1.2.0-10.1.2.255",
        "user-quota=4",
        "total-quota=500",
        "max-bps=64000",
        "bps-capacity=10000000",
        "prometheus",
        "prometheus-port=9641",
        "log-file=/var/log/turnserver.log",
        "simple-log",
    ):
        assert expected in conf, expected


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"realm": "not a realm"}, "realm"),
        ({"realm": "t.example", "min_port": 60000, "max_port": 50000}, "min_port 60000 is above max_port"),
        ({"realm": "t.example", "tls_cert_file": "/c.pem"}, "tls_cert_file and tls_key_file go together"),
        (
            {"realm": "t.example", "min_port": 50000, "max_port": 50099, "total_quota": 1000},
            "exceeds the relay",
        ),
        ({"realm": "t.example", "coturn_version": "latest"}, "coturn_version"),
        ({"realm": "t.example", "listening_port": 70000}, "listening_port"),
        ({"realm": "t.example", "relay_ip": ["1.2.3.4"]}, "relay_ip: unknown field"),
    ],
)
def test_invalid_turn_section_raises_config_error_naming_the_field(
    fields: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"turn": fields})
    assert needle in str(info.value)
    assert info.value.exit_code == 2


def test_missing_realm_is_named() -> None:
    with pytest.raises(ConfigError, match=r"turn\.realm: Field required"):
        parse_config({"turn": {}})


def test_load_config_keeps_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "callops.yaml"
    path.write_text("turn:\n  realm: turn.example.com\nprobe:\n  timeout: 5\nfuture:\n  - x\n")
    config = load_config(path)
    assert config.turn is not None and config.turn.realm == "turn.example.com"
    assert config.section("probe") == {"timeout": 5}
    assert config.section("future") == ["x"]
    assert config.section("absent") is None


def test_load_config_reports_yaml_errors_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "callops.yaml"
    path.write_text("turn:\n  realm: [unclosed\n")
    with pytest.raises(ConfigError, match=r"callops\.yaml line \d+: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_require_turn_explains_a_missing_section(tmp_path: Path) -> None:
    path = tmp_path / "callops.yaml"
    path.write_text("probe: {}\n")
    with pytest.raises(ConfigError, match="no 'turn:' section"):
        load_config(path).require_turn(path)


def test_write_turnserver_conf_is_private_and_reads_the_secret_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "turn-secret"
    secret_file.write_text("from-the-file-0123456789\n")
    deployment = TurnDeployment(realm="t.example", secret_file=secret_file)
    path = write_turnserver_conf(deployment, tmp_path / "turnserver.conf")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "static-auth-secret=from-the-file-0123456789" in path.read_text().splitlines()


def test_loopback_preset_allows_loopback_peers_only_on_request(tmp_path: Path) -> None:
    plain = TurnDeployment.loopback(port=3478, min_port=50000, max_port=50010, secret_file=tmp_path / "s")
    assert not plain.allow_loopback_peers and plain.allowed_peer_ips == []
    relaxed = TurnDeployment.loopback(
        port=3478, min_port=50000, max_port=50010, secret_file=tmp_path / "s", allow_loopback_peers=True
    )
    conf = directives(render_turnserver_conf(relaxed))
    assert "allow-loopback-peers" in conf and "allowed-peer-ip=127.0.0.1" in conf
    assert "listening-ip=127.0.0.1" in conf and "relay-ip=127.0.0.1" in conf


def test_cli_config_prints_the_conf_and_refuses_to_print_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "callops.yaml"
    secret_file = tmp_path / "turn-secret"
    secret_file.write_text("cli-secret-0123456789abcdef\n")
    path.write_text(f"turn:\n  realm: turn.example.com\n  secret_file: {secret_file}\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["turn", "config", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "realm=turn.example.com" in result.output
    assert "cli-secret" not in result.output
    result = runner.invoke(cli, ["turn", "config", "--config", str(path), "--with-secret"])
    assert result.exit_code != 0 and "cli-secret" not in result.output
    out = tmp_path / "turnserver.conf"
    result = runner.invoke(cli, ["turn", "config", "--config", str(path), "--with-secret", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "cli-secret" not in result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


# --- the rendered file boots the real coturn -------------------------------------------------------


@pytest.fixture
def secret() -> Secret:
    return Secret(secrets.token_hex(24), source="test")


def start(tmp_path: Path, deployment: TurnDeployment, secret: Secret) -> CoturnProcess:
    conf = write_turnserver_conf(deployment, tmp_path / "turnserver.conf", secret=secret)
    host = str(deployment.listening_ips[0])
    return CoturnProcess(
        conf, workdir=tmp_path, ready_address=(host, deployment.listening_port), start_timeout=20
    )


def relay_range() -> tuple[int, int]:
    low = free_port()
    return low, low + 40


@pytest.fixture
def secure_coturn(tmp_path: Path, secret: Secret) -> Iterator[TurnDeployment]:
    low, high = relay_range()
    deployment = TurnDeployment.loopback(
        port=free_port(), min_port=low, max_port=high, secret_file=tmp_path / "unused"
    )
    with start(tmp_path, deployment, secret):
        yield deployment


@pytest.mark.coturn
def test_rendered_config_boots_coturn_and_allocates(secure_coturn: TurnDeployment, secret: Secret) -> None:
    from callops.turn.credentials import rest_credentials
    from callops.turn.probes import ProbeStatus, turn_allocation

    creds = rest_credentials(secret, "config-test")
    uri = f"turn:127.0.0.1:{secure_coturn.listening_port}?transport=udp"
    result = run_bounded(turn_allocation(uri, creds.username, creds.credential, 15.0), 30)
    assert result.status is ProbeStatus.OK, result.error
    relayed = str(result.data.relayed)
    assert relayed.startswith("127.0.0.1:")
    assert secure_coturn.min_port <= int(relayed.rsplit(":", 1)[1]) <= secure_coturn.max_port


@pytest.mark.coturn
def test_rendered_config_rejects_a_wrong_secret(secure_coturn: TurnDeployment) -> None:
    from callops.turn.credentials import rest_credentials
    from callops.turn.probes import ProbeStatus, turn_allocation

    creds = rest_credentials(Secret("not-the-server-secret-0000"), "config-test")
    uri = f"turn:127.0.0.1:{secure_coturn.listening_port}?transport=udp"
    result = run_bounded(turn_allocation(uri, creds.username, creds.credential, 15.0), 30)
    assert result.status is ProbeStatus.FAIL
    assert "401" in (result.error or "")


@pytest.mark.coturn
def test_rendered_config_refuses_to_relay_to_loopback_peers(
    secure_coturn: TurnDeployment, secret: Secret
) -> None:
    from callops.turn.credentials import rest_credentials
    from callops.turn.probes import ProbeStatus, relay_data_test

    creds = rest_credentials(secret, "config-test")
    uri = f"turn:127.0.0.1:{secure_coturn.listening_port}?transport=udp"
    result = run_bounded(relay_data_test(uri, creds.username, creds.credential, 10.0, count=3), 30)
    assert result.status is ProbeStatus.FAIL
    assert "403" in (result.error or ""), result.error


@pytest.mark.coturn
def test_loopback_preset_relays_between_two_allocations(tmp_path: Path, secret: Secret) -> None:
    from callops.turn.credentials import rest_credentials
    from callops.turn.probes import ProbeStatus, relay_data_test

    low, high = relay_range()
    deployment = TurnDeployment.loopback(
        port=free_port(),
        min_port=low,
        max_port=high,
        secret_file=tmp_path / "unused",
        allow_loopback_peers=True,
    )
    creds = rest_credentials(secret, "config-test")
    uri = f"turn:127.0.0.1:{deployment.listening_port}?transport=udp"
    with start(tmp_path, deployment, secret):
        result = run_bounded(relay_data_test(uri, creds.username, creds.credential, 15.0, count=5), 30)
    assert result.status is ProbeStatus.OK, result.error
    assert result.data.received == 5


@pytest.mark.coturn
def test_rendered_tls_config_boots_allocates_over_tls_and_refuses_tls_1_1(
    tmp_path: Path, secret: Secret
) -> None:
    import socket
    import ssl
    import warnings

    from callops.turn.credentials import rest_credentials
    from callops.turn.probes import ProbeStatus, turn_allocation
    from callops.turn.tls import make_self_signed

    cert, key = make_self_signed(tmp_path / "tls", ["127.0.0.1"])
    low, high = relay_range()
    tls_port = free_port()
    deployment = TurnDeployment.loopback(
        port=free_port(),
        tls_port=tls_port,
        min_port=low,
        max_port=high,
        secret_file=tmp_path / "unused",
        tls_cert_file=cert,
        tls_key_file=key,
    )
    creds = rest_credentials(secret, "config-test")
    with start(tmp_path, deployment, secret):
        uri = f"turns:127.0.0.1:{tls_port}?transport=tcp"
        result = run_bounded(turn_allocation(uri, creds.username, creds.credential, 15.0, ca_file=cert), 30)
        assert result.status is ProbeStatus.OK, result.error
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.check_hostname = False
            old.verify_mode = ssl.CERT_NONE
            old.minimum_version = ssl.TLSVersion.TLSv1_1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            with (
                socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
                pytest.raises((ssl.SSLError, ConnectionResetError, TimeoutError)),
            ):
                old.wrap_socket(raw).close()


def test_loopback_preset_with_tls_needs_its_own_port(tmp_path: Path) -> None:
    from callops.errors import UsageError

    with pytest.raises(UsageError, match="tls_port"):
        TurnDeployment.loopback(
            port=3478,
            min_port=50000,
            max_port=50010,
            secret_file=tmp_path / "s",
            tls_cert_file=tmp_path / "c.pem",
            tls_key_file=tmp_path / "k.pem",
        )
