"""``callops call`` and ``callops smoke``: headless WebRTC calls along the whole invitation path.

Thin commands: options are parsed here, the work is in :mod:`callops.orchestrator.call`. aiortc
is imported only when a command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from callops.orchestrator.call.report import SCENARIOS
from callops.orchestrator.cli.options import (
    JWT_SECRET_ENV,
    LEGS,
    MODES,
    POLICIES,
    answer_after_option,
    choice_option,
    compose,
    emulator_jwt_secret,
    file_option,
    seconds_option,
    turn_credential_options,
    turn_secrets,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from rich.table import Table

    from callops.orchestrator.call.report import CallReport, DirectionStats
    from callops.orchestrator.call.runs import CallEnvironment, CallSettings
    from callops.orchestrator.call.smoke import SmokeReport

#: the options ``call`` and ``smoke`` share
call_options = compose(
    click.option(
        "--emulator",
        "emulator_url",
        metavar="URL",
        help="Emulator base URL (http://HOST:PORT); default: start one in-process.",
    ),
    click.option("--account", default="callops", show_default=True, help="Account id on the emulator."),
    click.option("--stun", "stun_url", metavar="URI", help="STUN server, e.g. stun:127.0.0.1:3478."),
    click.option(
        "--turn",
        "turn_url",
        metavar="URI",
        help="TURN server (turn:/turns:); default: a loopback coturn if turnserver is installed.",
    ),
    turn_credential_options,
    choice_option(
        "--mode", choices=MODES, default="VOICE_CALL", help="Audio (Opus) or audio+video (Opus+VP8)."
    ),
    choice_option("--policy", choices=POLICIES, default="all", help="iceTransportPolicy of both peers."),
    seconds_option("--duration", 0, 3600, 3.0, "Seconds of media once both sides decode."),
    choice_option("--scenario", choices=SCENARIOS, default="accept"),
    answer_after_option,
    seconds_option("--ice-timeout", 0.5, 120, 10.0, "Seconds for ICE+DTLS before UNABLE_TO_CONNECT."),
    seconds_option("--invite-expiry", 0.5, 3600, 120.0, "Invitation expiry of the embedded emulator (s)."),
    click.option(
        "--all-interfaces",
        is_flag=True,
        help="Gather host candidates on every interface (default: 127.0.0.1 only).",
    ),
    click.option(
        "--pre-encoded-audio",
        is_flag=True,
        help="Send a tone encoded once (cheap senders for many calls); receivers still decode.",
    ),
    file_option(
        "--jwt-secret-file",
        help=f"HS256 secret of the emulator's consumer JWTs (or set {JWT_SECRET_ENV}); default dev mode.",
    ),
    choice_option(
        "--consumer",
        "consumer_leg",
        choices=LEGS,
        default="aiortc",
        help="Who plays the consumer: callops' headless peer, or a real Chromium (docs/browser.md).",
    ),
    choice_option(
        "--agent",
        "agent_leg",
        choices=LEGS,
        default="aiortc",
        help="Who plays the agent: callops' headless peer, or a real Chromium (the Agent Workspace).",
    ),
    click.option(
        "--browser-netns",
        metavar="NAME",
        help="--consumer chromium: the browser's network namespace (default: callops' own if it has "
        "no route out; as root otherwise, the whole call runs in a fresh lo-only namespace).",
    ),
    file_option(
        "--ca-file",
        exists=True,
        help="PEM CA that verifies turns: servers (both legs; the browser trusts only it).",
    ),
)


#: the options that are one field each of the call's settings (``call``, ``smoke``, ``call-site``)
SETTINGS_OF_OPTIONS = {
    "mode": "mode",
    "policy": "policy",
    "scenario": "scenario",
    "account": "account",
    "duration": "duration_s",
    "ice_timeout": "ice_timeout_s",
    "answer_after": "answer_after_s",
}


def call_settings(o: dict[str, Any], **given: Any) -> CallSettings:
    """The call's settings from the command's options, and the ``given`` fields."""
    from callops.orchestrator.call.runs import CallSettings

    return CallSettings(**{field: o[option] for option, field in SETTINGS_OF_OPTIONS.items()}, **given)


def _requests(kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(EnvironmentRequest, CallSettings) from the shared options; secrets only from files/env."""
    from callops.errors import UsageError
    from callops.orchestrator.call.environment import EnvironmentRequest

    turn_url = kwargs["turn_url"]
    secret, password = turn_secrets(turn_url, kwargs["secret_file"], kwargs["user"], kwargs["password_file"])
    jwt_secret = emulator_jwt_secret(kwargs["jwt_secret_file"])
    if kwargs["policy"] == "relay" and turn_url is None and kwargs["scenario"] != "ice-fail":
        from callops.orchestrator.call.embedded import available

        if not available():
            raise UsageError(
                "--policy relay needs a TURN server",
                hint="give --turn, or install coturn for the embedded one",
            )
    request = EnvironmentRequest(
        emulator_url=kwargs["emulator_url"],
        stun_url=kwargs["stun_url"],
        turn_url=turn_url,
        turn_secret=secret,
        turn_user=kwargs["user"],
        turn_password=password,
        invite_expiry_s=kwargs["invite_expiry"],
        jwt_secret=jwt_secret,
    )
    settings = call_settings(
        kwargs,
        invite_expiry_s=kwargs["invite_expiry"],
        host_addresses=None if kwargs["all_interfaces"] else ("127.0.0.1",),
        pre_encoded_audio=kwargs["pre_encoded_audio"],
    )
    return request, settings


