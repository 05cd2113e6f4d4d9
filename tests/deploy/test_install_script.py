"""``install-coturn.sh`` for real: --no-systemd under a temporary root, inside a network namespace."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callops.turn.lint import lint_file

SCRIPT_TIMEOUT = 120


def run_script(
    bundle: Path, *args: str, netns: str | None = None, timeout: float = SCRIPT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(bundle / "install-coturn.sh"), *args]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    # The probe runs with this interpreter's callops, whatever is on PATH.
    env = {**os.environ, "CALLOPS": f"{sys.executable} -m callops"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def install_into(
    root: Path, bundle: Path, *args: str, netns: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``install-coturn.sh --no-systemd --root ROOT ARGS``."""
    return run_script(bundle, "--no-systemd", "--root", str(root), *args, netns=netns)


def installed_mtimes(root: Path) -> dict[Path, int]:
    """The modification times of the files installed under ``root`` (not its run/ and log/ files)."""
    return {
        p: p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and "run" not in p.parts and "log" not in p.parts
    }


def write_secret(path: Path, value: str | None = None) -> Path:
    path.write_text((value if value is not None else secrets.token_hex(24)) + "\n")
    path.chmod(0o600)
    return path


def stop_installed(root: Path) -> None:
    """Stop the turnserver the script started (by its pid file), if any."""
    pid_file = root / "run/callops-coturn/turnserver.pid"
    if pid_file.exists():
        subprocess.run(["kill", pid_file.read_text().strip()], check=False, capture_output=True, timeout=10)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "root"
    path.mkdir()
    yield path
    stop_installed(path)


