"""Stopping leaves nothing behind (docs/call.md "Signals"): real ``callops`` processes, real signals.

SIGTERM and SIGHUP stop ``call`` and ``smoke`` like Ctrl-C: the report (and JUnit) is written with
what is known, the embedded coturn is stopped and its private directory removed, the exit code is
128 + the signal. ``kill -9`` gives callops no chance to clean up: the kernel kills the embedded
coturn with it (``PR_SET_PDEATHSIG``). Run with ``flock /tmp/callops-heavy.lock``.
"""

from __future__ import annotations

import json
import os
import signal
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.call.embedded import available
from callops.orchestrator.call.report import CallReport

pytestmark = pytest.mark.skipif(not available(), reason="coturn's turnserver is not installed")

MEDIA_MARK = "media decoded both ways"
#: the issue's bound: no turnserver left this long after callops was killed
GONE_BOUND_S = 2.0


def _relay_of(child: Any, processes: Any) -> tuple[int, Path]:
    """The embedded coturn of ``child``: its pid and its private directory (from its command line)."""
    [pid] = processes.children_named(child.pid, "turnserver")
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    config = Path(argv[argv.index(b"-c") + 1].decode())
    assert config.parent.name.startswith("callops-turn-") and config.parent.is_dir()
    return pid, config.parent


@pytest.mark.parametrize(
    "command",
    [("call", "--duration", "60"), ("smoke", "--calls", "50", "--duration", "2")],
    ids=["call", "smoke"],
)
def test_kill_9_of_callops_leaves_no_turnserver_running(
    command: tuple[str, ...], callops_cli: Callable[..., Any], processes: Any
) -> None:
    child = callops_cli("-v", *command)
    child.err.wait_for(MEDIA_MARK, 60)
    relay, _ = _relay_of(child, processes)
    os.kill(child.pid, signal.SIGKILL)
    assert processes.wait_gone(relay, GONE_BOUND_S), f"turnserver {relay} still {processes.state(relay)}"
    assert child.wait(timeout=10) == -signal.SIGKILL


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["TERM", "HUP"]
)
def test_a_stop_signal_mid_call_prints_the_report_stops_coturn_and_removes_its_directory(
    signum: signal.Signals, code: int, callops_cli: Callable[..., Any], processes: Any
) -> None:
    child = callops_cli("-v", "call", "--duration", "60", "--json")
    child.err.wait_for(MEDIA_MARK, 60)
    relay, workdir = _relay_of(child, processes)
    os.kill(child.pid, signum)
    assert child.wait(timeout=20) == code, child.err.text()
    report = CallReport.model_validate_json(child.out.text())
    assert report.ok is False and report.outcome == "connected"
    assert report.failure is not None and report.failure.startswith(f"stopped by {signum.name}")
    assert "first_audio" in report.timeline_ms
    assert [m.packets_received > 0 for m in report.stats.media] == [True, True]
    assert f"callops: stopped by {signum.name}" in child.err.text()
    assert processes.wait_gone(relay, GONE_BOUND_S)
    assert not workdir.exists()


def test_sigterm_of_smoke_writes_the_report_and_junit_of_what_finished_and_exits_143(
    tmp_path: Path, callops_cli: Callable[..., Any], processes: Any
) -> None:
    report_path, junit_path = tmp_path / "smoke.json", tmp_path / "smoke.xml"
    child = callops_cli(
        "-v", "smoke", "--calls", "50", "--concurrency", "1", "--duration", "0.2",
        "--report", str(report_path), "--junit", str(junit_path),
    )  # fmt: skip
    child.err.wait_for(MEDIA_MARK, 60, count=2)  # the first call finished, the second has media
    relay, workdir = _relay_of(child, processes)
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait(timeout=30) == 143, child.err.text()
    report = json.loads(report_path.read_text())
    assert report["interrupted"] is True and report["ok"] is False
    assert report["summary"]["calls"] >= 1 and report["summary"]["passed"] >= 1
    suite = ET.fromstring(junit_path.read_text())
    assert int(suite.get("tests") or 0) == 50
    assert int(suite.get("skipped") or 0) == 50 - report["summary"]["calls"]
    assert processes.wait_gone(relay, GONE_BOUND_S)
    assert not workdir.exists()
