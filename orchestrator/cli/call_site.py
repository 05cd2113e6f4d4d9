"""``callops call-site``: one side (agent or consumer) of a headless call between two networks.

Thin command: options are parsed here, the work is in :mod:`callops.orchestrator.call.runs`.
aiortc is imported only when the command runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from callops.orchestrator.cli import options as opt

if TYPE_CHECKING:
    from collections.abc import Callable

    from callops.orchestrator.call.peer import IceServer
    from callops.orchestrator.call.runs import CallEnvironment, CallSettings, ConsumerLegFactory


def _ice_servers(
    stun: tuple[str, ...],
    turn: tuple[str, ...],
    secret_file: str | None,
    user: str | None,
    password_file: str | None,
) -> list[IceServer]:
    """STUN first, then TURN in the given order; TURN credentials only from files/env."""
    from callops.errors import UsageError
    from callops.orchestrator.call.environment import turn_server
    from callops.orchestrator.call.peer import IceServer, check_ice_servers
    from callops.turn.uri import parse_uri

    servers: list[IceServer] = []
    for url in stun:
        uri = parse_uri(url)
        if uri.is_turn:
            raise UsageError(f"--stun {url}: a turn: URI", hint="use --turn for TURN servers")
        servers.append(IceServer(str(uri)))
    secret, password = opt.turn_secrets(turn[0] if turn else None, secret_file, user, password_file)
    servers += [turn_server(url, secret=secret, user=user, password=password) for url in turn]
    check_ice_servers(servers)
    return servers


def _announce(role: str, ready_file: Path | None) -> Callable[[str], None]:
    """The consumer's readiness: one JSON line on stderr and, if asked, a file written atomically."""

    def ready(conversation_id: str) -> None:
        line = json.dumps({"event": "ready", "role": role, "conversation_id": conversation_id})
        click.echo(line, err=True)
        sys.stderr.flush()
        if ready_file is not None:
            partial = ready_file.with_name(ready_file.name + ".partial")
            partial.write_text(line + "\n")
            os.replace(partial, ready_file)

    return ready


