"""``callops turn creds|probe|audit``: TURN REST credentials, STUN/TURN probes, the relay audit.

Thin commands: parse, call :mod:`callops.turn`, render. Heavy modules (aioice, pydantic models of
the probes) are imported inside the commands, so ``callops --help`` stays fast. Secrets come only
from files (``--secret-file``, ``--password-file``) or the environment (``CALLOPS_TURN_SECRET``,
``CALLOPS_TURN_PASSWORD``), never from a command-line value.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TypedDict, TypeVar, Unpack

import click

from callops.errors import UsageError
from callops.secret import load_secret

SECRET_ENV = "CALLOPS_TURN_SECRET"
PASSWORD_ENV = "CALLOPS_TURN_PASSWORD"
#: REST user name of probes and audits when --user is not given
DEFAULT_PROBE_USER = "callops-probe"
#: lifetime of the REST credentials a probe or audit makes for itself
PROBE_TTL = 600

_secret_file = click.option(
    "--secret-file",
    type=click.Path(dir_okay=False),
    help=f"File with the TURN REST shared secret (coturn static-auth-secret); or set {SECRET_ENV}.",
)
_password_file = click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help=f"File with a long-term TURN password (with --user); or set {PASSWORD_ENV}.",
)
_user = click.option(
    "--user",
    help=f"REST user name (with a secret; default {DEFAULT_PROBE_USER}), "
    "or long-term user name (with a password).",
)
_ca_file = click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, exists=True),
    help="CA certificate(s) for turns:/stuns: (PEM).",
)
_insecure = click.option(
    "--insecure", is_flag=True, help="Do not verify the TLS certificate (turns:/stuns:)."
)
_timeout = click.option(
    "--timeout", type=click.FloatRange(0.05, 120), default=5.0, show_default=True, help="Deadline in seconds."
)
_json = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")

F = TypeVar("F", bound=Callable[..., object])


class RelayAccess(TypedDict):
    """The options of a command that talks to a relay: credentials, TLS trust, one deadline."""

    secret_file: str | None
    user: str | None
    password_file: str | None
    ca_file: str | None
    insecure: bool
    timeout: float


def _relay_access(command: F) -> F:
    """Add the :class:`RelayAccess` options to ``command``."""
    for option in reversed((_secret_file, _user, _password_file, _ca_file, _insecure, _timeout)):
        command = option(command)
    return command


def turn_credentials(
    *, user: str | None, secret_file: str | None, password_file: str | None, required: bool
) -> tuple[str, str] | None:
    """``(username, password)`` from a long-term password or REST credentials from a shared secret."""
    import os

    from callops.turn.credentials import rest_credentials

    if password_file is not None or (secret_file is None and os.environ.get(PASSWORD_ENV) and user):
        if not user:
            raise UsageError(
                "--password-file needs --user", hint="the long-term user name the password belongs to"
            )
        password = load_secret(file=password_file, env=PASSWORD_ENV, what="TURN password")
        assert password is not None
        return user, password.reveal()
    secret = load_secret(file=secret_file, env=SECRET_ENV, what="TURN shared secret", required=required)
    if secret is None:
        return None
    creds = rest_credentials(secret, user or DEFAULT_PROBE_USER, ttl=PROBE_TTL)
    return creds.username, creds.credential


def _credentials(access: RelayAccess, *, required: bool) -> tuple[str, str] | None:
    return turn_credentials(
        user=access["user"],
        secret_file=access["secret_file"],
        password_file=access["password_file"],
        required=required,
    )


def _parse_peer(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"--peer {text!r} is not HOST:PORT", hint="e.g. --peer 198.51.100.7:9 or [2001:db8::7]:9"
        )
    return host, int(port)


@click.command()
@_secret_file
@click.option("--user", required=True, help="User name the credentials are for (no ':').")
@click.option("--ttl", type=click.IntRange(1), default=86400, show_default=True, help="Lifetime in seconds.")
@click.option(
    "--uri", "uris", multiple=True, required=True, help="TURN/STUN URI for iceServers (repeatable)."
)
@_json
def creds(secret_file: str | None, user: str, ttl: int, uris: tuple[str, ...], as_json: bool) -> None:
    """TURN REST API credentials: username <expiry>:<user>, password base64(HMAC-SHA1(secret, username)).

    \b
    callops turn creds --secret-file /etc/coturn/turn-secret --user agent-42 \\
        --uri turn:turn.example.com:3478 --uri 'turns:turn.example.com:443?transport=tcp' --json
    """
    from callops.turn.credentials import credentials_document, rest_credentials

    secret = load_secret(file=secret_file, env=SECRET_ENV, what="TURN shared secret")
    assert secret is not None
    document = credentials_document(rest_credentials(secret, user, ttl=ttl), uris)
    if as_json:
        click.echo(document.model_dump_json(by_alias=True, indent=2))
        return
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(document.username.split(":", 1)[0])))
    click.echo(f"username:   {document.username}")
    click.echo(f"credential: {document.credential}")
    click.echo(f"expires:    {expires} (ttl {document.ttl} s)")
    for url in document.uris:
        click.echo(f"uri:        {url}")


@click.command()
@click.argument("uris", nargs=-1, required=True)
@_relay_access
@click.option("--nat", is_flag=True, help="Also run RFC 5780 NAT behaviour discovery (first UDP server).")
@click.option("--no-relay", is_flag=True, help="Skip the relay data test.")
@click.option("--no-stun-tcp", is_flag=True, help="Skip STUN over TCP for stun: URIs.")
@click.option(
    "--count", type=click.IntRange(1, 1000), default=10, show_default=True, help="Relay test packets."
)
@click.option("--peer", help="Echo peer HOST:PORT for the relay test (default: a second allocation).")
@_json
def probe(
    *,
    uris: tuple[str, ...],
    nat: bool,
    no_relay: bool,
    no_stun_tcp: bool,
    count: int,
    peer: str | None,
    as_json: bool,
    **access: Unpack[RelayAccess],
) -> None:
    """STUN bindings, TURN allocations, a relay data test (and --nat) -- concurrently, by one deadline.

    \b
    callops turn probe stun:turn.example.com:3478 turn:turn.example.com:3478 \\
        'turn:turn.example.com:3478?transport=tcp' turns:turn.example.com:443 --secret-file secret

    Exit code 0 when no probe failed, 1 otherwise.
    """
    from callops.turn.probes import run_probe_set
    from callops.turn.uri import parse_uri

    parsed = [parse_uri(u) for u in uris]
    credentials = _credentials(access, required=False)
    username, password = credentials if credentials else (None, None)
    result = asyncio.run(
        run_probe_set(
            parsed,
            username=username,
            password=password,
            timeout=access["timeout"],
            ca_file=access["ca_file"],
            insecure=access["insecure"],
            stun_tcp=not no_stun_tcp,
            nat=nat,
            relay=not no_relay,
            relay_peer=_parse_peer(peer),
            relay_count=count,
        )
    )
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        for r in result.results:
            text = r.error if r.error else r.detail
            click.echo(f"{r.status.value:<12} {r.kind:<9} {r.target:<45} {r.duration_ms:8.1f} ms  {text}")
        click.echo(
            f"{len(result.results)} probes in {result.duration_ms:.1f} ms, {len(result.failed)} failed"
        )
    if result.failed:
        sys.exit(1)


@click.command()
@click.argument("uri")
@_relay_access
@_json
def audit(
    *,
    uri: str,
    as_json: bool,
    **access: Unpack[RelayAccess],
) -> None:
    """Check that a TURN server YOU OPERATE refuses to relay to loopback, private and metadata addresses.

    With valid credentials, asks for a permission to each forbidden peer (127.0.0.1, ::1, 0.0.0.0,
    10.0.0.1, 172.16.0.1, 192.168.0.1, 169.254.169.254, 100.64.0.1, 224.0.0.1, 255.255.255.255 and
    the server's own addresses). No scanning: one request per target, data only to our own echo peer.

    Exit code 1 if any forbidden target is permitted.
    """
    from callops.turn.audit import audit_server
    from callops.turn.tls import client_context
    from callops.turn.uri import parse_uri

    server = parse_uri(uri)
    if not server.is_turn:
        raise UsageError(f"audit needs a turn: or turns: URI, not {uri!r}")
    credentials = _credentials(access, required=True)
    assert credentials is not None
    context = client_context(access["ca_file"], insecure=access["insecure"]) if server.secure else None
    report = asyncio.run(audit_server(server, *credentials, timeout=access["timeout"], ssl_context=context))
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(f"audit of {report.server} (listening {report.listening}, relayed {report.relayed})")
        for f in report.findings:
            mark = "PERMITTED" if f.permitted else f.outcome
            click.echo(f"  {mark:<15} {f.ip:<16} {f.why}")
            if f.permitted or f.outcome == "no-answer":
                click.echo(f"  {'':<15} {'':<16} {f.detail}")
        verdict = "FAIL" if report.permitted else "PASS"
        click.echo(
            f"{verdict}: {len(report.permitted)} of {len(report.findings)} forbidden targets permitted"
        )
    if report.permitted:
        sys.exit(1)


__all__ = ["audit", "creds", "probe", "turn_credentials"]
