"""``callops load`` and ``callops load merge``: call-shaped load against one relay, and shard merging.

Thin commands: options are parsed here, the work is in :mod:`callops.orchestrator.load`. Only
against relays you operate.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict, Unpack

import click

from callops.orchestrator.cli.options import turn_credential_options, turn_secrets

if TYPE_CHECKING:
    from callops.orchestrator.load.plan import LoadPlan
    from callops.orchestrator.load.reporting import LoadReport
    from callops.orchestrator.load.runner import SampleCallAuth
    from callops.secret import Secret

#: the TURN REST user name of load allocations
LOAD_USER = "callops-load"


def _write(path: Path, text: str) -> None:
    from callops.errors import UsageError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _outputs(
    report: LoadReport, *, as_json: bool, report_path: Path | None, junit: Path | None, chart: Path | None
) -> None:
    from callops.orchestrator.load.output import junit_xml, summary_lines, write_chart

    text = report.model_dump_json(indent=2) + "\n"
    if report_path is not None:
        _write(report_path, text)
    if junit is not None:
        _write(junit, junit_xml(report))
    if chart is not None:
        write_chart(report, chart)
    if as_json:
        click.echo(text, nl=False)
    else:
        for line in summary_lines(report):
            click.echo(line)


class _LoadOptions(TypedDict):
    """What click passes to :func:`load` (one key per option)."""

    turn_url: str | None
    secret_file: str | None
    user: str | None
    password_file: str | None
    ca_file: str | None
    insecure: bool
    profile: Literal["voice", "video"]
    video_bitrate: int
    fps: float
    calls: int
    duration: float
    ramp: bool
    ramp_start: int
    ramp_step: int
    ramp_max: int
    step_duration: float
    max_loss: float
    max_jitter: float
    max_calls: int
    max_rate: int
    max_duration: float
    workers: int | None
    shard: str
    sample_calls: int
    relay_pid: int | None
    refresh_s: float | None
    rebind_s: float
    as_json: bool
    report_path: Path | None
    junit: Path | None
    chart: Path | None


def _check_ranges(o: _LoadOptions) -> None:
    """Counts at least 1, durations positive, a few sampled calls (before the plan's own checks)."""
    from callops.errors import UsageError

    counts = {
        "calls": o["calls"],
        "ramp_start": o["ramp_start"],
        "ramp_step": o["ramp_step"],
        "ramp_max": o["ramp_max"],
        "max_calls": o["max_calls"],
        "max_rate": o["max_rate"],
    }
    for name, count in counts.items():
        if count < 1:
            raise UsageError(f"--{name.replace('_', '-')} {count} must be at least 1")
    durations = {
        "duration": o["duration"],
        "step_duration": o["step_duration"],
        "max_duration": o["max_duration"],
    }
    for name, seconds in durations.items():
        if seconds <= 0:
            raise UsageError(f"--{name.replace('_', '-')} {seconds:g} must be positive")
    if o["sample_calls"] < 0 or o["sample_calls"] > 10:
        raise UsageError(
            f"--sample-calls {o['sample_calls']} must be 0-10", hint="each is a full aiortc call"
        )


def _plan(o: _LoadOptions) -> LoadPlan:
    """The :class:`LoadPlan` of the options, checked against its caps; a bad one names the option."""
    from pydantic import ValidationError

    from callops.errors import UsageError
    from callops.orchestrator.load.cpu import cpu_count
    from callops.orchestrator.load.plan import Caps, LoadPlan, Ramp, Thresholds, parse_shard

    if o["turn_url"] is None:
        raise UsageError(
            "callops load needs --turn URI", hint="the relay to load, e.g. --turn turn:127.0.0.1:3478"
        )
    shard_index, shard_count = parse_shard(o["shard"])
    _check_ranges(o)
    try:
        ramp = (
            Ramp(start=o["ramp_start"], step=o["ramp_step"], max=o["ramp_max"], step_s=o["step_duration"])
            if o["ramp"]
            else None
        )
        plan = LoadPlan(
            turn=o["turn_url"],
            profile=o["profile"],
            video_bitrate_bps=o["video_bitrate"],
            video_fps=o["fps"],
            calls=o["calls"],
            duration_s=o["duration"],
            ramp=ramp,
            workers=o["workers"] or cpu_count(),
            shard_index=shard_index,
            shard_count=shard_count,
            thresholds=Thresholds(max_loss_percent=o["max_loss"], max_jitter_p99_ms=o["max_jitter"]),
            caps=Caps(max_calls=o["max_calls"], max_rate=o["max_rate"], max_duration_s=o["max_duration"]),
            refresh_s=o["refresh_s"],
            rebind_s=o["rebind_s"],
            ca_file=o["ca_file"],
            insecure=o["insecure"],
        )
    except ValidationError as exc:  # name the option
        from callops.validation import describe_validation_error

        problems = describe_validation_error(exc)
        raise UsageError(f"invalid load plan: {problems}", hint="see callops load --help") from None
    plan.check()
    return plan


def _credentials(o: _LoadOptions, plan: LoadPlan) -> tuple[str, Secret, SampleCallAuth]:
    """User name and password of the load allocations, and how the sampled calls authenticate."""
    from callops.orchestrator.load.runner import SampleCallAuth
    from callops.secret import Secret
    from callops.turn.credentials import rest_credentials

    user = o["user"]
    secret, password = turn_secrets(o["turn_url"], o["secret_file"], user, o["password_file"])
    if secret is not None:
        creds = rest_credentials(secret, user or LOAD_USER, ttl=int(plan.total_s + 3600))
        rest_password = Secret(creds.credential, source="TURN REST credential")
        return creds.username, rest_password, SampleCallAuth(secret=secret, user=user)
    assert password is not None and user is not None  # turn_secrets: a password comes with --user
    return user, password, SampleCallAuth(user=user, password=password)


@click.group(invoke_without_command=True)
@click.option(
    "--turn", "turn_url", metavar="URI", help="The relay: turn:HOST:PORT[?transport=tcp] or turns:HOST:PORT."
)
@turn_credential_options
@click.option(
    "--ca-file", type=click.Path(dir_okay=False, exists=True), help="CA certificate for turns: (PEM)."
)
@click.option("--insecure", is_flag=True, help="turns: without certificate verification.")
@click.option("--profile", type=click.Choice(["voice", "video"]), default="voice", show_default=True)
@click.option("--video-bitrate", type=int, default=1_500_000, show_default=True, help="Video profile bits/s.")
@click.option("--fps", type=float, default=30.0, show_default=True, help="Video frames/s (15-30).")
@click.option("--calls", type=int, default=10, show_default=True, help="Concurrent calls (without --ramp).")
@click.option(
    "--duration", type=float, default=10.0, show_default=True, help="Seconds of load (without --ramp)."
)
@click.option("--ramp", is_flag=True, help="Add calls in steps and report the capacity (see --ramp-*).")
@click.option("--ramp-start", type=int, default=10, show_default=True)
@click.option("--ramp-step", type=int, default=10, show_default=True)
@click.option("--ramp-max", type=int, default=200, show_default=True)
@click.option("--step-duration", type=float, default=10.0, show_default=True, help="Seconds per ramp step.")
@click.option(
    "--max-loss", type=float, default=1.0, show_default=True, help="A call degrades at this loss %."
)
@click.option(
    "--max-jitter", type=float, default=30.0, show_default=True, help="... or at this p99 jitter (ms)."
)
@click.option("--max-calls", type=int, default=600, show_default=True, help="Cap: concurrent calls.")
@click.option("--max-rate", type=int, default=60_000, show_default=True, help="Cap: packets/s to the relay.")
@click.option("--max-duration", type=float, default=900.0, show_default=True, help="Cap: seconds of load.")
@click.option("--workers", type=int, default=None, help="Generator processes (default: one per core).")
@click.option("--shard", default="0/1", show_default=True, help="Run share i of N (0-based) of the plan.")
@click.option(
    "--sample-calls", type=int, default=0, show_default=True, help="Real aiortc calls per step (MOS)."
)
@click.option("--relay-pid", type=int, default=None, help="PID of a local relay (default: found via /proc).")
@click.option("--refresh", "refresh_s", type=float, default=None, help="Allocation refresh interval, s.")
@click.option(
    "--rebind",
    "rebind_s",
    type=float,
    default=240.0,
    show_default=True,
    help="Channel/permission refresh, s.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON on stdout (progress on stderr).")
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report."
)
@click.option(
    "--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML (one case per step)."
)
@click.option(
    "--chart", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG: calls vs loss/jitter/CPU."
)
@click.pass_context
def load(ctx: click.Context, /, **kwargs: Unpack[_LoadOptions]) -> None:
    """Call-shaped relayed load against ONE relay you operate: each call is two TURN allocations
    exchanging ChannelData at a voice or video codec's rate both ways; per-call loss, jitter, RTT;
    with --ramp, the capacity (largest step where every call keeps loss and p99 jitter under the
    thresholds) and the first bottleneck. Hard caps (--max-*) bound every run; Ctrl-C/SIGTERM stop
    within a second and still write the report. Exit 0 ok, 1 degraded or stopped, 2 bad plan.
    """
    if ctx.invoked_subcommand is not None:
        return
    from callops.orchestrator.load.output import TABLE_HEADER, step_row
    from callops.orchestrator.load.runner import LoadRun, run_load

    plan = _plan(kwargs)
    username, password, sample_auth = _credentials(kwargs, plan)
    out = sys.stderr if kwargs["as_json"] else sys.stdout
    print(
        f"callops load: {plan.peak_calls} {plan.profile} calls max over {plan.transport.upper()} "
        f"to {plan.uri}, "
        f"{len(plan.steps())} step(s), {plan.total_s:g} s, {plan.workers} worker(s), "
        f"shard {plan.shard_index}/{plan.shard_count}",
        file=out,
    )
    print(TABLE_HEADER, file=out, flush=True)
    run = LoadRun(
        username=username,
        password=password,
        sample_calls=kwargs["sample_calls"],
        sample_auth=sample_auth,
        relay_pid=kwargs["relay_pid"],
        progress=lambda step: print(step_row(step), file=out, flush=True),
    )
    report = asyncio.run(run_load(plan, run))
    _outputs(
        report,
        as_json=kwargs["as_json"],
        report_path=kwargs["report_path"],
        junit=kwargs["junit"],
        chart=kwargs["chart"],
    )
    ctx.exit(0 if report.ok and report.stopped_by in ("plan", "capacity") else 1)


