"""The smoke runner: concurrency bound, summary, deadline, JUnit XML."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

from callops.orchestrator.call.report import CallReport, CandidateInfo, SelectedPair
from callops.orchestrator.call.smoke import junit_xml, nearest_rank, run_smoke, summarize
from callops.testing import run_bounded


def _report(ok: bool, ice: float, audio: float) -> CallReport:
    pair = SelectedPair(
        local=CandidateInfo(type="relay", relay_protocol="udp"), remote=CandidateInfo(type="relay")
    )
    return CallReport(
        ok=ok,
        scenario="accept",
        mode="VOICE_CALL",
        outcome="connected" if ok else "failed",
        timeline_ms={"invited": 0.0, "ice_connected": ice, "first_audio": audio},
        selected_pair=pair if ok else None,
        failure=None if ok else "no media",
    )


def test_nearest_rank_percentiles() -> None:
    assert nearest_rank([], 0.5) is None
    assert nearest_rank([3, 1, 2], 0.5) == 2
    assert nearest_rank(list(range(1, 101)), 0.95) == 95


def test_summary_counts_successes_pairs_and_percentiles() -> None:
    summary = summarize([_report(True, 10, 20), _report(True, 30, 40), _report(False, 50, 60)])
    assert (summary.calls, summary.passed, summary.failed) == (3, 2, 1)
    assert summary.success_rate == round(2 / 3, 4)
    assert summary.pair_types == {"relay/relay": 2}
    assert summary.ice_connected_p50_ms == 30
    assert summary.first_media_p95_ms == 60


def test_runner_never_exceeds_the_concurrency() -> None:
    async def body() -> None:
        running = 0
        peak = 0

        async def make(index: int) -> CallReport:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            return _report(True, index, index)

        report = await run_smoke(make, calls=12, concurrency=3)
        assert peak == 3
        assert report.ok
        assert [c.timeline_ms["ice_connected"] for c in report.calls] == list(range(12))

    run_bounded(body(), 30)


def test_deadline_still_reports_what_finished() -> None:
    async def body() -> None:
        gate = asyncio.Event()

        async def make(index: int) -> CallReport:
            if index >= 2:
                await gate.wait()  # never set: these calls hang until the deadline
            return _report(True, 1, 2)

        report = await run_smoke(make, calls=5, concurrency=5, deadline_s=0.5)
        assert report.interrupted
        assert not report.ok
        assert report.summary.calls == 2

    run_bounded(body(), 30)


def test_junit_has_one_testcase_per_call_and_failures_marked() -> None:
    async def body() -> None:
        async def make(index: int) -> CallReport:
            return _report(index != 1, 1, 2)

        report = await run_smoke(make, calls=3, concurrency=2)
        root = ET.fromstring(junit_xml(report).split("?>", 1)[1])
        assert root.get("tests") == "3"
        assert root.get("failures") == "1"
        cases = root.findall("testcase")
        assert len(cases) == 3
        assert cases[1].find("failure") is not None

    run_bounded(body(), 30)
