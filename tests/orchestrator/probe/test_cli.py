"""``callops probe`` as a process against a real coturn on loopback: verdict, JSON, exit codes, deadline."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from callops.turn.coturn import free_port

pytestmark = pytest.mark.coturn


def run_probe(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any] | None, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CALLOPS_")}
    full_env.update(env or {})
    res = subprocess.run(
        [sys.executable, "-m", "callops", "probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        cwd="/",
    )
    doc = json.loads(res.stdout) if "--json" in args and res.stdout.strip() else None
    return res.returncode, doc, res.stderr


def servers(t: dict[str, str], *, tls: bool = True) -> list[str]:
    args = ["--stun", t["stun"], "--turn", t["turn_udp"], "--turn", t["turn_tcp"]]
    if tls:
        args += ["--turn", t["turns"]]
    return [*args, "--secret-file", t["secret_file"]]


def test_loopback_without_nat_is_p2p_likely_with_every_relay_transport(loopback_turn: dict[str, str]) -> None:
    code, doc, err = run_probe(*servers(loopback_turn), "--ca-file", loopback_turn["ca_file"], "--json")
    assert doc is not None, err
    assert code == 0
    assert doc["verdict"] == "p2p-likely"
    assert doc["relay_transports"] == ["udp", "tcp", "tls"]
    assert doc["nat"]["present"] is False
    assert [s["urls"][0] for s in doc["ice_servers"]] == [
        loopback_turn["stun"],
        loopback_turn["turn_udp"],
        loopback_turn["turn_tcp"],
        loopback_turn["turns"],
    ]
    assert all(c["status"] in ("ok", "skipped") for c in doc["checks"]), doc["checks"]
    assert doc["insecure"] is False
    tls = next(c for c in doc["checks"] if c["name"].startswith("tls "))
    assert "browsers accept it" in tls["detail"]
    # No NAT, but this coturn has no RFC 5780 alternate address: the filtering is unproven, so only
    # the peers whose path depends on it are inconclusive.
    assert doc["site_class"] == "inconclusive"
    assert doc["peers"] == {
        "open": {"path": "p2p"},
        "address-restricted": {"path": "p2p"},
        "port-restricted": {"path": "p2p"},
        "symmetric": {"path": "inconclusive"},
        "relay-only": {"path": "relay", "transport": "udp"},
    }


def test_tls_verifies_the_certificate_unless_told_otherwise(loopback_turn: dict[str, str]) -> None:
    code, doc, _ = run_probe(*servers(loopback_turn), "--json")
    assert doc is not None and code == 0
    tls = next(c for c in doc["checks"] if c["name"].startswith("relay turns:"))
    assert tls["status"] == "fail" and "certificate" in (tls["error"] or "").lower()
    assert "tls" not in doc["relay_transports"]
    code, doc, _ = run_probe(*servers(loopback_turn), "--insecure", "--json")
    assert doc is not None and code == 0
    assert "tls" in doc["relay_transports"]
    assert doc["insecure"] is True and doc["warnings"]
    # The certificate check still says what a browser would decide (untrusted without the CA).
    tls = next(c for c in doc["checks"] if c["name"].startswith("tls "))
    assert tls["status"] == "fail" and "untrusted" in tls["error"]
    assert any("browsers would reject it" in w for w in doc["warnings"])


def test_config_file_is_read_and_flags_override_it(loopback_turn: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "callops.yaml"
    probe = {"stun": [loopback_turn["stun"]], "turn": [loopback_turn["turn_udp"]], "timeout": 0.01}
    config.write_text(json.dumps({"probe": {**probe, "secret_file": loopback_turn["secret_file"]}}))
    code, doc, err = run_probe("--config", str(config), "--timeout", "5", "--json")
    assert doc is not None, err
    assert (code, doc["verdict"], doc["timeout_s"]) == (0, "p2p-likely", 5.0)


def test_secret_from_the_environment(loopback_turn: dict[str, str]) -> None:
    env = {"CALLOPS_TURN_SECRET": "probe-test-secret", "CALLOPS_PROBE_TURN": loopback_turn["turn_tcp"]}
    _, doc, err = run_probe("--json", env=env)
    assert doc is not None, err
    assert doc["relay_transports"] == ["tcp"]


def test_a_wrong_secret_is_reported_as_rejected_credentials(
    loopback_turn: dict[str, str], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-secret")
    _, doc, _ = run_probe("--turn", loopback_turn["turn_udp"], "--secret-file", str(wrong), "--json")
    assert doc is not None
    relay = next(c for c in doc["checks"] if c["name"].startswith("relay"))
    assert relay["status"] == "fail" and "401" in (relay["error"] or "")


def test_silent_servers_give_blocked_exit_3_at_the_deadline(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x-secret")
    port = free_port()
    # A bound UDP socket that never reads: no answer, and no ICMP "port unreachable" either.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", port))
        started = time.monotonic()
        code, doc, err = run_probe(
            "--stun",
            f"stun:127.0.0.1:{port}",
            "--turn",
            f"turn:127.0.0.1:{port}?transport=udp",
            "--secret-file",
            str(secret),
            "--timeout",
            "1.5",
            "--json",
        )
    elapsed = time.monotonic() - started
    assert doc is not None, err
    assert (code, doc["verdict"]) == (3, "blocked")
    assert 1.5 <= doc["duration_ms"] / 1000 < 1.8
    assert elapsed < 15  # process start-up on a loaded machine included; the bench measures it


def test_usage_errors_exit_2() -> None:
    code, _, err = run_probe("--json")
    assert code == 2 and "no servers to probe" in err
    code, _, err = run_probe("--turn", "turn:127.0.0.1:3478")
    assert code == 2 and "no credentials" in err


def test_serve_and_peer_processes_connect_the_host_path_and_reject_a_wrong_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("cli-two-site-token\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLOPS_")}
    argv = [sys.executable, "-m", "callops", "probe", "serve", "--listen", f"127.0.0.1:{port}"]
    argv += ["--token-file", str(token), "--host-address", "127.0.0.1"]
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env, cwd="/") as serve:
        try:
            assert serve.stderr is not None
            line = serve.stderr.readline()  # the responder says when it listens
            assert "listening" in line, line
            peer = ["peer", f"ws://127.0.0.1:{port}", "--path", "host", "--host-address", "127.0.0.1"]
            code, doc, err = run_probe(*peer, "--token-file", str(token), "--timeout", "15", "--json")
            assert doc is not None, err
            assert (code, doc["verdict"]) == (0, "p2p")
            assert doc["paths"][0]["connected"] and doc["paths"][0]["rtt_ms"] is not None
            code, _, err = run_probe(*peer, "--token-file", str(wrong), "--timeout", "15", "--json")
            assert code == 6 and "rejected the token" in err
        finally:
            serve.terminate()
            serve.wait(timeout=10)
