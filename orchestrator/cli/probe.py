"""``callops probe``: will calls connect from this network, and over what?

``callops probe`` alone is the one-site verdict; ``callops probe serve`` and ``callops probe peer``
are the two-site test (a responder at site B, full ICE negotiations per path class from site A).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from callops.orchestrator.probe.report import ProbeReport

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
    transports = f" over {', '.join(report.relay_transports)}" if report.relay_transports else ""
    console.print(f"[bold {colour}]{report.verdict}[/]{transports} -- {report.reason}")
    console.print(
        f"NAT: mapping {report.nat.mapping}, filtering {report.nat.filtering}"
        + (f", mapped {report.nat.mapped}" if report.nat.mapped else "")
    )
    table = Table(show_header=True, header_style="bold")
    for column in ("check", "status", "ms", "detail / error"):
        table.add_column(column)
    styles = {"ok": "green", "fail": "red", "inconclusive": "yellow", "skipped": "dim"}
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
) -> None:
    """Verdict for this network: p2p-likely, relay-required (with transports) or blocked.

    Exit codes: 0 p2p-likely or relay over UDP; 1 relay only over TCP/TLS; 3 blocked; 2 usage.
    Environment: CALLOPS_PROBE_STUN, CALLOPS_PROBE_TURN, CALLOPS_PROBE_TIMEOUT, CALLOPS_PROBE_CA_FILE,
    CALLOPS_PROBE_SECRET_FILE, CALLOPS_PROBE_USER, CALLOPS_PROBE_PASSWORD_FILE, CALLOPS_TURN_SECRET,
    CALLOPS_TURN_PASSWORD.
    """
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from callops.errors import DeadlineExceeded
    from callops.orchestrator.probe.settings import merge_settings
    from callops.orchestrator.probe.site import probe_site

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

    async def bounded() -> ProbeReport:
        # The probes end by the deadline themselves; this guard only catches a bug.
        return await asyncio.wait_for(probe_site(settings, os.environ), settings.timeout + 2.0)

    try:
        report = asyncio.run(bounded())
    except TimeoutError:
        raise DeadlineExceeded(f"probes overran the {settings.timeout:.1f} s deadline") from None
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        render_report(report)
    # The verdict's exit code is not an error: exit directly (also under ``python -m callops``).
    sys.exit(report.exit_code)


__all__ = ["probe", "render_report"]
