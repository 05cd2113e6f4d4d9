"""The call app's sessionErrors from a real Chromium consumer: no camera access, no call container.

``call-site --role consumer --leg chromium`` against ``call-site --role agent`` (aiortc), as in
``test_call_site_chromium.py``: everything inside one isolated network namespace (only ``lo``,
named ``callops-browser-labchr-*``), the emulator on 127.0.0.1. The page refuses the camera and
microphone (``BrowserSettings.grant_media=False``) or forgets the
``lp_cobrowse_callscreen_container`` div (``without_container=True``); the call app must raise the
sessionError, and the consumer's report and exit code must say the call failed.

The faults are ``call-site``'s hidden test options ``--deny-media`` and ``--without-container``;
everything else -- options, report, exit code -- is the command's own. Run under
``flock /tmp/callops-heavy.lock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from callops.orchestrator.browser.isolation import (
    browser_environment_problem,
    isolated_namespace,
    run_in_namespace,
)
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

pytestmark = [pytest.mark.netns, pytest.mark.slow]

#: the longest one side may take before the test fails instead of hanging
PROCESS_TIMEOUT = 60.0


@pytest.fixture
def labchr_netns() -> Iterator[str]:
    problem = browser_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    with isolated_namespace(f"labchr-{secrets.token_hex(3)}") as name:
        yield name


async def _ready(proc: asyncio.subprocess.Process, within: float) -> str:
    assert proc.stderr is not None
    async with asyncio.timeout(within):
        while True:
            line = await proc.stderr.readline()
            assert line, "the consumer side exited before it was ready"
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == "ready":
                    return str(event["conversation_id"])


async def _faulty_page_call(page: list[str]) -> tuple[dict[str, Any], int]:
    """(the consumer's report, its exit code); the agent side is stopped once the consumer is done."""
    async with Emulator(EmulatorConfig()) as emu:
        common = ["--emulator", emu.base_url, "--duration", "1", "--ice-timeout", "5", "--json"]
        procs: list[asyncio.subprocess.Process] = []
        try:
            consumer = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "callops", "call-site", "--role", "consumer", "--leg", "chromium",
                *page, *common,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            procs.append(consumer)
            conversation = await _ready(consumer, PROCESS_TIMEOUT)
            agent = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "callops", "call-site", "--role", "agent",
                "--conversation", conversation, "--loopback-only", *common,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            procs.append(agent)
            out, err = await asyncio.wait_for(consumer.communicate(), PROCESS_TIMEOUT)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        try:
            report = json.loads(out)
        except ValueError:
            raise AssertionError(f"consumer: no JSON report; stderr: {err.decode()[-2000:]}") from None
        assert consumer.returncode is not None
        return report, consumer.returncode


@pytest.mark.parametrize(
    ("page", "error_id", "detail"),
    [
        (["--deny-media"], "NO_CAMERA_ACCESS", "NotAllowedError"),
        (["--without-container"], "UNABLE_TO_CONNECT", "lp_cobrowse_callscreen_container"),
    ],
    ids=["no-camera-access", "no-call-container"],
)
def test_a_page_fault_is_a_session_error_and_a_failed_call(
    labchr_netns: str, page: list[str], error_id: str, detail: str
) -> None:
    report, exit_code = run_in_namespace(labchr_netns, lambda: _faulty_page_call(page), 120)
    seen = (report["failure"], report["errors"], report["legs"]["consumer"]["console"])
    assert exit_code == 1, seen
    assert not report["ok"] and report["outcome"] != "connected", seen
    assert (report["scenario"], report["expected_outcome"]) == ("accept", "connected")
    assert report["legs"]["consumer"]["kind"] == "chromium"
    errors = [e for e in report["errors"] if e["id"] == error_id]
    assert errors and detail in errors[0]["msg"], seen
    assert error_id in report["failure"], seen
    # the page got as far as accepting the invitation; no media, no connection
    timeline = report["timeline_ms"]
    assert "accepted" in timeline and "dtls_connected" not in timeline and "first_audio" not in timeline
    assert report["selected_pair"] is None
