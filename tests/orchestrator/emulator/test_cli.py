"""``callops emulator serve`` and ``callops emulator invite`` as processes."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from callops.testing import run_bounded
from callops.turn.coturn import free_port


def _wait_listening(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The base URL from serve's first line (waits on the pipe, with a deadline)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"serve exited: {proc.stderr.read() if proc.stderr else ''}")
        if line.startswith("emulator on "):
            return line.split()[2]
    raise AssertionError("serve did not report its address in time")


@pytest.mark.slow
def test_serve_then_invite_through_the_cli(tmp_path: Path, raw_consumer: Any) -> None:
    port = free_port()
    secret = tmp_path / "jwt.secret"
    secret.write_text("cli-secret\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callops",
            "emulator",
            "serve",
            "--port",
            str(port),
            "--jwt-secret-file",
            str(secret),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = _wait_listening(proc)
        assert base_url == f"http://127.0.0.1:{port}"

        async def open_conversation() -> tuple[Any, str]:
            from callops.orchestrator.emulator import mint_jwt
            from callops.secret import Secret

            jwt = mint_jwt("c1", Secret("cli-secret"), now=time.time())
            consumer = await raw_consumer.connect(
                f"ws://127.0.0.1:{port}/ws_api/account/le1/messaging/consumer?v=3", "c1", jwt=jwt
            )
            conversation_id, _ = await consumer.open_conversation()
            await consumer.close()
            return consumer, conversation_id

        _, conversation_id = run_bounded(open_conversation(), 30)
        cli = [sys.executable, "-m", "callops", "emulator", "invite", base_url, "--account", "le1"]
        done = subprocess.run(
            [*cli, "--conversation", conversation_id, "--mode", "VOICE_CALL", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        invitation = json.loads(done.stdout)
        assert invitation["serviceId"].startswith("c1#") and invitation["expires"] > time.time()
        again = subprocess.run(
            [*cli, "--conversation", conversation_id], capture_output=True, text=True, timeout=60
        )
        assert (
            again.returncode == 2
            and "409 Call in progress" in again.stderr
            and "Traceback" not in again.stderr
        )
        cancel = subprocess.run(
            [*cli, "--conversation", conversation_id, "--cancel"], capture_output=True, text=True, timeout=60
        )
        assert cancel.returncode == 0 and "CLOSED" in cancel.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def test_invite_to_a_dead_port_exits_5_without_traceback() -> None:
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "callops",
            "emulator",
            "invite",
            f"http://127.0.0.1:{port}",
            "--account",
            "a",
            "--conversation",
            "c",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 5
    assert "connection refused" in done.stderr and "Traceback" not in done.stderr


def test_serve_usage_errors_name_the_file_or_port_and_the_fix(tmp_path: Path) -> None:
    serve = [sys.executable, "-m", "callops", "emulator", "serve", "--port"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*serve, *args], capture_output=True, text=True, timeout=60)

    missing = run("0", "--jwt-secret-file", str(tmp_path / "absent"))
    assert missing.returncode == 2 and "JWT secret file" in missing.stderr and "absent" in missing.stderr
    assert "Traceback" not in missing.stderr
    empty = tmp_path / "empty"
    empty.write_text("")
    blank = run("0", "--jwt-secret-file", str(empty))
    assert blank.returncode == 2 and "is empty" in blank.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run(str(port))
    assert busy.returncode == 5
    assert f"127.0.0.1:{port}" in busy.stderr and "--port" in busy.stderr and "Traceback" not in busy.stderr
    bad = run("70000")
    assert bad.returncode == 2 and "--port" in bad.stderr


def test_serve_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "callops", "emulator", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        # stopped like Ctrl-C (docs/call.md "Signals"): sockets closed, exit 128 + SIGTERM
        assert proc.returncode == 143 and "emulator stopped (SIGTERM)" in err and "Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate(timeout=30)


def test_serve_warns_on_a_non_loopback_host_without_secret_and_token(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is not an address of this machine: the warnings come before the
    # listen fails, so nothing ever listens beyond loopback
    serve = [sys.executable, "-m", "callops", "emulator", "serve", "--port", "0", "--host", "192.0.2.1"]
    bare = subprocess.run(serve, capture_output=True, text=True, timeout=60)
    assert bare.returncode == 5 and "Traceback" not in bare.stderr
    assert "no JWT secret" in bare.stderr and "no control token" in bare.stderr
    secret, token = tmp_path / "jwt.secret", tmp_path / "control.token"
    secret.write_text("a-jwt-secret-of-32-bytes-or-more-0123\n")
    token.write_text("control-token-from-a-file\n")
    guarded = subprocess.run(
        [*serve, "--jwt-secret-file", str(secret), "--control-token-file", str(token)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert guarded.returncode == 5 and "warning" not in guarded.stderr
    assert "control-token-from-a-file" not in guarded.stderr + guarded.stdout


@pytest.mark.slow
def test_invite_sends_the_control_token(tmp_path: Path, raw_consumer: Any) -> None:
    token = tmp_path / "control.token"
    token.write_text("control-token-from-a-file\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "callops", "emulator", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CALLOPS_CONTROL_TOKEN": "control-token-from-a-file"},
    )
    try:
        base_url = _wait_listening(proc)

        async def open_conversation() -> str:
            consumer = await raw_consumer.connect(
                f"ws{base_url[4:]}/ws_api/account/le1/messaging/consumer?v=3", "c1"
            )
            conversation_id, _ = await consumer.open_conversation()
            await consumer.close()
            return str(conversation_id)

        conversation_id = run_bounded(open_conversation(), 30)
        cli = [sys.executable, "-m", "callops", "emulator", "invite", base_url, "--account", "le1"]
        cli += ["--conversation", conversation_id]
        env = {k: v for k, v in os.environ.items() if k != "CALLOPS_CONTROL_TOKEN"}
        refused = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
        assert (
            refused.returncode == 6 and "401" in refused.stderr and "--control-token-file" in refused.stderr
        )
        done = subprocess.run(
            [*cli, "--control-token-file", str(token)], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.returncode == 0 and "invited" in done.stdout, done.stderr
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "control-token-from-a-file" not in err
