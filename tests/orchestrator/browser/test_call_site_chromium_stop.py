"""``call-site --leg chromium`` stopped by a signal: the same partial report and exit code as the
aiortc leg (one stop path for every leg), and no browser left behind.

The emulator and the consumer side run as real processes inside an isolated namespace (only
``lo``); the test sends SIGTERM while the page waits for its invitation. Run under
``flock /tmp/callops-heavy.lock``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import TYPE_CHECKING

import pytest

from callops.orchestrator.call.report import CallReport
from callops.orchestrator.lab.netns import namespace_pids
from callops.testing import run_bounded

if TYPE_CHECKING:
    from tests.orchestrator.conftest import SiteKit

pytestmark = [pytest.mark.netns, pytest.mark.slow]


async def _stopped_consumer(kit: SiteKit, netns: str) -> tuple[int, str, str, list[int], list[int]]:
    prefix = ["ip", "netns", "exec", netns]
    serve = [*prefix, sys.executable, "-m", "callops", "emulator", "serve", "--port", "0"]
    emulator = await asyncio.create_subprocess_exec(
        *serve, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        line = await kit.line_with(emulator.stdout, "emulator on ", 30)
        base_url = line.split("emulator on ", 1)[1].split()[0]
        async with kit.call_sites("--emulator", base_url, "--json", prefix=prefix) as start:
            consumer = await start("consumer", "--leg", "chromium")
            await kit.line_with(consumer.stderr, '"event": "ready"', 60)  # the page is up and subscribed
            during = namespace_pids(netns)
            consumer.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(consumer.communicate(), 30)
            after = namespace_pids(netns)
        assert consumer.returncode is not None
        return consumer.returncode, out.decode(), err.decode(), during, after
    finally:
        await kit.reap(emulator)


def test_sigterm_of_a_chromium_consumer_side_prints_its_report_and_leaves_no_browser(
    browser_netns: str, site_kit: SiteKit
) -> None:
    code, out, err, during, after = run_bounded(_stopped_consumer(site_kit, browser_netns), 120)
    assert code == 143, err[-2000:]
    report = CallReport.model_validate(json.loads(out))
    assert report.ok is False and report.failure is not None
    assert report.failure.startswith("stopped by SIGTERM"), report.failure
    assert report.legs["consumer"].kind == "chromium"
    assert "callops: stopped by SIGTERM" in err
    # while it waited: the emulator, the consumer side and its browser; after: the emulator alone
    assert len(during) > 2
    assert len(after) == 1, after
