"""``callops turn probe``: one JSON document, exit codes, and a fast process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from callops.turn.coturn import LoopbackCoturn, free_port

StartCoturn = Callable[..., LoopbackCoturn]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callops", "turn", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.coturn
def test_probe_command_prints_one_json_document_and_exits_0(coturn: LoopbackCoturn) -> None:
    res = _cli(
        "probe", coturn.stun_uri, coturn.turn_udp, coturn.turn_tcp, coturn.turns,
        "--ca-file", str(coturn.ca_file), "--nat", "--json", "--timeout", "10",
        env={"CALLOPS_TURN_SECRET": coturn.secret.reveal()},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert [r["status"] for r in doc["results"]] == ["ok"] * 7
    assert {"name", "kind", "target", "status", "duration_ms", "detail", "error", "data"} <= set(
        doc["results"][0]
    )
    assert coturn.secret.reveal() not in res.stdout


@pytest.mark.coturn
def test_probe_command_over_tls_needs_the_ca_or_insecure(coturn: LoopbackCoturn) -> None:
    env = {"CALLOPS_TURN_SECRET": coturn.secret.reveal()}
    unverified = _cli("probe", coturn.turns, "--no-relay", "--timeout", "10", env=env)
    assert unverified.returncode == 1, unverified.stdout + unverified.stderr
    assert "TLS certificate rejected" in unverified.stdout and "--ca-file" in unverified.stdout
    assert "Traceback" not in unverified.stderr
    for option in (["--ca-file", str(coturn.ca_file)], ["--insecure"]):
        res = _cli("probe", coturn.turns, "--no-relay", "--timeout", "10", *option, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert res.stdout.startswith("ok ") and "turn-tls" in res.stdout


@pytest.mark.coturn
def test_probe_command_with_long_term_password_file(start_coturn: StartCoturn, tmp_path: Path) -> None:
    server = start_coturn(users=[("dave", "pw-of-dave")], rfc5780=False, extra=["allow-loopback-peers"])
    password_file = tmp_path / "pw"
    password_file.write_text("pw-of-dave\n")
    res = _cli("probe", server.turn_udp, "--user", "dave", "--password-file", str(password_file))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].endswith("0 failed")


def _wait_for_udp_echo(port: int, timeout: float = 20.0) -> None:
    """Return once a UDP echo server answers on 127.0.0.1:``port`` (it may still be starting)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
            try:
                sock.send(b"ready?")
                if sock.recv(64) == b"ready?":
                    return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise AssertionError(f"turnutils_peer did not echo on udp 127.0.0.1:{port} within {timeout:.0f} s")


@pytest.mark.coturn
def test_probe_command_relays_to_an_echo_peer_given_with_peer(coturn: LoopbackCoturn) -> None:
    peer_port = free_port()
    peer = subprocess.Popen(
        ["turnutils_peer", "-p", str(peer_port), "-L", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_udp_echo(peer_port)
        res = _cli(
            "probe", coturn.turn_udp, "--peer", f"127.0.0.1:{peer_port}", "--count", "5", "--json",
            env={"CALLOPS_TURN_SECRET": coturn.secret.reveal()},
        )  # fmt: skip
    finally:
        peer.terminate()
        peer.wait(10)
    assert res.returncode == 0, res.stdout + res.stderr
    relay = next(r for r in json.loads(res.stdout)["results"] if r["kind"] == "relay")
    assert relay["data"]["peer"] == "address"
    assert relay["data"]["peer_address"] == f"127.0.0.1:{peer_port}"
    assert relay["data"]["received"] == 5


def test_probe_command_rejects_a_bad_peer_with_exit_2() -> None:
    res = _cli("probe", "turn:127.0.0.1:3478", "--peer", "no-port")
    assert res.returncode == 2
    assert "--peer 'no-port' is not HOST:PORT" in res.stderr


def test_probe_command_exits_1_with_sentences_when_nothing_listens() -> None:
    port = free_port()
    res = _cli("probe", f"stun:127.0.0.1:{port}", f"turns:127.0.0.1:{port}", "--timeout", "2",
               env={"CALLOPS_TURN_SECRET": "s"})  # fmt: skip
    assert res.returncode == 1
    assert f"TURN/TLS 127.0.0.1:{port}: connection refused" in res.stdout
    assert f"STUN/UDP 127.0.0.1:{port}: port unreachable" in res.stdout


def test_probe_command_rejects_a_bad_uri_with_exit_2() -> None:
    res = _cli("probe", "turn:host:99999")
    assert res.returncode == 2
    assert "port '99999'" in res.stderr
    assert "Traceback" not in res.stderr


def test_turn_help_does_not_import_aioice() -> None:
    code = (
        "import sys;from callops.orchestrator.cli import main\n"
        "try:\n main(['turn','--help'])\nexcept SystemExit: pass\n"
        "assert 'aioice' not in sys.modules and 'aiortc' not in sys.modules, 'heavy import'"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "probe" in res.stdout and "audit" in res.stdout and "creds" in res.stdout
