"""``callops exporter``: config errors name the field and exit 2; --check validates secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.orchestrator.exporter.conftest import Kit

REPO = Path(__file__).parents[3]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "callops", "exporter", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_check_lists_default_and_configured_modules(tmp_path: Path, kit: Kit) -> None:
    modules = "exporter:\n  modules:\n    turn_udp:\n      prober: turn\n      secret_file: {secret_file}\n"
    config = kit.config_file(tmp_path, modules, secret="cli-check-secret-0123456789")
    result = run("--config", str(config), "--check")
    assert result.returncode == 0, result.stderr
    assert "4 modules: nat, stun, tls, turn_udp" in result.stdout
    assert "cli-check-secret" not in result.stdout + result.stderr


def test_a_missing_secret_file_is_a_usage_error_at_start(tmp_path: Path, kit: Kit) -> None:
    modules = "exporter:\n  modules:\n    t:\n      prober: turn\n      secret_file: /nonexistent/secret\n"
    config = kit.config_file(tmp_path, modules)
    result = run("--config", str(config), "--check")
    assert result.returncode == 2
    assert "callops: error: TURN shared secret file /nonexistent/secret does not exist" in result.stderr


def test_bad_fields_and_listen_addresses_exit_2_with_the_field(tmp_path: Path, kit: Kit) -> None:
    bad = "exporter:\n  timeout_margin: -1\n  modules:\n    s:\n      prober: stun\n      timeout: 0\n"
    config = kit.config_file(tmp_path, bad)
    result = run("--config", str(config))
    assert result.returncode == 2
    assert "exporter.timeout_margin" in result.stderr and "exporter.modules.s.stun.timeout" in result.stderr
    result = run("--listen", "nowhere")
    assert result.returncode == 2
    assert "listen address 'nowhere' is not HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_busy_port_is_a_clear_error() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run("--listen", f"127.0.0.1:{busy.getsockname()[1]}")
    assert result.returncode == 5
    assert "cannot listen on 127.0.0.1:" in result.stderr


def _wait_listening(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bytes:
    """stderr up to the exporter's "listening on" line (waits on the pipe, with a deadline)."""
    import select
    import time

    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while b"listening on" not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, left))
        assert ready, f"the exporter did not come up within {timeout:g} s: {seen!r}"
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, f"the exporter exited: {seen!r}"
        seen += chunk
    return seen


def test_sigterm_stops_the_exporter_cleanly() -> None:
    import signal
    import urllib.request

    from callops.turn.coturn import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "callops", "exporter", "--listen", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        bufsize=0,
        env=env,
    )
    try:
        _wait_listening(proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert b"callops exporter" in page.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert b"stopping" in err