@load.command("merge")
@click.argument(
    "reports", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="The merged report as JSON on stdout.")
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the merged JSON."
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML.")
@click.option("--chart", type=click.Path(dir_okay=False, path_type=Path), help="Write the PNG chart.")
@click.pass_context
def merge(  # noqa: PLR0917 -- click passes every option
    ctx: click.Context,
    reports: tuple[Path, ...],
    as_json: bool,
    report_path: Path | None,
    junit: Path | None,
    chart: Path | None,
) -> None:
    """Merge shard reports (callops load --shard i/N --report F) into one; percentiles are
    recomputed from the per-call data and histograms, not averaged."""
    import pydantic

    from callops.errors import UsageError, ValidationError
    from callops.orchestrator.load.output import TABLE_HEADER, step_row
    from callops.orchestrator.load.reporting import LoadReport, merge_reports
    from callops.validation import validation_problems

    loaded = []
    for path in reports:
        try:
            loaded.append(LoadReport.model_validate_json(path.read_bytes()))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        except pydantic.ValidationError as exc:
            raise ValidationError(
                f"load report {path}",
                validation_problems(exc, root="(document)")[:5],
                hint="give the JSON files written by callops load --report",
            ) from None
    try:
        merged = merge_reports(loaded)
    except ValueError as exc:
        raise UsageError(f"cannot merge: {exc}", hint="merge the shards of one plan") from None
    if not as_json:
        click.echo(TABLE_HEADER)
        for step in merged.steps:
            click.echo(step_row(step))
    _outputs(merged, as_json=as_json, report_path=report_path, junit=junit, chart=chart)
    ctx.exit(0 if merged.ok else 1)


__all__ = ["load", "merge"]
