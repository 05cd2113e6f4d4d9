"""``callops call`` and ``callops smoke`` end to end (in-process emulator, loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.call.embedded import EmbeddedTurn
from callops.orchestrator.cli import main
from callops.turn.coturn import free_port


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out, err


def _smoke(tmp_path: Path, *args: str) -> list[str]:
    """``smoke --calls 3 ARGS`` writing its report and JUnit file into ``tmp_path``."""
    report = ["--report", str(tmp_path / "smoke.json"), "--junit", str(tmp_path / "smoke.xml")]
    return ["smoke", "--calls", "3", *args, *report]


def _smoke_files(tmp_path: Path) -> tuple[dict[str, Any], ET.Element]:
    """The JSON report and the JUnit test suite a :func:`_smoke` run wrote."""
    return json.loads((tmp_path / "smoke.json").read_text()), ET.parse(tmp_path / "smoke.xml").getroot()


def test_call_json_prints_one_report_with_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["call", "--json", "--duration", "0.2", "--ice-timeout", "20"], capsys)
    assert code == 0
    report = json.loads(out)
    for key in ("ok", "scenario", "mode", "outcome", "timeline_ms", "selected_pair", "errors", "stats"):
        assert key in report
    assert report["ok"] is True
    assert report["outcome"] == "connected"
    assert set(report["selected_pair"]) >= {"local", "remote"}
    assert {"type", "protocol"} <= set(report["selected_pair"]["local"])


def test_call_scenario_decline_succeeds_when_the_call_is_declined(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["call", "--json", "--scenario", "decline"], capsys)
    assert code == 0
    assert json.loads(out)["outcome"] == "declined"


def test_call_text_output_shows_the_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["call", "--duration", "0.2"], capsys)
    assert code == 0
    assert "ice_connected" in out
    assert "OK" in out


def test_turn_without_credentials_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLOPS_TURN_SECRET", raising=False)
    monkeypatch.delenv("CALLOPS_TURN_PASSWORD", raising=False)
    code, _, err = _run(["call", "--turn", "turn:127.0.0.1:3478"], capsys)
    assert code == 2
    assert "needs credentials" in err
    assert "Traceback" not in err


def test_secret_file_is_read_and_never_printed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("a-very-secret-turn-secret\n")
    port = free_port()
    code, out, err = _run(
        [
            "call",
            "--json",
            "--turn",
            f"turn:127.0.0.1:{port}?transport=tcp",
            "--secret-file",
            str(secret_file),
            "--scenario",
            "ice-fail",
            "--ice-timeout",
            "1",
        ],
        capsys,
    )
    assert "a-very-secret-turn-secret" not in out + err
    assert json.loads(out)["errors"][0]["id"] == "UNABLE_TO_CONNECT"
    assert code == 0


def test_smoke_runs_n_calls_and_writes_json_and_junit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = _run(_smoke(tmp_path, "--concurrency", "2", "--duration", "0.2"), capsys)
    assert code == 0
    report, suite = _smoke_files(tmp_path)
    assert report["summary"]["calls"] == 3
    assert report["summary"]["success_rate"] == 1.0
    assert len(report["calls"]) == 3
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "0"


def test_smoke_exits_1_and_still_reports_when_calls_fail(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report_path = tmp_path / "smoke.json"
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, _ = _run(
        [
            "smoke",
            "--calls",
            "2",
            "--emulator",
            dead,
            "--turn",
            "turn:127.0.0.1:1?transport=tcp",
            "--user",
            "u",
            "--password-file",
            str(_password(tmp_path)),
            "--report",
            str(report_path),
        ],
        capsys,
    )
    assert code == 1
    report = json.loads(report_path.read_text())
    assert report["summary"]["failed"] == 2
    assert all(call["outcome"] == "failed" for call in report["calls"])


def _password(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("pw\n")
    return path


def test_bad_option_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _run(["smoke", "--calls", "0"], capsys)
    assert code == 2


def test_importing_the_command_module_does_not_import_aiortc() -> None:
    probe = "import sys, callops.orchestrator.cli.call; print('aiortc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.coturn
def test_call_through_a_given_turn_with_a_secret_file_reports_a_relay_pair(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, local_turn: EmbeddedTurn
) -> None:
    secret_file = tmp_path / "turn-secret"
    secret_file.write_text(local_turn.secret.reveal() + "\n")
    code, out, err = _run(
        [
            "call",
            "--json",
            "--duration",
            "0.2",
            "--ice-timeout",
            "20",
            "--policy",
            "relay",
            "--turn",
            local_turn.url,
            "--secret-file",
            str(secret_file),
        ],
        capsys,
    )
    report = json.loads(out)
    assert code == 0, report["failure"]
    assert report["selected_pair"]["local"]["type"] == "relay"
    assert report["selected_pair"]["remote"]["type"] == "relay"
    assert report["ice_servers"] == [local_turn.url]
    assert local_turn.secret.reveal() not in out + err


@pytest.mark.coturn
def test_call_with_long_term_user_and_password_file_connects_and_a_wrong_password_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from callops.orchestrator.call.embedded import available
    from callops.secret import Secret
    from callops.turn.coturn import start_loopback_coturn

    if not available():
        pytest.skip("coturn's turnserver is not installed")
    (tmp_path / "turn").mkdir()
    password, wrong = tmp_path / "password", tmp_path / "wrong"
    password.write_text("alice-long-term-pw\n")
    wrong.write_text("not-her-password\n")
    server = start_loopback_coturn(
        tmp_path / "turn",
        secret=Secret("unused-rest-secret", "test"),
        users=[("alice", "alice-long-term-pw")],
        extra=["allow-loopback-peers"],
        rfc5780=False,
    )
    try:
        base = ["call", "--json", "--duration", "0.2", "--policy", "relay", "--turn", server.turn_udp]
        code, out, err = _run(
            [*base, "--ice-timeout", "20", "--user", "alice", "--password-file", str(password)], capsys
        )
        report = json.loads(out)
        assert code == 0, report["failure"]
        assert report["selected_pair"]["local"]["type"] == "relay"
        code, out, err = _run(
            [*base, "--ice-timeout", "2", "--user", "alice", "--password-file", str(wrong)], capsys
        )
        report = json.loads(out)
        assert code == 1
        assert [e["id"] for e in report["errors"]] == ["UNABLE_TO_CONNECT"]
        assert "credentials rejected" in report["errors"][0]["msg"]
        assert "alice-long-term-pw" not in out + err
        assert "Traceback" not in err
    finally:
        server.process.stop()


def test_smoke_deadline_cuts_the_run_writes_the_report_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = _run(_smoke(tmp_path, "--concurrency", "1", "--duration", "30", "--deadline", "1"), capsys)
    assert code == 1
    report, suite = _smoke_files(tmp_path)
    assert report["interrupted"] is True
    assert report["ok"] is False
    assert report["requested"] == 3
    assert suite.get("tests") == "3"
    assert suite.get("skipped") == str(3 - report["summary"]["calls"])


def _child_pids(pid: int) -> set[int]:
    """Live child processes of ``pid`` (zombies excluded)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


@pytest.mark.coturn
def test_smoke_ctrl_c_writes_the_report_exits_130_and_stops_coturn(tmp_path: Path) -> None:
    import contextlib
    import signal
    import time

    from callops.orchestrator.call.embedded import available

    if not available():
        pytest.skip("coturn's turnserver is not installed")
    args = _smoke(tmp_path, "--duration", "60")
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from callops.orchestrator.cli import main\n"
        f"main({args!r})\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # the embedded coturn is started from inside the event loop: once it exists, Ctrl-C lands there
        deadline = time.monotonic() + 60
        while not _child_pids(child.pid) and child.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.05)
        turnservers = _child_pids(child.pid)
        assert turnservers, "no embedded coturn was started"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, err  # stopped by SIGINT: 128 + 2, the report still written
    assert "Traceback" not in err and "callops: stopped by SIGINT" in err
    report, suite = _smoke_files(tmp_path)
    assert report["interrupted"] is True
    assert report["requested"] == 3
    assert suite.get("tests") == "3"
    assert all(not Path(f"/proc/{pid}").exists() or _is_zombie(pid) for pid in turnservers)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
