"""Where calls run: an emulator (given or in-process) and STUN/TURN servers (given or embedded).

``callops call`` with no options is the README's demo: an in-process emulator on 127.0.0.1, and,
if coturn's ``turnserver`` is on PATH, a loopback coturn with a generated config and a fresh
secret (stopped afterwards); otherwise the call runs host-only and says so in ``notes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from callops.errors import UsageError
from callops.orchestrator.call.embedded import EmbeddedTurn, available
from callops.orchestrator.call.peer import IceServer, check_ice_servers
from callops.orchestrator.call.runs import CallEnvironment
from callops.secret import Secret

log = logging.getLogger(__name__)

#: the TURN REST user name callops uses for its own calls
REST_USER = "callops"
#: lifetime of the REST credentials generated for one run
REST_TTL = 3600
#: the agent identity callops' headless agent authenticates as when the emulator checks tokens
AGENT_ID = "callops-agent"


@dataclass
class EnvironmentRequest:
    """What the user asked for; anything left out is embedded."""

    emulator_url: str | None = None
    stun_url: str | None = None
    turn_url: str | None = None
    #: TURN REST shared secret (``--secret-file``) ...
    turn_secret: Secret | None = None
    #: ... or long-term credentials (``--user`` + ``--password-file``)
    turn_user: str | None = None
    turn_password: Secret | None = None
    #: embedded emulator's invitation expiry
    invite_expiry_s: float = 120.0
    #: start a loopback coturn when no --turn is given (if turnserver is installed)
    embedded_turn: bool = True
    jwt_secret: Secret | None = None


def turn_server(url: str, *, secret: Secret | None, user: str | None, password: Secret | None) -> IceServer:
    """An ICE server entry for a TURN URL with REST or long-term credentials."""
    from callops.turn.credentials import rest_credentials
    from callops.turn.uri import parse_uri

    uri = parse_uri(url)
    if not uri.is_turn:
        raise UsageError(f"--turn {url}: not a turn:/turns: URI", hint="e.g. turn:127.0.0.1:3478")
    if secret is not None:
        creds = rest_credentials(secret, user or REST_USER, ttl=REST_TTL)
        return IceServer(str(uri), creds.username, Secret(creds.credential, "REST credential"))
    if user is None or password is None:
        raise UsageError(
            f"--turn {url}: no credentials", hint="give --secret-file, or --user with --password-file"
        )
    return IceServer(str(uri), user, password)


async def _turn(
    request: EnvironmentRequest, stack: contextlib.AsyncExitStack, servers: list[IceServer], notes: list[str]
) -> str | None:
    """The TURN server of the call: the one given, or an embedded coturn (stopped by ``stack``)."""
    if request.turn_url is not None:
        servers.append(
            turn_server(
                request.turn_url,
                secret=request.turn_secret,
                user=request.turn_user,
                password=request.turn_password,
            )
        )
        return request.turn_url
    if not (request.embedded_turn and available()):
        if request.embedded_turn:
            notes.append("no TURN server: coturn's turnserver is not installed, the call runs host-only")
        else:
            notes.append("no TURN server given: the call runs host-only")
        return None
    embedded = EmbeddedTurn()
    stack.callback(embedded.stop)
    starting = asyncio.ensure_future(asyncio.to_thread(embedded.start))
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        # Ctrl-C while coturn starts: let the start finish so that stop() finds the process
        with contextlib.suppress(Exception):
            await starting
        raise
    servers.append(turn_server(embedded.url, secret=embedded.secret, user=None, password=None))
    notes.append(f"embedded coturn on {embedded.url} (loopback, fresh secret)")
    return embedded.url


@contextlib.asynccontextmanager
async def call_environment(request: EnvironmentRequest) -> AsyncIterator[CallEnvironment]:
    """Start what is embedded, yield the environment, stop it again (also on errors and Ctrl-C)."""
    notes: list[str] = []
    servers: list[IceServer] = []
    if request.stun_url is not None:
        from callops.turn.uri import parse_uri

        uri = parse_uri(request.stun_url)
        if uri.is_turn:
            raise UsageError(f"--stun {request.stun_url}: a turn: URI", hint="use --turn for TURN servers")
        servers.append(IceServer(str(uri)))
    if request.emulator_url is not None and not request.emulator_url.startswith("http://"):
        # checked before anything starts (no coturn started for nothing)
        raise UsageError(
            f"--emulator {request.emulator_url}: must be http://HOST:PORT",
            hint="the base URL printed by `callops emulator serve`",
        )
    async with contextlib.AsyncExitStack() as stack:
        turn_url = await _turn(request, stack, servers, notes)
        check_ice_servers(servers)
        if request.emulator_url is not None:
            base_url = request.emulator_url.rstrip("/")
        else:
            from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

            emulator = Emulator(
                EmulatorConfig(invite_expiry=request.invite_expiry_s, jwt_secret=request.jwt_secret)
            )
            await emulator.start()
            stack.push_async_callback(emulator.stop)
            base_url = emulator.base_url
            notes.append(f"embedded emulator on {base_url}")
        agent_token = None
        if request.jwt_secret is not None:
            import time

            from callops.orchestrator.emulator.auth import mint_jwt

            # with a secret the emulator wants an HS256 agent token too (its sub is the agent id)
            agent_token = Secret(mint_jwt(AGENT_ID, request.jwt_secret, now=time.time()), "agent token")
        yield CallEnvironment(
            base_url=base_url,
            ice_servers=servers,
            jwt_secret=request.jwt_secret,
            agent_token=agent_token,
            turn_url=turn_url,
            notes=notes,
        )


__all__ = ["AGENT_ID", "REST_TTL", "REST_USER", "EnvironmentRequest", "call_environment", "turn_server"]
