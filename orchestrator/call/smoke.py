"""``callops smoke``: N calls, C at a time, a summary, a JSON report and JUnit XML.

The runner takes a factory ``make_call(index) -> CallReport`` so it does not care how a call is
made. A deadline or a cancellation (Ctrl-C) stops launching calls, cancels the running ones and
still returns the report of what finished (``interrupted`` says so).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from pydantic import BaseModel, Field

from callops.orchestrator.call.report import CallReport
from callops.orchestrator.junit import testcase, testsuite, xml_text

log = logging.getLogger(__name__)


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


class SmokeSummary(BaseModel):
    calls: int
    passed: int
    failed: int
    success_rate: float
    ice_connected_p50_ms: float | None = None
    ice_connected_p95_ms: float | None = None
    first_media_p50_ms: float | None = None
    first_media_p95_ms: float | None = None
    #: "local/remote" candidate types of the consumer's selected pair -> count
    pair_types: dict[str, int] = Field(default_factory=dict)
    outcomes: dict[str, int] = Field(default_factory=dict)
    wall_s: float = 0.0


class SmokeReport(BaseModel):
    """The ``--report`` document: every finished call and the summary."""

    ok: bool
    requested: int
    concurrency: int
    interrupted: bool = False
    summary: SmokeSummary
    calls: list[CallReport]


def _first_media(report: CallReport) -> float | None:
    ms = report.timeline_ms
    media = [ms[p] for p in ("first_audio", "first_video") if p in ms]
    return max(media) if media else None


def summarize(reports: Sequence[CallReport], wall_s: float = 0.0) -> SmokeSummary:
    passed = sum(1 for r in reports if r.ok)
    ice = [r.timeline_ms["ice_connected"] for r in reports if "ice_connected" in r.timeline_ms]
    media = [m for m in (_first_media(r) for r in reports) if m is not None]
    pairs = Counter(
        f"{r.selected_pair.local.type}/{r.selected_pair.remote.type}" for r in reports if r.selected_pair
    )
    return SmokeSummary(
        calls=len(reports),
        passed=passed,
        failed=len(reports) - passed,
        success_rate=round(passed / len(reports), 4) if reports else 0.0,
        ice_connected_p50_ms=nearest_rank(ice, 0.5),
        ice_connected_p95_ms=nearest_rank(ice, 0.95),
        first_media_p50_ms=nearest_rank(media, 0.5),
        first_media_p95_ms=nearest_rank(media, 0.95),
        pair_types=dict(pairs),
        outcomes=dict(Counter(r.outcome for r in reports)),
        wall_s=round(wall_s, 3),
    )


async def run_smoke(
    make_call: Callable[[int], Awaitable[CallReport]],
    *,
    calls: int,
    concurrency: int,
    deadline_s: float | None = None,
    on_done: Callable[[CallReport], None] | None = None,
) -> SmokeReport:
    """Run ``calls`` calls, at most ``concurrency`` at once; stop at ``deadline_s`` or cancellation."""
    started = time.monotonic()
    semaphore = asyncio.Semaphore(max(1, concurrency))
    finished: list[tuple[int, CallReport]] = []

    async def one(index: int) -> None:
        async with semaphore:
            report = await make_call(index)
        finished.append((index, report))
        if on_done is not None:
            on_done(report)

    tasks = [asyncio.create_task(one(i), name=f"smoke-call-{i}") for i in range(calls)]
    interrupted = False
    try:
        _, pending = await asyncio.wait(tasks, timeout=deadline_s)
        if pending:
            interrupted = True
            log.warning(
                "smoke deadline of %.0f s reached: %d calls not finished", deadline_s or 0, len(pending)
            )
    except asyncio.CancelledError:
        interrupted = True
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()  # handled: the report below is the answer to the stop
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("smoke call crashed: %r", task.exception())
    reports = [report for _, report in sorted(finished, key=lambda item: item[0])]
    summary = summarize(reports, time.monotonic() - started)
    return SmokeReport(
        ok=not interrupted and summary.failed == 0 and summary.calls == calls,
        requested=calls,
        concurrency=concurrency,
        interrupted=interrupted,
        summary=summary,
        calls=reports,
    )


def junit_xml(report: SmokeReport) -> str:
    """JUnit XML (one ``testcase`` per call) for CI systems."""
    suite = testsuite(
        "callops.smoke",
        tests=report.requested,
        failures=report.summary.failed,
        skipped=report.requested - report.summary.calls,
        seconds=report.summary.wall_s,
    )
    for index, call in enumerate(report.calls):
        duration = max(call.timeline_ms.values(), default=0.0) / 1000.0
        case = testcase(suite, f"callops.smoke.{call.scenario}", f"call-{index}", duration)
        if not call.ok:
            failure = ET.SubElement(case, "failure", message=call.failure or f"outcome {call.outcome}")
            failure.text = call.model_dump_json(indent=2)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = call.model_dump_json()
    for missing in range(report.summary.calls, report.requested):
        case = testcase(suite, "callops.smoke", f"unfinished-{missing}")
        ET.SubElement(case, "skipped", message="not finished (deadline or interrupt)")
    return xml_text(suite)


__all__ = ["SmokeReport", "SmokeSummary", "junit_xml", "nearest_rank", "run_smoke", "summarize"]
