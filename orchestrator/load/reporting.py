"""The load report: per-call results per step, step aggregates, capacity, bottleneck, merge.

Pure: pydantic models (they cross process and machine boundaries as JSON) and functions over them.
Aggregates are always recomputed from per-call results and mergeable histograms -- never averaged
-- so :func:`merge_reports` of shard reports gives the same figures one big run would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callops.turn.traffic import Histogram, percentile

CallState = Literal["active", "setup", "failed"]
#: why a run ended: its plan ran out, a ramp step failed, a signal, a worker's error
StoppedBy = Literal["plan", "capacity", "signal", "error"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Percentiles(_Model):
    p50: float | None = None
    p99: float | None = None


class DirectionResult(_Model):
    """One direction of one call in one step."""

    sent: int = 0
    received: int = 0
    lost: int = 0
    loss_percent: float = 0.0
    reordered: int = 0
    duplicates: int = 0
    jitter_p50_ms: float | None = None
    jitter_p99_ms: float | None = None
    rtt_p50_ms: float | None = None
    rtt_p99_ms: float | None = None


class CallResult(_Model):
    """One simulated call (two allocations) during one step."""

    call: int
    state: CallState
    shard: int = 0
    worker: int = 0
    setup_ms: float | None = None
    a_to_b: DirectionResult = Field(default_factory=DirectionResult)
    b_to_a: DirectionResult = Field(default_factory=DirectionResult)
    refreshes: int = 0
    rebinds: int = 0
    skipped_frames: int = 0
    send_drops: int = 0
    error: str | None = None
    #: the TURN error code of a failed setup or refresh (486, 508, ...), 0 for a timeout
    error_code: int | None = None

    @property
    def loss_percent(self) -> float:
        return max(self.a_to_b.loss_percent, self.b_to_a.loss_percent)

    @property
    def jitter_p99_ms(self) -> float:
        return max(self.a_to_b.jitter_p99_ms or 0.0, self.b_to_a.jitter_p99_ms or 0.0)


class StepHistograms(_Model):
    """Sparse histogram counts (microseconds, see :class:`~callops.turn.traffic.Histogram`)."""

    jitter_us: dict[str, int] = Field(default_factory=dict)
    rtt_us: dict[str, int] = Field(default_factory=dict)
    delay_us: dict[str, int] = Field(default_factory=dict)


class StepPart(_Model):
    """What one worker measured in one step."""

    step: int
    shard: int = 0
    worker: int = 0
    calls: list[CallResult] = Field(default_factory=list)
    histograms: StepHistograms = Field(default_factory=StepHistograms)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    partial: bool = False


class StepReport(_Model):
    """One step of the run, all workers (and shards) together."""

    index: int
    calls: int
    active: int = 0
    failed: int = 0
    duration_s: float = 0.0
    packets_sent: int = 0
    packets_received: int = 0
    loss_percent: float = 0.0
    jitter_ms: Percentiles = Field(default_factory=Percentiles)
    rtt_ms: Percentiles = Field(default_factory=Percentiles)
    delay_ms: Percentiles = Field(default_factory=Percentiles)
    #: calls whose worst direction's loss / p99 jitter, as percentiles over the calls
    call_loss_percent_max: float = 0.0
    call_jitter_p99_ms_max: float = 0.0
    allocation_failures: dict[str, int] = Field(default_factory=dict)
    skipped_frames: int = 0
    send_drops: int = 0
    #: CPU used by the generator's workers, percent of one core (200 = two cores busy)
    generator_cpu_percent: float = 0.0
    #: the relay's CPU when it runs on this machine (``/proc``), percent of one core
    relay_cpu_percent: float | None = None
    #: the whole machine's CPU busy, percent of all cores (the machine is shared)
    machine_cpu_percent: float | None = None
    partial: bool = False
    ok: bool = True
    problems: list[str] = Field(default_factory=list)
    call_results: list[CallResult] = Field(default_factory=list)
    histograms: StepHistograms = Field(default_factory=StepHistograms)


class SampleCall(_Model):
    """One real aiortc call through the loaded relay."""

    step: int
    calls_running: int
    ok: bool
    outcome: str
    mos: float | None = None
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    loss_percent: float | None = None
    failure: str | None = None


class LoadReport(_Model):
    """``callops load --json``."""

    profile: str
    transport: Literal["udp", "tcp", "tls"]
    relay: str
    # -- the headline figures, from :func:`conclude` (a report built from steps starts without them)
    #: the most concurrent calls the plan reached
    calls: int = 0
    #: calls of the headline step that ran to its end without failing
    completed: int = 0
    loss_percent: float = 0.0
    jitter_ms: Percentiles = Field(default_factory=Percentiles)
    rtt_ms: Percentiles = Field(default_factory=Percentiles)
    #: the largest step where every call kept loss and p99 jitter under the thresholds
    capacity: int | None = None
    bottleneck: str | None = None
    #: the step the headline figures come from (the capacity step, else the last full step)
    headline_step: int | None = None
    steps: list[StepReport] = Field(default_factory=list)
    sample_calls: list[SampleCall] = Field(default_factory=list)
    max_loss_percent: float = 1.0
    max_jitter_p99_ms: float = 30.0
    shards: list[int] = Field(default_factory=lambda: [0])
    shard_count: int = 1
    workers: int = 1
    duration_s: float = 0.0
    stopped_by: StoppedBy = "plan"
    machine: dict[str, float] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    ok: bool = True


# -- aggregation ------------------------------------------------------------------------------------


def _hist(counts: Iterable[dict[str, int]]) -> Histogram:
    total = Histogram()
    for c in counts:
        if c:
            total.merge(Histogram.from_counts(c))
    return total


def _pct_ms(histogram: Histogram) -> Percentiles:
    p50, p99 = histogram.percentile(50), histogram.percentile(99)
    return Percentiles(
        p50=None if p50 is None else round(p50 / 1000, 3), p99=None if p99 is None else round(p99 / 1000, 3)
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _step_problems(
    results: Sequence[CallResult],
    *,
    max_loss_percent: float,
    max_jitter_p99_ms: float,
    partial: bool,
    expected: int,
) -> list[str]:
    """Why a step fails: failed calls, calls over a threshold, calls not up or not reported."""
    active = [r for r in results if r.state == "active"]
    failed = [r for r in results if r.state == "failed"]
    bad_loss = [r for r in active if r.loss_percent >= max_loss_percent]
    bad_jitter = [r for r in active if r.jitter_p99_ms >= max_jitter_p99_ms]
    not_up = [r for r in results if r.state == "setup"]
    problems: list[str] = []
    if failed:
        problems.append(f"{len(failed)} call(s) failed: {failed[0].error}")
    if bad_loss:
        worst = max(bad_loss, key=lambda r: r.loss_percent)
        problems.append(
            f"{len(bad_loss)} call(s) lost >= {max_loss_percent:g} % (worst: call {worst.call}, "
            f"{worst.loss_percent:g} %)"
        )
    if bad_jitter:
        worst = max(bad_jitter, key=lambda r: r.jitter_p99_ms)
        problems.append(
            f"{len(bad_jitter)} call(s) had p99 jitter >= {max_jitter_p99_ms:g} ms "
            f"(worst: call {worst.call}, {worst.jitter_p99_ms:g} ms)"
        )
    if not partial and not_up:
        problems.append(f"{len(not_up)} call(s) were still being set up at the end of the step")
    if not partial and len(results) < expected:
        problems.append(f"only {len(results)} of {expected} calls reported")
    return problems


def aggregate_step(
    index: int,
    planned_calls: int,
    results: Sequence[CallResult],
    histograms: Sequence[StepHistograms],
    *,
    duration_s: float,
    max_loss_percent: float,
    max_jitter_p99_ms: float,
    generator_cpu_percent: float = 0.0,
    relay_cpu_percent: float | None = None,
    machine_cpu_percent: float | None = None,
    partial: bool = False,
    expected_calls: int | None = None,
) -> StepReport:
    """One :class:`StepReport` from per-call results and histograms (of any number of workers/shards)."""
    jitter = _hist(h.jitter_us for h in histograms)
    rtt = _hist(h.rtt_us for h in histograms)
    delay = _hist(h.delay_us for h in histograms)
    active = [r for r in results if r.state == "active"]
    failed = [r for r in results if r.state == "failed"]
    sent = sum(r.a_to_b.sent + r.b_to_a.sent for r in results)
    lost = sum(r.a_to_b.lost + r.b_to_a.lost for r in results)
    problems = _step_problems(
        results,
        max_loss_percent=max_loss_percent,
        max_jitter_p99_ms=max_jitter_p99_ms,
        partial=partial,
        expected=planned_calls if expected_calls is None else expected_calls,
    )
    return StepReport(
        index=index,
        calls=planned_calls,
        active=len(active),
        failed=len(failed),
        duration_s=round(duration_s, 3),
        packets_sent=sent,
        packets_received=sum(r.a_to_b.received + r.b_to_a.received for r in results),
        loss_percent=round(100 * lost / sent, 3) if sent else 0.0,
        jitter_ms=_pct_ms(jitter),
        rtt_ms=_pct_ms(rtt),
        delay_ms=_pct_ms(delay),
        call_loss_percent_max=max((r.loss_percent for r in active), default=0.0),
        call_jitter_p99_ms_max=max((r.jitter_p99_ms for r in active), default=0.0),
        allocation_failures=dict(Counter(str(r.error_code) for r in failed if r.error_code is not None)),
        skipped_frames=sum(r.skipped_frames for r in results),
        send_drops=sum(r.send_drops for r in results),
        generator_cpu_percent=round(generator_cpu_percent, 1),
        relay_cpu_percent=_round(relay_cpu_percent, 1),
        machine_cpu_percent=_round(machine_cpu_percent, 1),
        partial=partial,
        ok=not problems,
        problems=problems,
        call_results=sorted(results, key=lambda r: r.call),
        histograms=StepHistograms(
            jitter_us=jitter.to_counts(), rtt_us=rtt.to_counts(), delay_us=delay.to_counts()
        ),
    )


def bottleneck(step: StepReport, *, generator_cores: float, relay_cores: float | None = None) -> str:
    """Name what limited a failing step, as far as callops can see it."""
    quota = {k: v for k, v in step.allocation_failures.items() if k in ("486", "508")}
    if quota:
        codes = ", ".join(f"{v}x {k}" for k, v in sorted(quota.items()))
        return f"relay allocation limit ({codes}: quota or relay ports exhausted)"
    if step.failed:
        return f"call failures ({step.problems[0] if step.problems else 'see the step'})"
    if step.skipped_frames or step.send_drops or step.generator_cpu_percent >= 90 * generator_cores:
        return (
            f"load generator (CPU {step.generator_cpu_percent:g} % of {generator_cores:g} core(s), "
            f"{step.skipped_frames} frames skipped, {step.send_drops} sends dropped) "
            "-- add workers or machines"
        )
    if step.relay_cpu_percent is not None and (
        step.relay_cpu_percent >= 85 * (relay_cores or 1) or step.relay_cpu_percent >= 90
    ):
        return f"relay CPU ({step.relay_cpu_percent:g} % of one core)"
    if step.machine_cpu_percent is not None and step.machine_cpu_percent >= 90:
        return f"this machine's CPU ({step.machine_cpu_percent:g} % busy; relay and generator share it)"
    if step.active < len(step.call_results):
        return "call setup: calls were not up by the end of the step (the relay answers slowly or not at all)"
    return "not visible to callops (loss or jitter without a CPU or allocation limit: check the network)"


def conclude(
    report: LoadReport, *, ramp: bool, generator_cores: float, relay_cores: float | None = None
) -> LoadReport:
    """Fill capacity, bottleneck and the headline figures from ``report.steps``."""
    full = [s for s in report.steps if not s.partial]
    passing = [s for s in full if s.ok]
    failing = [s for s in full if not s.ok]
    capacity: int | None = None
    if ramp:
        first_fail = failing[0].index if failing else None
        below = [s for s in passing if first_fail is None or s.index < first_fail]
        capacity = max((s.calls for s in below), default=None)
    elif full and full[0].ok:
        capacity = full[0].calls
    headline = None
    if capacity is not None:
        headline = max((s for s in passing if s.calls == capacity), key=lambda s: s.index)
    elif full:
        headline = full[-1]
    elif report.steps:
        headline = report.steps[-1]
    update: dict[str, object] = {
        "capacity": capacity,
        "calls": max((s.calls for s in report.steps), default=0),
        "ok": bool(full) and (not failing if not ramp else capacity is not None),
    }
    if failing:
        update["bottleneck"] = bottleneck(
            failing[0], generator_cores=generator_cores, relay_cores=relay_cores
        )
    if headline is not None:
        update.update(
            headline_step=headline.index,
            completed=headline.active,
            loss_percent=headline.loss_percent,
            jitter_ms=headline.jitter_ms,
            rtt_ms=headline.rtt_ms,
        )
    return report.model_copy(update=update)


def _merged_shards(reports: Sequence[LoadReport]) -> list[int]:
    """The shards of ``reports`` (of one run: same profile, transport and relay; each shard once)."""
    if not reports:
        raise ValueError("no reports to merge")
    first = reports[0]
    for other in reports[1:]:
        for field in ("profile", "transport", "relay"):
            if getattr(other, field) != getattr(first, field):
                raise ValueError(
                    f"reports differ in {field}: {getattr(first, field)!r} vs {getattr(other, field)!r}"
                )
    shards = sorted({s for r in reports for s in r.shards})
    if len(shards) != sum(len(r.shards) for r in reports):
        raise ValueError(f"a shard appears in more than one report: {[r.shards for r in reports]}")
    return shards


def _merge_step(
    index: int, parts: Sequence[StepReport], first: LoadReport, *, all_shards: bool
) -> StepReport:
    """Step ``index`` of every shard that reached it, figures recomputed from the pooled data."""
    planned = max(s.calls for s in parts)
    relays = [s.relay_cpu_percent for s in parts if s.relay_cpu_percent is not None]
    return aggregate_step(
        index,
        planned,
        [c for s in parts for c in s.call_results],
        [s.histograms for s in parts],
        duration_s=max(s.duration_s for s in parts),
        max_loss_percent=first.max_loss_percent,
        max_jitter_p99_ms=first.max_jitter_p99_ms,
        generator_cpu_percent=sum(s.generator_cpu_percent for s in parts),
        relay_cpu_percent=max(relays) if relays else None,
        partial=any(s.partial for s in parts),
        expected_calls=planned if all_shards else sum(len(s.call_results) for s in parts),
    )


def merge_reports(reports: Sequence[LoadReport]) -> LoadReport:
    """One report from shard reports: per step, calls and histograms pooled, figures recomputed."""
    shards = _merged_shards(reports)
    first = reports[0]
    indices = sorted({s.index for r in reports for s in r.steps})
    steps: list[StepReport] = []
    for index in indices:
        parts = [s for r in reports for s in r.steps if s.index == index]
        step = _merge_step(index, parts, first, all_shards=len(shards) == first.shard_count)
        if len(parts) < len(reports):
            step = step.model_copy(update={"partial": True})
        steps.append(step)
    merged = LoadReport(
        profile=first.profile,
        transport=first.transport,
        relay=first.relay,
        steps=steps,
        sample_calls=[c for r in reports for c in r.sample_calls],
        max_loss_percent=first.max_loss_percent,
        max_jitter_p99_ms=first.max_jitter_p99_ms,
        shards=shards,
        shard_count=first.shard_count,
        workers=sum(r.workers for r in reports),
        duration_s=max(r.duration_s for r in reports),
        stopped_by=first.stopped_by if all(r.stopped_by == first.stopped_by for r in reports) else "error",
        notes=[f"merged from {len(reports)} reports (shards {', '.join(map(str, shards))})"],
    )
    if len(shards) < first.shard_count:
        merged.notes.append(f"only {len(shards)} of {first.shard_count} shards present")
    ramp = len(indices) > 1
    return conclude(merged, ramp=ramp, generator_cores=float(sum(r.workers for r in reports)))


def call_percentile(results: Sequence[CallResult], q: float) -> float | None:
    """Percentile over calls of each call's worst-direction loss (for tables)."""
    return percentile((r.loss_percent for r in results), q)


__all__ = [
    "CallResult",
    "CallState",
    "DirectionResult",
    "LoadReport",
    "Percentiles",
    "SampleCall",
    "StepHistograms",
    "StepPart",
    "StepReport",
    "StoppedBy",
    "aggregate_step",
    "bottleneck",
    "call_percentile",
    "conclude",
    "merge_reports",
]