@click.command()
@click.option("--role", type=click.Choice(["agent", "consumer"]), required=True, help="Which side to run.")
@click.option(
    "--emulator",
    "emulator_url",
    metavar="URL",
    required=True,
    help="Emulator base URL both sides reach (http://HOST:PORT, `callops emulator serve`).",
)
@click.option("--account", default="callops", show_default=True, help="Account id on the emulator.")
@click.option(
    "--conversation",
    metavar="ID",
    help="Agent: the consumer's conversation (default: the account's first open one without a call).",
)
@click.option("--stun", multiple=True, metavar="URI", help="STUN server (repeatable), e.g. stun:HOST:3478.")
@click.option(
    "--turn", multiple=True, metavar="URI", help="TURN server (repeatable; turn:/turns:), best first."
)
@opt.turn_credential_options
@opt.file_option(
    "--ca-file", exists=True, help="PEM CA that verifies turns: servers (default: the system CAs)."
)
@opt.choice_option("--mode", choices=opt.MODES, default="VOICE_CALL")
@opt.choice_option(
    "--policy", choices=opt.POLICIES, default="all", help="iceTransportPolicy of this side's peer."
)
@opt.seconds_option(
    "--duration", 0, 3600, 3.0, "Seconds of media once this side decodes (the agent then hangs up)."
)
@opt.seconds_option(
    "--timeout",
    0.5,
    3600,
    60.0,
    "Seconds to wait for the other side (agent: the conversation; consumer: the invitation).",
)
@opt.seconds_option(
    "--ice-timeout", 0.5, 120, 10.0, "Seconds for ICE+DTLS once the offer/answer is exchanged."
)
@click.option(
    "--loopback-only",
    is_flag=True,
    help="Gather host candidates on 127.0.0.1 only (default: every interface, like a browser).",
)
@opt.file_option(
    "--ready-file",
    as_path=True,
    help="Consumer: also write the readiness line (with the conversation id) to this file.",
)
@opt.file_option(
    "--jwt-secret-file",
    help=f"HS256 secret of the emulator's JWTs (or set {opt.JWT_SECRET_ENV}); default dev mode.",
)
@opt.choice_option(
    "--leg",
    choices=opt.LEGS,
    default="aiortc",
    help="Who plays this side: callops' headless peer, or a real Chromium (consumer; docs/browser.md).",
)
@click.option(
    "--browser-netns",
    metavar="NAME",
    help="--leg chromium: network namespace for the browser (default: callops' own, if it has no route out).",
)
@opt.choice_option(
    "--scenario", choices=("accept", "decline"), default="accept", help="Consumer: what the visitor decides."
)
@opt.answer_after_option
@click.option(
    "--deny-media", is_flag=True, hidden=True, help="--leg chromium: the page is refused the camera."
)
@click.option(
    "--without-container", is_flag=True, hidden=True, help="--leg chromium: the page forgets the container."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (the CallReport).")
def call_site(**o: Any) -> None:
    """One side of a headless call (scenario accept) through a shared emulator.

    Start the consumer side first: it opens a conversation and prints one JSON line on stderr,
    {"event": "ready", "conversation_id": ...}; the agent side then invites it, offers, and hangs
    up after --duration. Exit code 0 when this side saw the call connect with media both ways;
    Ctrl-C, SIGTERM or SIGHUP print the report of what is known and exit 130/143/129.

    \b
    Examples:
      callops call-site --role consumer --emulator http://203.0.113.20:8443 \\
          --stun stun:203.0.113.10:3478 --turn turn:203.0.113.10:3478 --secret-file turn-secret
      callops call-site --role agent --emulator http://127.0.0.1:8443 \\
          --turn turn:203.0.113.10:3478 --secret-file turn-secret --duration 3 --json
    """
    from callops.orchestrator.call.runs import SiteRun
    from callops.orchestrator.cli.call import emit_call_report
    from callops.orchestrator.cli.stopping import run_stoppable

    _check_roles(o["role"], o["emulator_url"], o["conversation"], o["leg"], o["scenario"])
    env = _site_environment(o)
    if o["policy"] == "relay" and not any(s.url.startswith("turn") for s in env.ice_servers):
        from callops.errors import UsageError

        raise UsageError("--policy relay needs a TURN server", hint="give --turn")
    settings = _site_settings(o)
    run = SiteRun(
        o["role"],
        settings,
        env,
        conversation_id=o["conversation"],
        consumer_leg=_consumer_leg(
            o["leg"],
            o["browser_netns"],
            o["scenario"],
            o["ca_file"],
            (o["deny_media"], o["without_container"]),
        ),
        on_ready=_announce(o["role"], o["ready_file"]),
    )
    report, stopped = run_stoppable(run.run())
    if stopped is not None:  # Ctrl-C, SIGTERM, SIGHUP: the report of what is known, exit 128+signal
        report = run.report(stopped_by=stopped.name)
    emit_call_report(report, stopped, as_json=o["as_json"])


def _site_settings(o: dict[str, Any]) -> CallSettings:
    """This side's call settings from the command's options."""
    from callops.orchestrator.cli.call import call_settings

    return call_settings(
        o,
        host_addresses=("127.0.0.1",) if o["loopback_only"] else None,
        wait_timeout_s=o["timeout"],
    )


def _check_roles(role: str, emulator_url: str, conversation: str | None, leg: str, scenario: str) -> None:
    from callops.errors import UsageError

    if not emulator_url.startswith("http://"):
        raise UsageError(
            f"--emulator {emulator_url}: must be http://HOST:PORT",
            hint="the base URL printed by `callops emulator serve`",
        )
    if conversation is not None and role != "agent":
        raise UsageError("--conversation is for --role agent", hint="the consumer opens its own conversation")
    if role == "agent" and (leg != "aiortc" or scenario != "accept"):
        raise UsageError(
            f"--role agent --leg {leg} --scenario {scenario}: not supported",
            hint="the agent side is callops' aiortc peer and offers; the consumer side decides "
            "(--role consumer --scenario decline, --leg chromium)",
        )


def _site_environment(o: dict[str, Any]) -> CallEnvironment:
    """The shared emulator, this side's ICE servers, its CA and the emulator's JWT secret."""
    from callops.orchestrator.call.runs import CallEnvironment

    context = None
    if o["ca_file"] is not None:
        from callops.turn.tls import client_context

        context = client_context(o["ca_file"])
    jwt_secret = opt.emulator_jwt_secret(o["jwt_secret_file"])
    return CallEnvironment(
        base_url=o["emulator_url"].rstrip("/"),
        ice_servers=_ice_servers(o["stun"], o["turn"], o["secret_file"], o["user"], o["password_file"]),
        jwt_secret=jwt_secret,
        ssl_context=context,
    )


def _consumer_leg(
    leg: str, netns: str | None, scenario: str, ca_file: str | None, faults: tuple[bool, bool]
) -> ConsumerLegFactory:
    """The consumer's leg factory: callops' aiortc peer, or a real Chromium (never in a namespace
    with a route out: checked before anything starts)."""
    from callops.orchestrator.call.runs import aiortc_consumer

    if leg != "chromium":
        return aiortc_consumer
    from callops.orchestrator.browser.consumer_page import BrowserSettings, chromium_consumer
    from callops.orchestrator.browser.isolation import check_browser_namespace
    from callops.orchestrator.call.scenarios import scenario as row

    check_browser_namespace(netns)
    return chromium_consumer(
        BrowserSettings(
            netns=netns,
            trusted_ca=[Path(ca_file)] if ca_file else [],
            decide=row(scenario).decision,
            grant_media=not faults[0],
            without_container=faults[1],
        )
    )


__all__ = ["call_site"]
