"""``callops probe``: will calls connect from this network, and over what?

``callops probe`` alone is the one-site verdict; ``callops probe serve`` and ``callops probe peer``
are the two-site test (a responder at site B, full ICE negotiations per path class from site A).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pydantic import BaseModel

    from callops.orchestrator.probe.ice import IceSettings
    from callops.orchestrator.probe.onesite_report import ProbeReport
    from callops.orchestrator.probe.paths import TwoSiteReport
    from callops.orchestrator.probe.profile import Checklist
    from callops.orchestrator.probe.settings import ProbeSettings
    from callops.orchestrator.probe.twosite import CallServers
    from callops.secret import Secret

T = TypeVar("T")
#: a report printed as JSON or rendered
R = TypeVar("R", bound="BaseModel")
F = TypeVar("F", bound=Callable[..., object])

DEFAULT_CONFIG = "callops.yaml"


def _config_section(config: str | None, name: str) -> tuple[dict[str, Any] | None, str]:
    from callops.errors import ConfigError
    from callops.turn.config import load_config

    path = config or os.environ.get("CALLOPS_CONFIG")
    if path is None:
        if not Path(DEFAULT_CONFIG).exists():
            return None, "flags and environment"
        path = DEFAULT_CONFIG
    section = load_config(path).section(name)
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{path}: '{name}' must be a mapping of fields")
    return section, str(path)


def render_report(report: ProbeReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    colour = {"p2p-likely": "green", "relay-required": "yellow", "blocked": "red"}[report.verdict]
    transports = ""
    if report.relay_transports:
        joined = ", ".join(report.relay_transports)
        transports = (
            f" (relay also works over {joined})" if report.verdict == "p2p-likely" else f" over {joined}"
        )
    console.print(f"[bold {colour}]{report.verdict}[/]{transports} -- {report.reason}")
    console.print(
        f"NAT: mapping {report.nat.mapping}, filtering {report.nat.filtering}"
        + (f", mapped {report.nat.mapped}" if report.nat.mapped else "")
    )
    if report.peers:
        paths = {"p2p": "green", "relay": "yellow", "blocked": "red", "inconclusive": "dim"}
        console.print(f"This site: {report.site_class}. With a peer that is:")
        for peer, path in report.peers.items():
            via = f" via TURN/{path.transport}" if path.transport else ""
            console.print(f"  {peer:<19} [{paths[path.path]}]{path.path}[/]{via}")
    table = Table(show_header=True, header_style="bold")
    for column in ("check", "status", "ms", "detail / error"):
        table.add_column(column)
    styles = {"ok": "green", "fail": "red", "inconclusive": "yellow", "skipped": "dim", "warn": "yellow"}
    for check in report.checks:
        style = styles.get(check.status, "")
        table.add_row(
            check.name, f"[{style}]{check.status}[/]", f"{check.duration_ms:.0f}", check.error or check.detail
        )
    console.print(table)
    if report.ice_servers:
        console.print("ICE servers for web pages on this network, best first:")
        for server in report.ice_servers:
            console.print(f"  {', '.join(server.urls)}")
    for warning in report.warnings:
        console.print(f"[bold red]warning:[/] {warning}")


def render_checklist(checklist: Checklist) -> None:
    from rich.console import Console

    console = Console()
    render_report(checklist.probe)
    console.print(f"\n[bold]{checklist.title}[/] ({checklist.source})")
    styles = {"pass": "green", "fail": "red", "warn": "yellow", "skipped": "dim"}
    for item in checklist.items:
        optional = "" if item.required else " (optional)"
        status = f"[{styles[item.status]}]{item.status:<7}[/]"
        console.print(f"{status} [bold]{item.id}[/]{optional}: {item.requirement}", highlight=False)
        console.print(f"        measured: {item.measured}", highlight=False, soft_wrap=True)
        if item.fix:
            console.print(f"        fix: {item.fix}", highlight=False, soft_wrap=True)
    failed = [i.id for i in checklist.items if i.required and i.status == "fail"]
    if failed:
        console.print(f"[bold red]not ready:[/] {', '.join(failed)}")
    else:
        console.print("[bold green]ready[/]: every required item passed")


@click.group(invoke_without_command=True)
@click.option("--stun", multiple=True, metavar="URI", help="STUN server URI (repeatable).")
@click.option("--turn", multiple=True, metavar="URI", help="TURN server URI, one per transport (repeatable).")
@click.option("--secret-file", type=click.Path(dir_okay=False), help="TURN REST API shared secret file.")
@click.option("--user", help="Long-term TURN user (with --password-file), or the REST user name.")
@click.option("--password-file", type=click.Path(dir_okay=False), help="Long-term TURN password file.")
@click.option("--ca-file", type=click.Path(dir_okay=False), help="CA bundle for TURN over TLS (private CA).")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (the report says so).")
@click.option("--config", type=click.Path(dir_okay=False), help="callops.yaml with a 'probe:' section.")
@click.option("--timeout", type=float, help="The one deadline of all probes, in seconds [default: 10].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "--profile",
    metavar="NAME|FILE",
    help="Check a brand's published requirements (built in: liveperson) and print a checklist.",
)
@click.pass_context
def probe(  # noqa: PLR0917 -- click passes every option as an argument
    ctx: click.Context,
    stun: tuple[str, ...],
    turn: tuple[str, ...],
    secret_file: str | None,
    user: str | None,
    password_file: str | None,
    ca_file: str | None,
    insecure: bool,
    config: str | None,
    timeout: float | None,
    as_json: bool,
    profile: str | None,
) -> None:
    """Verdict for this network: p2p-likely, relay-required (with transports) or blocked.

    Exit codes: 0 p2p-likely or relay over UDP; 1 relay only over TCP/TLS; 3 blocked; 2 usage.
    With --profile: a checklist (relay per port, TLS certificate, relay range, bandwidth through the
    relay); exit 1 when a required item fails, else 0.
    Environment: CALLOPS_PROBE_STUN, CALLOPS_PROBE_TURN, CALLOPS_PROBE_TIMEOUT, CALLOPS_PROBE_CA_FILE,
    CALLOPS_PROBE_SECRET_FILE, CALLOPS_PROBE_USER, CALLOPS_PROBE_PASSWORD_FILE, CALLOPS_TURN_SECRET,
    CALLOPS_TURN_PASSWORD.
    """
    if ctx.invoked_subcommand is not None:
        return
    from callops.orchestrator.probe.onesite import process_age
    from callops.orchestrator.probe.settings import merge_settings

    # The deadline counts from process start: start-up is part of what the user waits for.
    spent = min(process_age(), 1.0)

    section, source = _config_section(config, "probe")
    flags = {
        "stun": stun,
        "turn": turn,
        "secret_file": secret_file,
        "user": user,
        "password_file": password_file,
        "ca_file": ca_file,
        "insecure": insecure,
        "timeout": timeout,
    }
    settings = merge_settings(section, os.environ, flags, source=source)
    if not settings.stun and not settings.turn:
        from callops.errors import UsageError

        raise UsageError("no servers to probe", hint="pass --stun URI and/or --turn URI, or --config FILE")
    if profile is not None:
        checklist = _check_profile(settings, profile, spent)
        _emit(checklist, as_json, render_checklist)
        sys.exit(checklist.exit_code)
    report = _probe_site(settings, spent)
    _emit(report, as_json, render_report)
    # The verdict's exit code is not an error: exit directly (also under ``python -m callops``).
    sys.exit(report.exit_code)


def _check_profile(settings: ProbeSettings, name: str, spent: float) -> Checklist:
    """The brand's checklist: the one-site probes, then each bandwidth flow alone."""
    import asyncio

    from callops.errors import DeadlineExceeded
    from callops.orchestrator.probe.onesite import BANDWIDTH_SETUP_S, probe_profile
    from callops.orchestrator.probe.profile import load_profile

    brand = load_profile(name)
    # The one-site deadline, then each bandwidth flow alone; the guard only catches a bug.
    bound = settings.timeout + sum(i.duration_s + BANDWIDTH_SETUP_S for i in brand.items) + 2.0
    try:
        run = probe_profile(settings, os.environ, brand, spent=spent)
        return asyncio.run(asyncio.wait_for(run, bound))
    except TimeoutError:
        raise DeadlineExceeded(f"the {brand.name} profile overran its {bound:.1f} s bound") from None


