"""aioice glue of the two-site probe: one media-less ICE agent per path class.

:class:`IceSettings` says which STUN/TURN servers a site uses; :func:`make_connection` builds the
aioice ``Connection`` for a path class and role, :func:`signalled` picks the candidates that class
signals, :func:`negotiate` runs the checks and :func:`selected` reads the nominated pair.
aioice exceptions become :class:`~callops.errors.NetworkError` naming the class.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callops.errors import NetworkError, RemoteProtocolError, UsageError
from callops.orchestrator.probe.paths import CandidateSummary, PathClass
from callops.turn import stun as _hardened_stun_codec  # noqa: F401 - aioice's codec raises ValueError only
from callops.turn.uri import ServerUri

if TYPE_CHECKING:
    from aioice import Candidate, Connection

_PRIVATE = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7")
]
PING = b"callops-ping:"


@dataclass(frozen=True)
class IceSettings:
    """The servers and credentials one site's ICE agents use."""

    stun: ServerUri | None = None
    #: TURN URIs in preference order; the first is the site's default relay
    turn: Sequence[ServerUri] = ()
    username: str | None = None
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    #: host candidate addresses; ``None`` gathers on every interface (browser-like)
    host_addresses: Sequence[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def turn_over(self, transport: str) -> ServerUri | None:
        for uri in self.turn:
            if (transport == "tls" and uri.secure) or (not uri.secure and uri.transport == transport):
                return uri
        return None


def is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not ip.is_loopback and not any(ip in net for net in _PRIVATE)


def _turn_kwargs(uri: ServerUri, ice: IceSettings) -> dict[str, Any]:
    if ice.username is None or ice.password is None:
        raise UsageError(f"{uri.label}: no TURN credentials", hint="pass --secret-file or --password-file")
    secure: bool | ssl.SSLContext = False
    if uri.secure:
        secure = ice.ssl_context if ice.ssl_context is not None else True
    return {
        "turn_server": (uri.host, uri.port),
        "turn_username": ice.username,
        "turn_password": ice.password,
        "turn_ssl": secure,
        "turn_transport": uri.transport,
    }


def make_connection(path: PathClass, ice: IceSettings, *, controlling: bool) -> Connection:
    """The aioice ``Connection`` for ``path``: site A (``controlling``) or the responder (B)."""
    from aioice import Connection, TransportPolicy

    kwargs: dict[str, Any] = {"ice_controlling": controlling, "components": 1, "use_ipv6": False}
    stun = (ice.stun.host, ice.stun.port) if ice.stun is not None else None
    if path == "srflx":
        if stun is None:
            raise UsageError("the srflx path needs a STUN server", hint="pass --stun URI")
        kwargs["stun_server"] = stun
    elif path.startswith("relay-"):
        if controlling:
            transport = path.removeprefix("relay-")
            uri = ice.turn_over(transport)
            if uri is None:
                raise UsageError(f"no TURN URI over {transport} given", hint="pass --turn URI for it")
            kwargs.update(_turn_kwargs(uri, ice), transport_policy=TransportPolicy.RELAY)
        else:
            kwargs["stun_server"] = stun
            if ice.turn:
                kwargs.update(_turn_kwargs(ice.turn[0], ice))
    return Connection(**kwargs)


async def gather(connection: Connection, ice: IceSettings) -> None:
    """Gather candidates; on ``ice.host_addresses`` only when given (aioice's own loop otherwise)."""
    from aioice import TransportPolicy

    if ice.host_addresses is None:
        await connection.gather_candidates()
        return
    connection._local_candidates_start = True
    hosts = list(ice.host_addresses) if connection._transport_policy == TransportPolicy.ALL else []
    connection._local_candidates += await connection.get_component_candidates(component=1, addresses=hosts)
    connection._local_candidates_end = True


def signalled(path: PathClass, connection: Connection, *, controlling: bool) -> list[str]:
    """The local candidates (SDP ``candidate`` values) that ``path`` signals to the other site."""
    out = []
    for c in connection.local_candidates:
        if path == "host":
            keep = c.type == "host"
        elif path == "srflx":
            keep = c.type == "srflx" or (c.type == "host" and is_public(c.host))
        else:
            keep = c.type == "relay" if controlling else True
        if keep:
            out.append(c.to_sdp())
    return out


async def negotiate(
    connection: Connection,
    remote_ufrag: str,
    remote_pwd: str,
    remote_candidates: Sequence[str],
    within: float,
    *,
    label: str,
) -> None:
    """Add the remote side and run ICE checks to a nominated pair within ``within`` seconds."""
    from aioice import Candidate

    connection.remote_username = remote_ufrag
    connection.remote_password = remote_pwd
    try:
        for sdp in remote_candidates:
            await connection.add_remote_candidate(Candidate.from_sdp(sdp))
        await connection.add_remote_candidate(None)
        await asyncio.wait_for(connection.connect(), max(0.001, within))
    except TimeoutError:
        raise NetworkError(f"{label}: ICE did not connect within {within:.1f} s") from None
    except (ConnectionError, OSError, ValueError) as exc:
        raise NetworkError(f"{label}: ICE failed: {exc or exc.__class__.__name__}") from None
    except (IndexError, KeyError, TypeError) as exc:  # aioice's Candidate.from_sdp on a malformed line
        raise RemoteProtocolError(f"{label}: malformed remote candidate ({exc.__class__.__name__})") from None


def _summary(candidate: Candidate, protocol: str = "udp") -> CandidateSummary:
    return CandidateSummary(
        type=str(candidate.type), address=f"{candidate.host}:{candidate.port}", protocol=protocol
    )


def selected(
    connection: Connection, *, relay_protocol: str = "udp"
) -> tuple[CandidateSummary, CandidateSummary] | None:
    """The nominated pair of component 1 as ``(local, remote)``, or ``None`` (aioice internals)."""
    pair = getattr(connection, "_nominated", {}).get(1)
    if pair is None:
        return None
    local = pair.local_candidate
    return _summary(local, relay_protocol if local.type == "relay" else "udp"), _summary(
        pair.remote_candidate
    )


async def measure_rtt(connection: Connection, *, count: int, within: float) -> float | None:
    """Median RTT (ms) of ``count`` pings over the nominated pair, echoed by the other site."""
    rtts: list[float] = []
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(max(0.001, within)):
            for seq in range(count):
                payload = PING + str(seq).encode()
                sent = time.monotonic()
                await connection.send(payload)
                while await connection.recv() != payload:
                    pass
                rtts.append((time.monotonic() - sent) * 1000)
    return round(statistics.median(rtts), 3) if rtts else None


async def echo(connection: Connection) -> None:
    """Echo every ping and every bandwidth flow packet back until the connection closes (the
    responder's side of :func:`measure_rtt` and of :func:`callops.turn.bandwidth.echo_flow`)."""
    from callops.turn.bandwidth import is_flow_packet

    while True:
        try:
            data = await connection.recv()
        except ConnectionError:
            return
        if data.startswith(PING) or is_flow_packet(data):
            await connection.send(data)


__all__ = [
    "PING",
    "IceSettings",
    "echo",
    "gather",
    "is_public",
    "make_connection",
    "measure_rtt",
    "negotiate",
    "selected",
    "signalled",
]
