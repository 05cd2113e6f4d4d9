"""Step aggregation, capacity, bottleneck, merge, JUnit and the chart (pure, no relay)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from callops.orchestrator.load.output import junit_xml, step_row, summary_lines, write_chart
from callops.orchestrator.load.reporting import (
    CallResult,
    DirectionResult,
    LoadReport,
    Percentiles,
    StepHistograms,
    StepReport,
    aggregate_step,
    bottleneck,
    conclude,
    merge_reports,
)
from callops.turn.traffic import Histogram


def _call(
    cid: int, *, lost: int = 0, jitter_p99: float = 1.0, state: str = "active", code: int | None = None
) -> CallResult:
    direction = DirectionResult(
        sent=100, received=100 - lost, lost=lost, loss_percent=float(lost), jitter_p99_ms=jitter_p99
    )
    return CallResult(
        call=cid,
        state=state,  # type: ignore[arg-type]
        a_to_b=direction,
        b_to_a=DirectionResult(sent=100, received=100),
        error=None if state != "failed" else f"Allocate failed: {code}",
        error_code=code,
    )


def _hist(values: list[int]) -> StepHistograms:
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    return StepHistograms(jitter_us=histogram.to_counts(), rtt_us=histogram.to_counts())


def _step(
    index: int, calls: list[CallResult], hist: list[int], planned: int | None = None, **kwargs: Any
) -> StepReport:
    return aggregate_step(
        index,
        planned or len(calls),
        calls,
        [_hist(hist)],
        duration_s=10,
        max_loss_percent=1.0,
        max_jitter_p99_ms=30.0,
        expected_calls=len(calls),
        **kwargs,
    )


def _report(steps: list[StepReport], shards: list[int] | None = None, shard_count: int = 1) -> LoadReport:
    return LoadReport(
        profile="voice",
        transport="udp",
        relay="turn:127.0.0.1:3478",
        calls=0,
        completed=0,
        loss_percent=0,
        jitter_ms=Percentiles(),
        rtt_ms=Percentiles(),
        capacity=None,
        steps=steps,
        shards=shards or [0],
        shard_count=shard_count,
    )


def test_a_step_fails_when_one_call_degrades() -> None:
    good = _step(0, [_call(1), _call(2)], [1000, 2000])
    assert good.ok and good.loss_percent == 0 and good.jitter_ms.p99 is not None
    lossy = _step(1, [_call(1), _call(2, lost=2)], [1000])
    assert not lossy.ok and lossy.problems == ["1 call(s) lost >= 1 % (worst: call 2, 2 %)"]
    assert lossy.loss_percent == 0.5  # 2 of 400 packets
    jittery = _step(2, [_call(1, jitter_p99=45.0)], [1000])
    assert not jittery.ok and "p99 jitter >= 30 ms" in jittery.problems[0]


def test_capacity_is_the_largest_step_before_the_first_failure() -> None:
    steps = [
        _step(0, [_call(i) for i in range(10)], [1000]),
        _step(1, [_call(i) for i in range(20)], [1000]),
        _step(2, [_call(i, lost=5 if i == 3 else 0) for i in range(30)], [1000]),
    ]
    report = conclude(_report(steps), ramp=True, generator_cores=2)
    assert (
        report.capacity == 20 and report.headline_step == 1 and report.completed == 20 and report.calls == 30
    )
    assert report.bottleneck is not None and report.ok
    assert "capacity: 20 concurrent voice calls over UDP" in summary_lines(report)[0]


def test_no_passing_step_means_no_capacity() -> None:
    report = conclude(_report([_step(0, [_call(1, lost=50)], [1000])]), ramp=False, generator_cores=1)
    assert report.capacity is None and not report.ok
    assert summary_lines(report)[0].startswith("capacity: none")


def test_bottleneck_names_what_callops_can_see() -> None:
    quota = _step(0, [_call(1), _call(2, state="failed", code=486), _call(3, state="failed", code=508)], [1])
    assert bottleneck(quota, generator_cores=2).startswith("relay allocation limit (1x 486, 1x 508")
    generator = _step(0, [_call(1, lost=5)], [1], generator_cpu_percent=195.0)
    assert bottleneck(generator, generator_cores=2).startswith("load generator (CPU 195 % of 2 core(s)")
    relay = _step(0, [_call(1, lost=5)], [1], generator_cpu_percent=20.0, relay_cpu_percent=98.0)
    assert bottleneck(relay, generator_cores=2, relay_cores=1) == "relay CPU (98 % of one core)"
    unknown = _step(0, [_call(1, lost=5)], [1], generator_cpu_percent=5.0, relay_cpu_percent=5.0)
    assert bottleneck(unknown, generator_cores=2).startswith("not visible to callops")


def test_merge_recomputes_percentiles_from_pooled_data() -> None:
    low, high = list(range(100, 1100, 10)), [50_000] * 3
    # a shard's step names the plan's 4 calls and reports its own 2
    shard0 = _report([_step(0, [_call(1), _call(3)], low, planned=4)], shards=[0], shard_count=2)
    shard1 = _report([_step(0, [_call(2), _call(4)], high, planned=4)], shards=[1], shard_count=2)
    merged = merge_reports([shard0, shard1])
    whole = _step(0, [_call(i) for i in (1, 2, 3, 4)], low + high)
    assert merged.steps[0].jitter_ms == whole.jitter_ms  # p99 lands in the high shard's values
    assert merged.steps[0].jitter_ms.p99 is not None and merged.steps[0].jitter_ms.p99 > 40
    assert [c.call for c in merged.steps[0].call_results] == [1, 2, 3, 4]
    assert merged.capacity == 4 and merged.shards == [0, 1]


def test_merge_refuses_reports_of_different_runs() -> None:
    a = _report([_step(0, [_call(1)], [1])])
    b = a.model_copy(update={"profile": "video", "shards": [1]})
    try:
        merge_reports([a, b])
    except ValueError as exc:
        assert str(exc) == "reports differ in profile: 'voice' vs 'video'"
    else:
        raise AssertionError("merged reports of different profiles")


def test_junit_has_a_case_per_step_and_a_failure_for_the_bad_one() -> None:
    report = conclude(
        _report([_step(0, [_call(1)], [1000]), _step(1, [_call(1), _call(2, lost=9)], [1000])]),
        ramp=True,
        generator_cores=1,
    )
    suite = ET.fromstring(junit_xml(report))
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.findall("testcase")[1].find("failure")
    assert failure is not None and "lost >= 1 %" in (failure.get("message") or "")
    assert "FAIL" in step_row(report.steps[1])


def test_chart_is_a_png(tmp_path: Path) -> None:
    steps = [
        _step(
            i,
            [_call(c, lost=3 if i == 2 and c == 1 else 0) for c in range(10 * (i + 1))],
            [1000 * (i + 1)],
            generator_cpu_percent=10.0 * i,
            relay_cpu_percent=20.0 * i,
            machine_cpu_percent=30.0,
        )
        for i in range(3)
    ]
    report = conclude(_report(steps), ramp=True, generator_cores=2)
    path = tmp_path / "load.png"
    write_chart(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