def _probe_site(settings: ProbeSettings, spent: float) -> ProbeReport:
    """The one-site probes, by their deadline (a stop signal exits 130/143/129)."""
    import asyncio

    from callops.errors import DeadlineExceeded
    from callops.orchestrator.probe.onesite import probe_site

    async def bounded() -> ProbeReport:
        # The probes end by the deadline themselves; this guard only catches a bug.
        return await asyncio.wait_for(probe_site(settings, os.environ, spent=spent), settings.timeout + 2.0)

    try:
        return _until_stopped(bounded())
    except TimeoutError:
        raise DeadlineExceeded(f"probes overran the {settings.timeout:.1f} s deadline") from None


def _until_stopped(main: Coroutine[Any, Any, T]) -> T:
    """What ``main`` returns; Ctrl-C, SIGTERM, SIGHUP stop it and exit 130/143/129."""
    from callops.orchestrator.cli.stopping import run_stoppable

    result, stopped = run_stoppable(main)
    if stopped is not None or result is None:
        raise stopped or KeyboardInterrupt
    return result


def _emit(document: R, as_json: bool, render: Callable[[R], None]) -> None:
    """``document`` as one JSON document, or rendered for a terminal."""
    if as_json:
        click.echo(document.model_dump_json(indent=2))
    else:
        render(document)


