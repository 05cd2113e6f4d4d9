"""How a load report reads: the progress table, the summary, JUnit XML and the PNG chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from callops.errors import EnvironmentProblem, UsageError
from callops.orchestrator.load.reporting import LoadReport, StepReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TABLE_HEADER = (
    f"{'step':>4} {'calls':>6} {'up':>6} {'failed':>6} {'loss%':>7} {'jit p50':>8} {'jit p99':>8} "
    f"{'rtt p50':>8} {'rtt p99':>8} {'gen cpu%':>8} {'relay%':>7} {'host%':>6}  verdict"
)


def _num(value: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def step_row(step: StepReport) -> str:
    """One progress line per step (jitter and RTT in milliseconds)."""
    verdict = "ok" if step.ok else "FAIL: " + "; ".join(step.problems)
    if step.partial:
        verdict = "partial (stopped) " + ("" if step.ok else verdict)
    return (
        f"{step.index:>4} {step.calls:>6} {step.active:>6} {step.failed:>6} {step.loss_percent:>7.3f} "
        f"{_num(step.jitter_ms.p50, 8)} {_num(step.jitter_ms.p99, 8)} {_num(step.rtt_ms.p50, 8)} "
        f"{_num(step.rtt_ms.p99, 8)} {step.generator_cpu_percent:>8.1f} {_num(step.relay_cpu_percent, 7, 1)} "
        f"{_num(step.machine_cpu_percent, 6, 0)}  {verdict}"
    )


def summary_lines(report: LoadReport) -> list[str]:
    """The verdict under the table."""
    lines = []
    if report.capacity is not None:
        lines.append(
            f"capacity: {report.capacity} concurrent {report.profile} calls over {report.transport.upper()} "
            f"(every call: loss < {report.max_loss_percent:g} %, "
            f"p99 jitter < {report.max_jitter_p99_ms:g} ms)"
        )
    else:
        lines.append(
            f"capacity: none -- no step kept every call under loss {report.max_loss_percent:g} % "
            f"and p99 jitter {report.max_jitter_p99_ms:g} ms"
        )
    if report.bottleneck:
        lines.append(f"first bottleneck: {report.bottleneck}")
    mos = [s.mos for s in report.sample_calls if s.mos is not None]
    if report.sample_calls:
        ok = sum(1 for s in report.sample_calls if s.ok)
        text = f"sampled calls: {ok}/{len(report.sample_calls)} ok"
        if mos:
            text += f", MOS min {min(mos):.2f} / median {sorted(mos)[len(mos) // 2]:.2f}"
        lines.append(text)
    if report.stopped_by != "plan":
        lines.append(f"stopped by: {report.stopped_by}")
    lines.extend(f"note: {n}" for n in report.notes)
    return lines


def junit_xml(report: LoadReport) -> str:
    """JUnit XML: one ``testcase`` per step (a failing step is a failure naming its problems)."""
    suite = ET.Element(
        "testsuite",
        name=f"callops.load.{report.profile}.{report.transport}",
        tests=str(len(report.steps)),
        failures=str(sum(1 for s in report.steps if not s.ok and not s.partial)),
        skipped=str(sum(1 for s in report.steps if s.partial)),
        time=f"{report.duration_s:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("capacity", report.capacity),
        ("bottleneck", report.bottleneck),
        ("relay", report.relay),
    ):
        ET.SubElement(props, "property", name=name, value="" if value is None else str(value))
    for step in report.steps:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"callops.load.{report.profile}",
            name=f"step-{step.index}-{step.calls}-calls",
            time=f"{step.duration_s:.3f}",
        )
        if step.partial:
            ET.SubElement(case, "skipped", message="step cut short (stopped)")
        elif not step.ok:
            failure = ET.SubElement(case, "failure", message="; ".join(step.problems))
            failure.text = step_row(step)
        else:
            ET.SubElement(case, "system-out").text = step_row(step)
    for index, sample in enumerate(report.sample_calls):
        case = ET.SubElement(
            suite, "testcase", classname="callops.load.sample", name=f"sample-{index}-step-{sample.step}"
        )
        if not sample.ok:
            ET.SubElement(case, "failure", message=sample.failure or sample.outcome)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


#: one line of a chart panel: values per step, matplotlib format, alpha (None: opaque), label
_Line = tuple[list[float], str, float | None, str]


def _plot_against_limit(
    axis: Axes,
    calls: list[int],
    lines: list[_Line],
    *,
    color: str,
    limit: tuple[float, str, str],
    ceiling: float,
    ylabel: str,
) -> None:
    """``lines`` in ``color`` with the pass/fail ``limit`` (value, line style, label) across them."""
    for values, fmt, alpha, label in lines:
        axis.plot(calls, values, fmt, color=color, alpha=alpha, label=label)
    value, style, label = limit
    axis.axhline(value, color=color, linestyle=style, linewidth=1, label=label)
    axis.set_ylim(0, ceiling)
    axis.set_ylabel(ylabel, color=color)


def _loss_panel(axis: Axes, report: LoadReport, steps: list[StepReport], calls: list[int]) -> None:
    worst = [s.call_loss_percent_max for s in steps]
    overall = [s.loss_percent for s in steps]
    limit = report.max_loss_percent
    _plot_against_limit(
        axis,
        calls,
        [(overall, "o-", None, "loss % (all packets)"), (worst, "x--", 0.5, "loss % (worst call)")],
        color="tab:red",
        limit=(limit, ":", f"loss limit {limit:g} %"),
        ceiling=max(*worst, *overall, 0.0, limit) * 1.25,
        ylabel="loss %",
    )


def _jitter_panel(axis: Axes, report: LoadReport, steps: list[StepReport], calls: list[int]) -> None:
    worst = [s.call_jitter_p99_ms_max for s in steps]
    limit = report.max_jitter_p99_ms
    _plot_against_limit(
        axis,
        calls,
        [
            ([s.jitter_ms.p99 or 0.0 for s in steps], "s-", None, "jitter p99 ms"),
            (worst, "+--", 0.5, "jitter p99 ms (worst call)"),
        ],
        color="tab:blue",
        limit=(limit, "-.", f"jitter limit {limit:g} ms"),
        ceiling=max(*worst, 0.0, limit) * 1.4,
        ylabel="jitter p99 ms",
    )


def _cpu_panel(axis: Axes, report: LoadReport, steps: list[StepReport], calls: list[int]) -> None:
    """Generator CPU, and the relay's and the machine's when they were measured."""
    axis.plot(
        calls, [s.generator_cpu_percent for s in steps], "o-", color="tab:green", label="generator CPU %"
    )
    if any(s.relay_cpu_percent is not None for s in steps):
        relay = [s.relay_cpu_percent or 0.0 for s in steps]
        axis.plot(calls, relay, "s-", color="tab:purple", label="relay CPU %")
    if any(s.machine_cpu_percent is not None for s in steps):
        cores = report.machine.get("cpus", 1.0)
        machine = [(s.machine_cpu_percent or 0.0) * cores for s in steps]
        axis.plot(calls, machine, ":", color="grey", label=f"whole machine ({cores:g} cores, all processes)")
    axis.set_ylabel("CPU % of one core")
    axis.set_xlabel(f"concurrent {report.profile} calls ({report.transport.upper()})")
    axis.legend(loc="upper left", fontsize="small")


def _chart_title(report: LoadReport) -> str:
    title = f"callops load: {report.relay}"
    title += f" -- capacity {report.capacity} calls" if report.capacity is not None else " -- no passing step"
    mos = [s.mos for s in report.sample_calls if s.mos is not None]
    if mos:
        title += f", sampled MOS {min(mos):.1f}"
    return title


def write_chart(report: LoadReport, path: Path) -> None:
    """A PNG of calls vs loss, p99 jitter and CPU, one point per step (matplotlib, Agg backend)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EnvironmentProblem(
            "the chart needs matplotlib", hint="pip install 'callops[load]' (or leave out --chart)"
        ) from None
    steps = [s for s in report.steps if not s.partial] or report.steps
    calls = [s.calls for s in steps]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, constrained_layout=True)
    _loss_panel(top, report, steps, calls)
    right = top.twinx()
    _jitter_panel(right, report, steps, calls)
    lines = top.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    top.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")
    _cpu_panel(bottom, report, steps, calls)
    for axis in (top, bottom):
        axis.grid(True, alpha=0.3)
        if report.capacity is not None:
            axis.axvline(report.capacity, color="black", linestyle="--", linewidth=1)
    figure.suptitle(_chart_title(report), fontsize="medium")
    try:
        figure.savefig(path, dpi=100)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


__all__ = ["TABLE_HEADER", "junit_xml", "step_row", "summary_lines", "write_chart"]