def test_install_script_passes_shellcheck(systemd_bundle: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(
        ["shellcheck", "-x", str(systemd_bundle / "install-coturn.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_help_names_the_certificate_and_options(systemd_bundle: Path) -> None:
    result = run_script(systemd_bundle, "--help")
    assert result.returncode == 0
    for needle in ("--dry-run", "--no-systemd", "--root", "--nftables", "--reload-certificates", "SIGUSR2"):
        assert needle in result.stdout


def test_dry_run_prints_changes_and_changes_nothing(systemd_bundle: Path, root: Path, tmp_path: Path) -> None:
    secret = write_secret(tmp_path / "secret")
    result = install_into(root, systemd_bundle, "--dry-run", "--secret-from", str(secret))
    assert result.returncode == 0, result.stderr
    assert f"would write: {root}/etc/turnserver.conf" in result.stdout
    assert f"would write: {root}/etc/coturn/turn-secret" in result.stdout
    assert "would (re)start coturn" in result.stdout
    assert list(root.iterdir()) == []
    assert secret.read_text().strip() not in result.stdout + result.stderr


def test_systemd_mode_explains_when_systemd_is_not_pid1(systemd_bundle: Path) -> None:
    if Path("/run/systemd/system").is_dir() and Path("/proc/1/comm").read_text().strip() == "systemd":
        pytest.skip("systemd is PID 1 here")
    result = run_script(systemd_bundle, "--dry-run")
    assert result.returncode == 1
    assert "systemd is not PID 1" in result.stderr and "--no-systemd" in result.stderr


def test_root_needs_no_systemd(systemd_bundle: Path, root: Path) -> None:
    result = run_script(systemd_bundle, "--root", str(root))
    assert result.returncode == 1 and "--root works only with --no-systemd" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "is empty"), ("x7Q2", "shorter than 16 characters"), ("has a space in the middle", "whitespace")],
)
def test_a_bad_secret_file_fails_with_a_clear_message(
    systemd_bundle: Path, root: Path, tmp_path: Path, value: str, message: str
) -> None:
    secret = write_secret(tmp_path / "secret", value)
    result = install_into(root, systemd_bundle, "--dry-run", "--secret-from", str(secret))
    assert result.returncode == 1
    assert message in result.stderr
    if value:
        assert value not in result.stdout + result.stderr


def test_missing_tls_certificate_fails_with_a_clear_message(tmp_path: Path, root: Path) -> None:
    from callops.deploy.render import render_bundle, write_bundle
    from callops.turn.config import TurnDeployment

    deployment = TurnDeployment(
        realm="t.example",
        tls_cert_file=Path("/etc/coturn/cert.pem"),
        tls_key_file=Path("/etc/coturn/key.pem"),
    )
    bundle = tmp_path / "tls-bundle"
    write_bundle(render_bundle(deployment, "systemd"), bundle)
    result = install_into(root, bundle, "--dry-run")
    assert result.returncode == 1
    assert f"TLS file {root}/etc/coturn/cert.pem does not exist" in result.stderr


@pytest.mark.coturn
@pytest.mark.netns
@pytest.mark.slow
def test_install_runs_coturn_the_probe_passes_and_a_second_run_is_a_no_op(
    systemd_bundle: Path, root: Path, tmp_path: Path, deploy_netns: str
) -> None:
    secret = write_secret(tmp_path / "secret")
    first = install_into(root, systemd_bundle, "--secret-from", str(secret), "--nftables", netns=deploy_netns)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "probe passed: the relay works" in first.stdout
    assert secret.read_text().strip() not in first.stdout + first.stderr

    installed_secret = root / "etc/coturn/turn-secret"
    conf = root / "etc/turnserver.conf"
    dropin = root / "etc/systemd/system/coturn.service.d/callops.conf"
    assert stat.S_IMODE(installed_secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(conf.stat().st_mode) & 0o007 == 0
    assert installed_secret.read_text() == secret.read_text()
    dropin_text = dropin.read_text()
    for needle in ("LimitNOFILE=65536", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "Restart=on-failure"):
        assert needle in dropin_text
    report = lint_file(conf, secret_file=str(installed_secret))
    assert report.errors == 0 and report.warnings == 0, report.findings
    pid = (root / "run/callops-coturn/turnserver.pid").read_text()
    before = installed_mtimes(root)

    rules = subprocess.run(
        ["ip", "netns", "exec", deploy_netns, "nft", "list", "chain", "inet", "filter", "input"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    assert "udp dport 49152-49999 accept" in rules and "callops coturn listeners" in rules
    assert (root / "etc/nftables.d/callops-coturn.nft").exists()

    second = install_into(root, systemd_bundle, "--nftables", netns=deploy_netns)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "wrote:" not in second.stdout
    assert "nothing changed" in second.stdout and "unchanged" in second.stdout
    assert "nftables rules already loaded" in second.stdout
    assert (root / "run/callops-coturn/turnserver.pid").read_text() == pid
    assert installed_mtimes(root) == before

    reload = install_into(root, systemd_bundle, "--reload-certificates", netns=deploy_netns)
    assert reload.returncode == 0, reload.stderr
    assert "reload its TLS certificate and key (SIGUSR2)" in reload.stdout
    assert Path(f"/proc/{pid.strip()}").exists()

    wrong = write_secret(tmp_path / "wrong-secret")
    third = install_into(root, systemd_bundle, "--probe-secret-file", str(wrong), netns=deploy_netns)
    assert third.returncode == 1
    assert "PROBE FAILED" in third.stderr and "401" in third.stderr
    assert "does not match the server's" in third.stderr


@pytest.mark.coturn
@pytest.mark.netns
def test_a_busy_port_fails_with_a_clear_message(
    systemd_bundle: Path, root: Path, tmp_path: Path, deploy_netns: str, netns_address: str
) -> None:
    with subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            deploy_netns,
            sys.executable,
            "-c",
            "import socket, sys\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"s.bind(({netns_address!r}, 3478))\n"
            "print('bound', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "bound"
        secret = write_secret(tmp_path / "secret")
        result = install_into(root, systemd_bundle, "--secret-from", str(secret), netns=deploy_netns)
        holder.stdin.close()
        holder.wait(timeout=10)
    assert result.returncode == 1
    assert "port 3478 is already in use" in result.stderr
    assert not (root / "run/callops-coturn/turnserver.pid").exists()