def _server_options(f: F) -> F:
    for option in reversed(
        [
            click.option("--stun", multiple=True, metavar="URI", help="STUN server URI (repeatable)."),
            click.option("--turn", multiple=True, metavar="URI", help="TURN server URI (repeatable)."),
            click.option(
                "--secret-file", type=click.Path(dir_okay=False), help="TURN REST shared secret file."
            ),
            click.option("--user", help="Long-term TURN user (with --password-file), or the REST user name."),
            click.option(
                "--password-file", type=click.Path(dir_okay=False), help="Long-term TURN password file."
            ),
            click.option("--ca-file", type=click.Path(dir_okay=False), help="CA bundle for TURN over TLS."),
            click.option("--insecure", is_flag=True, help="Do not verify TLS certificates."),
            click.option(
                "--config", type=click.Path(dir_okay=False), help="callops.yaml with a 'probe:' section."
            ),
            click.option(
                "--host-address",
                "host_addresses",
                multiple=True,
                metavar="IP",
                help="Gather host candidates only on these addresses (default: every interface).",
            ),
            click.option(
                "--token-file",
                type=click.Path(dir_okay=False),
                help="Shared token file (or CALLOPS_PROBE_TOKEN).",
            ),
        ]
    ):
        f = option(f)
    return f


def _site(kwargs: dict[str, Any]) -> tuple[Secret, IceSettings, CallServers]:
    """(token, IceSettings, CallServers) from the common options of serve and peer."""
    from callops.orchestrator.probe.settings import merge_settings
    from callops.orchestrator.probe.twosite import site_servers
    from callops.secret import load_secret

    token = load_secret(file=kwargs.pop("token_file"), env="CALLOPS_PROBE_TOKEN", what="probe token")
    assert token is not None  # required: load_secret raised
    hosts = list(kwargs.pop("host_addresses")) or None
    section, source = _config_section(kwargs.pop("config"), "probe")
    settings = merge_settings(section, os.environ, kwargs, source=source)
    ice, call = site_servers(settings, os.environ, host_addresses=hosts)
    return token, ice, call


def _hostport(value: str) -> tuple[str, int]:
    from callops.errors import UsageError

    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {value!r} is not HOST:PORT", hint="e.g. --listen 0.0.0.0:8443")
    return host.strip("[]") or "0.0.0.0", int(port)