def _legs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The legs' factories (``consumer_leg``, ``agent_leg`` of CallRun). A Chromium never runs where
    it could reach the internet: in ``--browser-netns``, or in this namespace if it has no route out;
    as root otherwise, the whole command runs again inside a fresh lo-only namespace (and this
    process exits with its code)."""
    from callops.orchestrator.call.runs import aiortc_agent, aiortc_consumer

    browsers = [role for role in ("consumer", "agent") if kwargs[f"{role}_leg"] == "chromium"]
    if not browsers:
        if kwargs["browser_netns"]:
            from callops.errors import UsageError

            raise UsageError("--browser-netns is for --consumer/--agent chromium")
        return {"consumer_leg": aiortc_consumer, "agent_leg": aiortc_agent}
    from callops.orchestrator.browser.agent_page import chromium_agent
    from callops.orchestrator.browser.consumer_page import BrowserSettings, chromium_consumer
    from callops.orchestrator.browser.isolation import check_browser_namespace, has_route_out
    from callops.orchestrator.call.scenarios import scenario

    netns = kwargs["browser_netns"]
    if netns is None and has_route_out():
        _rerun_isolated(kwargs)
    check_browser_namespace(netns)
    ca = [Path(kwargs["ca_file"])] if kwargs["ca_file"] else []
    browser = BrowserSettings(netns=netns, trusted_ca=ca, decide=scenario(kwargs["scenario"]).decision)
    return {
        "consumer_leg": chromium_consumer(browser) if "consumer" in browsers else aiortc_consumer,
        "agent_leg": chromium_agent(browser) if "agent" in browsers else aiortc_agent,
    }


def _rerun_isolated(kwargs: dict[str, Any]) -> None:
    """This command again, in a fresh namespace with only ``lo``: embedded emulator, coturn, agent
    and browser all on its 127.0.0.1. Exits with the inner command's code."""
    import subprocess

    from callops.errors import UsageError
    from callops.orchestrator.browser.isolation import browser_environment_problem, isolated_namespace

    problem = browser_environment_problem()
    if problem is not None or os.environ.get("CALLOPS_ISOLATED"):
        raise UsageError(
            "a Chromium leg: this network namespace has a route out, and Chromium phones home",
            hint="run as root (callops then isolates the call), or give --browser-netns "
            f"({problem or 'already isolated'})",
        )
    if kwargs["emulator_url"] or (kwargs["turn_url"] and "127.0.0.1" not in kwargs["turn_url"]):
        raise UsageError(
            "a Chromium leg without --browser-netns runs the call in an isolated namespace, "
            "where only the embedded emulator and loopback servers are reachable",
            hint="drop --emulator/--turn, or give --browser-netns with a namespace that reaches them",
        )
    with isolated_namespace() as name:
        click.echo(f"callops: running the call in isolated network namespace {name} (no route out)", err=True)
        argv = ["ip", "netns", "exec", name, sys.executable, "-m", "callops", *sys.argv[1:]]
        code = subprocess.call(argv, env={**os.environ, "CALLOPS_ISOLATED": "1"})
    sys.exit(code)


def _trust(env: CallEnvironment, ca_file: str | None) -> None:
    """``--ca-file``: the aiortc legs verify ``turns:`` servers with it, too."""
    if ca_file is not None:
        from callops.turn.tls import client_context

        env.ssl_context = client_context(ca_file)


