"""``callops emulator``: run the local Messaging Window API emulator, or invite through it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from callops.errors import UsageError
from callops.orchestrator.cli.options import JWT_SECRET_ENV

if TYPE_CHECKING:
    from callops.orchestrator.emulator import EmulatorConfig
    from callops.secret import Secret

#: Environment variable holding the control API's bearer token (instead of --control-token-file);
#: the same as callops.orchestrator.emulator.control.CONTROL_TOKEN_ENV (not imported: --help stays fast).
CONTROL_TOKEN_ENV = "CALLOPS_CONTROL_TOKEN"


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _control_token_option(help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--control-token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"{help_text} (or env {CONTROL_TOKEN_ENV}).",
    )


def _seconds_option(
    flag: str, default: float, help_text: str, *, zero_ok: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A duration in seconds: above 0 (or at least 0 with ``zero_ok``)."""
    return click.option(
        flag,
        default=default,
        show_default=True,
        type=click.FloatRange(min=0, min_open=not zero_ok),
        help=help_text,
    )


@click.group()
def emulator() -> None:
    """The local Messaging Window API emulator (consumer websocket, agent control API, CoBrowse)."""


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.option(
    "--jwt-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"HS256 secret for consumer JWTs (or env {JWT_SECRET_ENV}); none: dev mode, any well-formed JWT.",
)
@_seconds_option(
    "--invite-expiry", 120.0, "Seconds before an invitation that was not accepted closes as CLOSED."
)
@_seconds_option(
    "--init-timeout", 5.0, "Seconds a consumer websocket has to send InitConnection before it is closed."
)
@_seconds_option(
    "--signup-expiry",
    3600.0,
    "Seconds an IDP signup JWT is valid (short: exercise the consumer's renewal on 4401).",
    zero_ok=True,
)
@_control_token_option("Bearer token the control API requires; none: no token needed")
def serve(
    *,
    host: str,
    port: int,
    jwt_secret_file: Path | None,
    invite_expiry: float,
    init_timeout: float,
    signup_expiry: float,
    control_token_file: Path | None,
) -> None:
    """Serve the emulator (consumer websocket, control API, CoBrowse) until interrupted (Ctrl-C)."""
    from callops.orchestrator.cli.stopping import run_stoppable
    from callops.orchestrator.emulator import EmulatorConfig
    from callops.orchestrator.emulator.idp import IdentityConfig
    from callops.secret import load_secret

    secret = load_secret(file=jwt_secret_file, env=JWT_SECRET_ENV, what="JWT secret", required=False)
    token = load_secret(file=control_token_file, env=CONTROL_TOKEN_ENV, what="control token", required=False)
    config = EmulatorConfig(
        host=host,
        port=port,
        jwt_secret=secret,
        invite_expiry=invite_expiry,
        init_timeout=init_timeout,
        identity=IdentityConfig(signup_lifetime=signup_expiry),
        control_token=token,
    )
    _warn_open(host, secret, token)
    # Ctrl-C, SIGTERM (systemd, docker, kill) and SIGHUP stop alike: sockets closed, exit 128+signal
    _, stopped = run_stoppable(_run(config))
    if stopped is not None:
        click.echo(f"emulator stopped ({stopped.name})", err=True)
        raise stopped


def _warn_open(host: str, secret: Secret | None, token: Secret | None) -> None:
    """Warn on stderr about what anyone who can reach ``host`` could do, and about a weak secret."""
    from callops.orchestrator.emulator.auth import MIN_SECRET_BYTES, weak_secret

    if not _is_loopback(host):
        open_doors = []
        if secret is None:
            open_doors.append(f"no JWT secret: anyone can connect as any consumer ({JWT_SECRET_ENV})")
        if token is None:
            open_doors.append(f"no control token: anyone can invite and end calls ({CONTROL_TOKEN_ENV})")
        for door in open_doors:
            click.echo(f"warning: {host} is reachable from other machines and there is {door}", err=True)
    if secret is not None and weak_secret(secret):
        click.echo(
            f"warning: the JWT secret ({secret.source}) is shorter than {MIN_SECRET_BYTES} bytes, "
            "the least RFC 7518 asks of an HS256 key",
            err=True,
        )


async def _run(config: EmulatorConfig) -> None:
    """Serve until cancelled, after printing where."""
    from callops.orchestrator.emulator import Emulator

    emu = Emulator(config)
    await emu.start()
    secret, token = config.jwt_secret, config.control_token
    mode = f"HS256 ({secret.source})" if secret is not None else "dev mode (any well-formed JWT)"
    control = f"bearer token ({token.source})" if token is not None else "no token"
    click.echo(f"emulator on {emu.base_url} -- JWTs: {mode}; control API: {control}")
    click.echo(f"  consumer: {emu.consumer_url('ACCOUNT')}")
    click.echo(f"  cobrowse: {emu.cobrowse_url('ACCOUNT')}")
    click.echo(f"  control:  {emu.base_url}/control/accounts/ACCOUNT/conversations")
    click.echo(f"  csds:     {emu.base_url}  (callops consumer listen --account ACCOUNT --csds URL)")
    try:
        await emu.serve_forever()
    finally:
        await emu.stop()


@emulator.command()
@click.argument("url")
@click.option("--account", required=True, help="Account id, e.g. le83624296.")
@click.option("--conversation", required=True, help="Conversation id (see GET .../conversations).")
@click.option(
    "--mode",
    type=click.Choice(["VOICE_CALL", "VIDEO_CALL"]),
    default="VIDEO_CALL",
    show_default=True,
    help="The call's dialog metaData mode.",
)
@click.option("--cancel", is_flag=True, help="Cancel the invitation or hang up instead (DELETE).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@_seconds_option("--timeout", 10.0, "Seconds to wait for the control API's answer.")
@_control_token_option("The emulator's control API bearer token, if it has one")
def invite(
    url: str,
    *,
    account: str,
    conversation: str,
    mode: str,
    cancel: bool,
    as_json: bool,
    timeout: float,
    control_token_file: Path | None,
) -> None:
    """Invite the consumer of a conversation to a call, as the agent (POST .../call).

    URL is the emulator's base URL, e.g. http://127.0.0.1:8080.
    """
    from callops.orchestrator.emulator.control import ControlClient
    from callops.secret import load_secret

    token = load_secret(file=control_token_file, env=CONTROL_TOKEN_ENV, what="control token", required=False)
    if not url.startswith("http://"):
        raise UsageError(
            f"URL {url!r} must be the emulator's http:// base URL", hint="e.g. http://127.0.0.1:8080"
        )
    client = ControlClient(url, timeout=timeout, token=token)
    if cancel:
        call = asyncio.run(client.end_call(account, conversation))
        click.echo(call.model_dump_json() if as_json else f"call {call.serviceId}: {call.sessionState}")
        return
    invitation = asyncio.run(client.invite(account, conversation, mode))
    if as_json:
        click.echo(invitation.model_dump_json())
    else:
        click.echo(f"invited: serviceId {invitation.serviceId}")
        click.echo(f"         dialogId  {invitation.dialogId}")
        click.echo(f"         expires   {invitation.expires:.3f} (epoch s)")


__all__ = ["CONTROL_TOKEN_ENV", "JWT_SECRET_ENV", "emulator"]