@probe.command()
@click.option("--listen", required=True, metavar="HOST:PORT", help="Where peers connect (websocket).")
@click.option("--max-sessions", type=click.IntRange(1, 1000), default=32, show_default=True)
@click.option("--session-seconds", type=click.FloatRange(1, 600), default=30.0, show_default=True)
@_server_options
def serve(listen: str, max_sessions: int, session_seconds: float, **kwargs: Any) -> None:
    """Responder at site B for 'callops probe peer' (token required; several peers at once)."""

    from callops.orchestrator.probe.twosite import Responder

    host, port = _hostport(listen)
    token, ice, call = _site(kwargs)
    responder = Responder(token, ice, call, max_sessions=max_sessions, session_seconds=session_seconds)

    async def run() -> None:
        server = await responder.start(host, port)
        click.echo(f"probe serve: listening on ws://{host}:{port}", err=True)
        async with server:
            await server.serve_forever()

    from callops.orchestrator.cli.stopping import run_stoppable

    _, stopped = run_stoppable(run())  # Ctrl-C, SIGTERM, SIGHUP: sessions closed, exit 130/143/129
    if stopped is not None:
        click.echo("probe serve: stopped", err=True)
        raise stopped


@probe.command()
@click.argument("url")
@click.option("--timeout", type=float, default=20.0, show_default=True, help="One deadline for all paths.")
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Choice(["host", "srflx", "relay-udp", "relay-tcp", "relay-tls"]),
    help="Path classes to test (default: all).",
)
@click.option("--call", "with_call", is_flag=True, help="Also make a real headless call (aiortc, media).")
@click.option(
    "--bandwidth",
    type=click.Choice(["voice", "video"]),
    help="Also send a call-shaped flow peer to peer (srflx path; voice 600, video 2600 kbit/s), echoed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@_server_options
def peer(  # noqa: PLR0917 -- click passes every option as an argument
    url: str,
    timeout: float,
    paths: tuple[str, ...],
    with_call: bool,
    bandwidth: str | None,
    as_json: bool,
    **kwargs: Any,
) -> None:
    """Site A: one ICE negotiation per path class against 'callops probe serve' at URL.

    Verdict p2p, relay-required (with transports) or blocked; exit codes as for 'callops probe'.
    """

    from callops.orchestrator.probe.paths import PATH_CLASSES
    from callops.orchestrator.probe.twosite import run_peer

    token, ice, call = _site(kwargs)
    chosen = [p for p in PATH_CLASSES if p in paths] if paths else list(PATH_CLASSES)
    flow = None
    if bandwidth is not None:
        from callops.turn.bandwidth import FlowSpec

        flow = FlowSpec("voice", 600, 600) if bandwidth == "voice" else FlowSpec("video", 2600, 1100)
    report = _until_stopped(
        run_peer(
            url, token, ice, timeout=timeout, paths=chosen, call=call if with_call else None, bandwidth=flow
        )
    )
    _emit(report, as_json, render_two_site_report)
    sys.exit(report.exit_code)


def render_two_site_report(report: TwoSiteReport) -> None:
    """The verdict, a row per path class, bandwidth and the real call when they were asked for."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    transports = f" over {', '.join(report.relay_transports)}" if report.relay_transports else ""
    console.print(f"[bold]{report.verdict}[/]{transports} (with {report.server})")
    table = Table("path", "connected", "selected pair (local -> remote)", "rtt ms", "error")
    for r in report.paths:
        pair = (
            f"{r.local.type} {r.local.address} -> {r.remote.type} {r.remote.address}"
            if r.local and r.remote
            else ""
        )
        rtt = f"{r.rtt_ms:.1f}" if r.rtt_ms is not None else ""
        table.add_row(r.path, "yes" if r.connected else "no", pair, rtt, r.error or "")
    console.print(table)
    for r in report.paths:
        if r.bandwidth_detail:
            console.print(f"bandwidth over {r.path}: {r.bandwidth_status} -- {r.bandwidth_detail}")
    if report.call is not None:
        c = report.call
        via = f" via TURN/{c.relay_protocol}" if c.relay_protocol else ""
        pair = (
            f"{c.local.type} {c.local.address} -> {c.remote.type} {c.remote.address}{via}"
            if c.local and c.remote
            else "no pair"
        )
        media = f"media received={c.media_received} sent={c.media_sent}"
        console.print(f"call: connected={c.connected} {media}; {pair} {c.error or ''}")


__all__ = ["peer", "probe", "render_checklist", "render_report", "render_two_site_report", "serve"]