def _render_call(report: CallReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    verdict = "[green]OK[/green]" if report.ok else "[red]FAILED[/red]"
    console.print(
        f"{verdict}  scenario {report.scenario}, {report.mode}, policy {report.policy}: "
        f"outcome [bold]{report.outcome}[/bold] (expected {report.expected_outcome})"
    )
    if report.failure:
        console.print(f"  failure: {report.failure}")
    timeline = Table("phase", "ms from invitation", title="timeline")
    for phase, ms in report.timeline_ms.items():
        timeline.add_row(phase, f"{ms:.1f}")
    console.print(timeline)
    for label, pair in (("consumer", report.selected_pair), ("agent", report.agent_selected_pair)):
        if pair is not None:
            via = f" via {pair.local.relay_protocol}" if pair.local.relay_protocol else ""
            console.print(f"  selected pair ({label}): {pair.local.type}{via} -> {pair.remote.type}")
    if report.stats.media:
        console.print(_media_table(report.stats.media))
    for line in _call_lines(report):
        console.print(f"  {line}")


def _media_table(rows: Sequence[DirectionStats]) -> Table:
    from rich.table import Table

    media = Table(
        "kind", "direction", "pkts", "kbit/s", "loss %", "jitter ms", "rtt ms", "frames", title="media"
    )
    for m in rows:
        rtt = f"{m.rtt_ms:.1f}" if m.rtt_ms is not None else "-"
        media.add_row(
            m.kind,
            m.direction,
            str(m.packets_received),
            f"{m.bitrate_kbps:.0f}",
            f"{m.loss_percent:.1f}",
            f"{m.jitter_ms:.1f}",
            rtt,
            str(m.frames_decoded),
        )
    return media


def _call_lines(report: CallReport) -> list[str]:
    """The report's quality, interruptions, transport events, errors, resume and notes, one a line."""
    lines = [
        f"audio {q.direction}: MOS {q.mos:.2f} ({q.band}, R={q.r_factor})" for q in report.stats.audio_quality
    ]
    for gap in report.interruptions:
        end = f"{gap.to_ms:.0f} ms" if gap.to_ms is not None else "never recovered"
        lines.append(f"interruption {gap.kind} {gap.direction}: {gap.from_ms:.0f} ms -> {end}")
    lines += [f"transport {e.side} {e.state} at {e.at_ms:.0f} ms" for e in report.transport_events]
    lines += [f"sessionError {e.id}: {e.msg}" for e in report.errors]
    if report.resume_to_media_ms is not None:
        lines.append(f"media again {report.resume_to_media_ms:.0f} ms after the resume")
    lines += [f"note: {note}" for note in report.notes]
    legs = ", ".join(f"{role} {leg.kind} {leg.version or ''}".rstrip() for role, leg in report.legs.items())
    if legs:
        lines.append(f"legs: {legs}")
    return lines


def emit_call_report(report: CallReport | None, stopped: BaseException | None, *, as_json: bool) -> None:
    """Print a call's report (JSON or rendered) and exit as it says: the stop signal's code,
    1 for a call that did not reach its expected outcome, 0 otherwise."""
    if report is not None:
        if as_json:
            click.echo(report.model_dump_json(indent=2))
        else:
            _render_call(report)
    if stopped is not None:
        raise stopped
    if report is None or not report.ok:
        sys.exit(1)


@click.command()
@call_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (the CallReport).")
def call(as_json: bool, **kwargs: Any) -> None:
    """One headless WebRTC call along the whole invitation path, with a report of every phase.

    With no options: an in-process emulator, a loopback coturn (if turnserver is installed), a voice
    call with the default scenario `accept`. Exit code 0 when the scenario's expected outcome was
    reached, 1 otherwise (e.g. outcome `dropped`: the media stopped mid-call). Ctrl-C, SIGTERM or
    SIGHUP print the report of what is known and exit 130/143/129.

    \b
    Examples:
      callops call
      callops call --mode VIDEO_CALL --policy relay --json
      callops call --turn turn:turn.example.com:3478 --secret-file turn-secret --policy relay
      callops call --scenario resume
    """
    from callops.orchestrator.call.environment import call_environment
    from callops.orchestrator.call.runs import CallRun
    from callops.orchestrator.cli.stopping import absorb_cancellation, run_stoppable

    request, settings = _requests(kwargs)
    legs = _legs(kwargs)
    runs: list[CallRun] = []

    async def main() -> CallReport | None:
        async with call_environment(request) as env:
            _trust(env, kwargs["ca_file"])
            runs.append(CallRun(settings, env, **legs))
            try:
                return await runs[0].run()
            except asyncio.CancelledError:
                absorb_cancellation()  # stopped: the environment below still shuts down cleanly
                return None

    report, stopped = run_stoppable(main())
    if stopped is not None and runs:
        report = runs[0].report(stopped_by=stopped.name)
    emit_call_report(report, stopped, as_json=as_json)


def _render_summary(report: SmokeReport) -> None:
    from rich.console import Console
    from rich.table import Table

    s = report.summary

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    table = Table("calls", "passed", "failed", "success", "ice p50/p95 ms", "media p50/p95 ms", "pairs")
    table.add_row(
        f"{s.calls}/{report.requested}",
        str(s.passed),
        str(s.failed),
        f"{100 * s.success_rate:.1f}%",
        f"{ms(s.ice_connected_p50_ms)}/{ms(s.ice_connected_p95_ms)}",
        f"{ms(s.first_media_p50_ms)}/{ms(s.first_media_p95_ms)}",
        ", ".join(f"{k} x{v}" for k, v in sorted(s.pair_types.items())) or "-",
    )
    Console().print(table)
    if report.interrupted:
        click.echo("smoke: interrupted -- the report covers the calls that finished", err=True)


@click.command()
@call_options
@click.option("--calls", "calls", type=click.IntRange(1, 100_000), default=10, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 1000), default=2, show_default=True)
@click.option(
    "--deadline", type=click.FloatRange(1, 86_400), default=None, help="Stop after this many seconds."
)
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="JSON report.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report to standard output.")
def smoke(**o: Any) -> None:
    """N headless calls, C at a time: success rate, p50/p95 to ice_connected and first media.

    Exit codes: 0 all calls passed, 1 some failed (or --deadline cut the run short), 2 usage
    error; stopped by Ctrl-C, SIGTERM or SIGHUP: the report and JUnit of the calls that finished
    are still written, exit 130/143/129.

    \b
    Examples:
      callops smoke --calls 20 --concurrency 5 --policy relay --report smoke.json --junit smoke.xml
    """
    from callops.orchestrator.call.environment import call_environment
    from callops.orchestrator.call.runs import CallRun
    from callops.orchestrator.call.smoke import SmokeReport, junit_xml, run_smoke, summarize
    from callops.orchestrator.cli.stopping import run_stoppable

    request, settings = _requests(o)
    legs = _legs(o)
    show_progress = sys.stderr.isatty() and not o["as_json"]

    async def main() -> SmokeReport:
        async with call_environment(request) as env:
            _trust(env, o["ca_file"])

            def run_call(_i: int) -> Awaitable[CallReport]:
                return CallRun(settings, env, **legs).run()

            with _progress(show_progress, o["calls"]) as advance:
                return await run_smoke(
                    run_call,
                    calls=o["calls"],
                    concurrency=o["concurrency"],
                    deadline_s=o["deadline"],
                    on_done=advance,
                )

    # A stop signal (Ctrl-C, SIGTERM, SIGHUP) cancels the run: run_smoke returns what finished,
    # the environment is stopped, the report and JUnit are written, exit 130/143/129.
    report, stopped = run_stoppable(main())
    if report is None:  # stopped before any call started
        report = SmokeReport(
            ok=False,
            requested=o["calls"],
            concurrency=o["concurrency"],
            interrupted=True,
            summary=summarize([]),
            calls=[],
        )
    _write_outputs(report, o["report_path"], o["junit_path"], junit_xml)
    if o["as_json"]:
        click.echo(report.model_dump_json(indent=2))
    else:
        _render_summary(report)
    if stopped is not None:
        raise stopped
    if not report.ok:
        sys.exit(1)


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[CallReport], None] | None]:
    """A progress bar on stderr (a terminal only); yields what to call as each call ends."""
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("calls", total=total)
        yield lambda _report: progress.advance(task)


def _write_outputs(
    report: SmokeReport,
    report_path: Path | None,
    junit_path: Path | None,
    junit_xml: Callable[[SmokeReport], str],
) -> None:
    from callops.errors import UsageError

    for path, text in ((report_path, report.model_dump_json(indent=2) + "\n"), (junit_path, None)):
        if path is None:
            continue
        content = text if text is not None else junit_xml(report)
        try:
            path.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        if os.environ.get("CALLOPS_DEBUG_PATHS"):
            click.echo(f"wrote {path}", err=True)


__all__ = ["call", "smoke"]
