"""STUN/TURN probes: each returns a typed result, never raises, and ends within its timeout.

:data:`ProbeResult` is a discriminated union on ``kind``: :class:`StunResult`, :class:`NatResult`,
:class:`AllocationResult`, :class:`RelayTestResult` (and, from :mod:`callops.turn.tls` and
:mod:`callops.turn.bandwidth`, TLS and bandwidth results). Each carries its findings as a typed
``data`` model, so the verdict reads attributes; ``data`` serialises without its unset (``None``)
fields, which keeps the JSON of ``callops turn probe --json`` as it was.

* :func:`stun_binding` -- Binding over UDP, TCP or TLS: mapped address and round-trip time.
* :func:`nat_behaviour` -- RFC 5780 mapping and filtering (see :mod:`callops.turn.nat`).
* :func:`turn_allocation` -- Allocate over UDP, TCP or TLS with REST or long-term credentials.
* :func:`relay_data_test` -- packets through an allocation to an echoing peer and back.
* :func:`run_probe_set` -- all of them concurrently under ONE deadline: what is unanswered at the
  deadline is a failure at the deadline, never later.

Errors are sentences a network engineer understands ("TURN/TLS 127.0.0.1:5349: connection refused",
"401: credentials rejected -- check the shared secret and clock skew").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel

from callops.errors import CallopsError, RemoteProtocolError
from callops.turn.results import (
    AllocationData,
    AllocationResult,
    BandwidthResult,
    NatData,
    NatResult,
    ProbeData,
    ProbeResult,
    ProbeStatus,
    RelayData,
    RelayTestResult,
    RelayTransport,
    StunData,
    StunResult,
    TlsResult,
)
from callops.turn.stun import (
    Address,
    StunUdpClient,
    binding_request,
    format_address,
    mapped_address,
    resolve,
    stream_exchange,
)
from callops.turn.uri import ServerUri, parse_uri

if TYPE_CHECKING:
    from callops.turn.allocation import Allocation
    from callops.turn.relay import RelayResult, RelayStats

log = logging.getLogger(__name__)

#: Packets sent by the relay data test unless told otherwise.
DEFAULT_RELAY_PACKETS = 10


class ProbeSet(BaseModel):
    """The results of :func:`run_probe_set`."""

    results: list[ProbeResult]
    duration_ms: float
    timeout_s: float

    @property
    def failed(self) -> list[ProbeResult]:
        return [r for r in self.results if r.status is ProbeStatus.FAIL]


R = TypeVar("R", StunResult, NatResult, AllocationResult, RelayTestResult, TlsResult, BandwidthResult)
#: what a probe body finds: status, one-line detail (with ``fail``: the error sentence), typed data
Outcome = tuple[ProbeStatus, str, ProbeData]


def _as_uri(uri: ServerUri | str) -> ServerUri:
    return uri if isinstance(uri, ServerUri) else parse_uri(uri)


async def _probe(
    result: type[R],
    kind: str,
    uri: ServerUri,
    timeout: float,
    body: Callable[[float], Awaitable[Outcome]],
    *,
    base: ProbeData,
    name: str | None = None,
) -> R:
    """Run ``body(deadline)`` under ``timeout``; every failure becomes a ``fail`` result.

    ``base`` is the data a failed result carries (what was known before the probe ran); ``name``
    replaces ``kind`` at the start of the result's name.
    """
    started = time.monotonic()
    name = f"{name or kind} {uri}"
    error: str | None = None
    try:
        async with asyncio.timeout(max(0.001, timeout)):
            status, detail, data = await body(started + timeout)
        if status is ProbeStatus.FAIL:
            detail, error = "", detail
    except CallopsError as exc:
        status, detail, data, error = ProbeStatus.FAIL, "", _error_data(base, exc), str(exc)
    except TimeoutError:
        status, detail, data = ProbeStatus.FAIL, "", base
        error = f"{uri.label}: no answer within {timeout:.1f} s (is the server up, and is the port open?)"
    except Exception as exc:  # a bug or an unexpected library error: report, do not crash the set
        log.debug("probe %s crashed", name, exc_info=True)
        status, detail, data = ProbeStatus.FAIL, "", base
        error = f"{uri.label}: unexpected {exc.__class__.__name__}: {exc}"
    duration_ms = round((time.monotonic() - started) * 1000, 3)
    log.info("probe %s: %s in %.1f ms %s", name, status.value, duration_ms, error or detail)
    return result.model_validate(
        {
            "name": name,
            "kind": kind,
            "target": str(uri),
            "status": status,
            "duration_ms": duration_ms,
            "detail": detail,
            "error": error,
            "data": data,
        }
    )


#: for the probes of :mod:`callops.turn.tls` and :mod:`callops.turn.bandwidth`
run_probe = _probe


def _error_data(base: ProbeData, exc: CallopsError) -> ProbeData:
    code = getattr(exc, "code", None)
    return base.model_copy(update={"error_code": code}) if isinstance(code, int) else base


def relay_transport(uri: ServerUri) -> RelayTransport:
    """How a client reaches a TURN server: ``turns:`` is ``tls``, else the URI's transport."""
    return "tls" if uri.secure else uri.transport


def _remaining(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


def _ssl_context(
    uri: ServerUri, ssl_context: ssl.SSLContext | None, ca_file: str | os.PathLike[str] | None, insecure: bool
) -> ssl.SSLContext | None:
    if not uri.secure:
        return None
    if ssl_context is not None:
        return ssl_context
    from callops.turn.tls import client_context

    return client_context(ca_file, insecure=insecure)


async def stun_binding(
    uri: ServerUri | str,
    timeout: float,
    *,
    transport: Literal["udp", "tcp"] | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> StunResult:
    """A STUN Binding request over the URI's transport (or ``transport``): mapped address and RTT."""
    server_uri = _as_uri(uri)
    use = transport or server_uri.transport
    if use != server_uri.transport:
        server_uri = server_uri.model_copy(update={"transport": use, "transport_given": True})
    kind = "stun-tls" if server_uri.secure else f"stun-{use}"

    async def body(deadline: float) -> Outcome:
        server = await resolve(
            server_uri.host, server_uri.port, timeout=_remaining(deadline), label=server_uri.label
        )
        if use == "udp":
            client = await StunUdpClient.open(remote=server)
            try:
                sent = time.monotonic()
                # Ends a little before the probe's deadline, so that invalid answers that came
                # instead of a valid one are reported as such rather than as "no answer".
                response, _ = await client.request(
                    binding_request(),
                    server,
                    timeout=max(0.001, _remaining(deadline) - 0.05),
                    label=server_uri.label,
                )
                rtt_ms = (time.monotonic() - sent) * 1000
            finally:
                client.close()
            data = StunData(rtt_ms=round(rtt_ms, 3))
        else:
            context = _ssl_context(server_uri, ssl_context, ca_file, insecure)
            response, connect_s, rtt_s = await stream_exchange(
                server,
                binding_request(),
                timeout=_remaining(deadline),
                label=server_uri.label,
                ssl_context=context,
                server_hostname=server_uri.host,
            )
            rtt_ms = rtt_s * 1000
            data = StunData(rtt_ms=round(rtt_ms, 3), connect_ms=round(connect_s * 1000, 3))
        mapped = mapped_address(response)
        if mapped is None:
            raise RemoteProtocolError(
                f"{server_uri.label}: Binding success response without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS"
            )
        data.mapped = format_address(mapped)
        other = response.attributes.get("OTHER-ADDRESS")
        if other:
            data.other_address = format_address((str(other[0]), int(other[1])))
        return ProbeStatus.OK, f"mapped {data.mapped}, rtt {rtt_ms:.1f} ms", data

    return await _probe(StunResult, kind, server_uri, timeout, body, base=StunData())


async def nat_behaviour(uri: ServerUri | str, timeout: float) -> NatResult:
    """RFC 5780 mapping and filtering behaviour through the NAT between here and ``uri`` (UDP)."""
    from callops.turn.nat import discover
    from callops.turn.nat_behaviour import Behaviour

    server_uri = _as_uri(uri)

    async def body(deadline: float) -> Outcome:
        if server_uri.transport != "udp":
            return ProbeStatus.SKIPPED, "RFC 5780 discovery runs over UDP only", NatData()
        server = await resolve(
            server_uri.host, server_uri.port, timeout=_remaining(deadline), label=server_uri.label
        )
        # Leave a little of the budget for building the result: the tests end before the deadline.
        report = await discover(
            server, timeout=max(0.001, _remaining(deadline) - 0.02), label=server_uri.label
        )
        data = NatData(
            mapping=report.mapping.behaviour,
            filtering=report.filtering.behaviour,
            nat=report.nat,
            mapped=report.mapped,
            other_address=report.other_address,
            mapping_reason=report.mapping.reason,
            filtering_reason=report.filtering.reason,
            test_errors=report.test_errors or None,
        )
        behaviours = {report.mapping.behaviour, report.filtering.behaviour}
        detail = f"mapping {report.mapping.behaviour.value}, filtering {report.filtering.behaviour.value}"
        if report.mapped is None:
            if "test1" in report.test_errors:
                raise RemoteProtocolError(report.test_errors["test1"])
            raise CallopsError(f"{server_uri.label}: no answer to the STUN Binding request (RFC 5780 test I)")
        if Behaviour.SKIPPED in behaviours:
            data.other_address_refused = report.other_address_refused
            return ProbeStatus.SKIPPED, report.mapping.reason, data
        if Behaviour.UNSUPPORTED in behaviours:
            return ProbeStatus.SKIPPED, "server does not support RFC 5780 (no OTHER-ADDRESS)", data
        if Behaviour.INCONCLUSIVE in behaviours:
            verdicts = (report.mapping, report.filtering)
            reasons = "; ".join(
                [v.reason for v in verdicts if v.behaviour is Behaviour.INCONCLUSIVE]
                + [f"{test}: {error}" for test, error in report.test_errors.items()]
            )
            return ProbeStatus.INCONCLUSIVE, f"{detail} ({reasons})", data
        return ProbeStatus.OK, detail, data

    return await _probe(NatResult, "nat", server_uri, timeout, body, base=NatData())


async def turn_allocation(
    uri: ServerUri | str,
    username: str | None,
    password: str | None,
    timeout: float,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> AllocationResult:
    """Allocate a UDP relay over the URI's transport; time to allocate includes the 401 round."""
    from callops.turn.allocation import Allocation

    server_uri = _as_uri(uri)
    transport = relay_transport(server_uri)
    kind = f"turn-{transport}"

    async def body(deadline: float) -> Outcome:
        if username is None or password is None:
            return ProbeStatus.SKIPPED, "no TURN credentials given", AllocationData(transport=transport)
        context = _ssl_context(server_uri, ssl_context, ca_file, insecure)
        allocation = await Allocation.open(
            server_uri, username, password, timeout=_remaining(deadline), ssl_context=context
        )
        try:
            data = AllocationData(
                relayed=format_address(allocation.relayed),
                mapped=format_address(allocation.mapped),
                allocate_ms=round(allocation.allocate_ms or 0.0, 3),
                lifetime=allocation.lifetime,
                transport=transport,
            )
            await allocation.release(timeout=min(0.5, _remaining(deadline)))
        finally:
            allocation.close()
        return (
            ProbeStatus.OK,
            f"relayed {data.relayed}, mapped {data.mapped}, {data.allocate_ms:.1f} ms",
            data,
        )

    return await _probe(
        AllocationResult, kind, server_uri, timeout, body, base=AllocationData(transport=transport)
    )


async def _permit(allocation: Allocation, peer_ip: str, deadline: float, what: str) -> None:
    """CreatePermission for the relay test; a 403 says why the peer may be refused and what to do."""
    from callops.turn.allocation import TurnRequestFailed
    from callops.turn.ranges import special_range_of

    try:
        await allocation.create_permission(peer_ip, timeout=_remaining(deadline))
    except TurnRequestFailed as exc:
        if exc.code != 403:
            raise
        special = special_range_of(peer_ip)
        if special is None:
            raise
        raise TurnRequestFailed(
            allocation.uri.label,
            f"CreatePermission {peer_ip}",
            exc.code,
            exc.reason,
            hint=f"{peer_ip} ({what}) is in {special.network} ({special.name}), which a secure relay denies "
            "(denied-peer-ip) -- run the relay test against a public echo peer with --peer HOST:PORT",
        ) from exc


@contextlib.asynccontextmanager
async def relay_pair(
    uri: ServerUri,
    username: str,
    password: str,
    deadline: float,
    *,
    ssl_context: ssl.SSLContext | None = None,
    peer: Address | None = None,
) -> AsyncIterator[tuple[Allocation, Address, Allocation | None]]:
    """``(sender, target, echo)``: an allocation on ``uri`` permitted to send to ``target``.

    Without ``peer`` a second allocation on the same server is the target (``echo``, permitted
    back), so a test needs nothing but the server. Both are released (bounded by ``deadline``)
    and closed on exit.
    """
    from callops.turn.allocation import Allocation

    async def allocate() -> Allocation:
        return await Allocation.open(
            uri, username, password, timeout=_remaining(deadline), ssl_context=ssl_context
        )

    allocations: list[Allocation] = []
    try:
        if peer is None:
            opened = await asyncio.gather(allocate(), allocate(), return_exceptions=True)
            allocations = [a for a in opened if isinstance(a, Allocation)]
            for item in opened:
                if isinstance(item, BaseException):
                    raise item
            sender, echo = allocations
            assert sender.relayed is not None and echo.relayed is not None
            await asyncio.gather(
                _permit(sender, echo.relayed[0], deadline, "the second allocation's relayed address"),
                _permit(echo, sender.relayed[0], deadline, "the first allocation's relayed address"),
            )
            yield sender, echo.relayed, echo
        else:
            sender = await allocate()
            allocations = [sender]
            await _permit(sender, peer[0], deadline, "the --peer address")
            yield sender, peer, None
        await asyncio.gather(*(a.release(timeout=min(0.2, _remaining(deadline))) for a in allocations))
    finally:
        for allocation in allocations:
            allocation.close()


async def relay_data_test(
    uri: ServerUri | str,
    username: str | None,
    password: str | None,
    timeout: float,
    *,
    peer: Address | None = None,
    count: int = DEFAULT_RELAY_PACKETS,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> RelayTestResult:
    """``count`` packets through an allocation on ``uri`` to an echoing peer and back: loss and RTT.

    ``peer`` is a UDP echo server's address; without it a second allocation on the same server
    echoes (so the test needs nothing but the server; the server must allow relay-to-relay traffic).
    """
    from callops.turn.relay import echo_through, round_trips

    server_uri = _as_uri(uri)
    transport = relay_transport(server_uri)

    async def body(deadline: float) -> Outcome:
        if username is None or password is None:
            return ProbeStatus.SKIPPED, "no TURN credentials given", RelayData(transport=transport)
        context = _ssl_context(server_uri, ssl_context, ca_file, insecure)
        async with relay_pair(server_uri, username, password, deadline, ssl_context=context, peer=peer) as (
            sender,
            target,
            echo,
        ):
            if echo is not None:
                echo_through(echo)
            # Leave time to release the allocations before the deadline.
            result = await round_trips(
                sender, target, count=count, timeout=max(0.001, _remaining(deadline) - 0.05)
            )
        base = RelayData(transport=transport, peer="allocation" if echo is not None else "address")
        data = _relay_data(base, result, target, server_uri.label, _NOTHING_BACK["relay"])
        detail = (
            f"{result.received}/{result.sent} back, loss {result.loss:.0%}, rtt p50 {result.rtt_ms_p50} ms"
        )
        return ProbeStatus.OK, detail, data

    return await _probe(
        RelayTestResult, "relay", server_uri, timeout, body, base=RelayData(transport=transport)
    )


class _HostSocket(asyncio.DatagramProtocol):
    """This site's own UDP socket for :func:`relay_reach_test`: records the numbered echoes."""

    def __init__(self, stats: RelayStats, done: asyncio.Event, count: int) -> None:
        self.stats, self.done, self.count = stats, done, count

    def datagram_received(self, data: bytes, addr: object) -> None:
        from callops.turn.relay import packet_seq

        seq = packet_seq(data)
        if seq is not None:
            self.stats.received(seq, time.monotonic())
            if len(self.stats.received_at) == self.count:
                self.done.set()


#: per relay probe, the error when no packet came back: what was lost (``{peer}`` to fill in), the hint
_NOTHING_BACK: dict[str, tuple[str, str]] = {
    "relay": (
        "no packet came back through the relay from {peer}",
        "the server may refuse relaying to that peer (denied-peer-ip) or drop the data",
    ),
    "relay-range": (
        "UDP from this site to the relayed address {peer} did not come back",
        "allow outbound UDP to the relay servers' media port range",
    ),
}


def _relay_data(
    base: RelayData, result: RelayResult, peer: Address, label: str, nothing_back: tuple[str, str]
) -> RelayData:
    """``base`` with the numbers of the packets sent to ``peer`` and echoed back; when none came
    back, :class:`CallopsError` from ``nothing_back`` (a row of :data:`_NOTHING_BACK`)."""
    if result.received == 0:
        lost, hint = nothing_back
        lost = lost.format(peer=format_address(peer))
        raise CallopsError(f"{label}: {lost} ({result.sent} sent)", hint=hint)
    return base.model_copy(
        update={
            "sent": result.sent,
            "received": result.received,
            "loss": result.loss,
            "rtt_ms": result.rtt_ms_p50,
            "rtt_ms_max": result.rtt_ms_max,
            "peer_address": format_address(peer),
        }
    )


async def _send_from_host(relayed: Address, count: int, deadline: float) -> RelayResult:
    """``count`` numbered packets from a plain UDP socket of this site to ``relayed``, echoed back."""
    from callops.turn.relay import RelayStats, relay_packet

    stats, done = RelayStats(), asyncio.Event()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _HostSocket(stats, done, count), remote_addr=relayed
    )
    try:
        for seq in range(count):
            stats.sent(seq, time.monotonic())
            transport.sendto(relay_packet(seq))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.001, _remaining(deadline) - 0.25)):
                await done.wait()
    finally:
        transport.close()
    return stats.result()


async def relay_reach_test(
    uri: ServerUri | str,
    username: str | None,
    password: str | None,
    timeout: float,
    *,
    count: int = 5,
    ssl_context: ssl.SSLContext | None = None,
) -> RelayTestResult:
    """Can this site send UDP to a relayed address (the relay's media port range) and get it back?

    What a peer does when the *other* side relays: it sends from its host candidate straight to the
    other side's relayed address, a port in the server's relay range. One allocation on ``uri``
    permits this site's public address and echoes; a plain UDP socket here sends ``count`` packets to
    the relayed address. Named ``relay-range``; its ``peer`` is ``host``.
    """
    from callops.turn.allocation import Allocation
    from callops.turn.relay import echo_through

    server_uri = _as_uri(uri)
    transport = relay_transport(server_uri)
    base = RelayData(transport=transport, peer="host")

    async def body(deadline: float) -> Outcome:
        if username is None or password is None:
            return ProbeStatus.SKIPPED, "no TURN credentials given", base
        context = _ssl_context(server_uri, ssl_context, None, False)
        allocation = await Allocation.open(
            server_uri, username, password, timeout=_remaining(deadline), ssl_context=context
        )
        try:
            assert allocation.relayed is not None and allocation.mapped is not None
            relayed = allocation.relayed
            await _permit(allocation, allocation.mapped[0], deadline, "this site's public address")
            echo_through(allocation)
            result = await _send_from_host(relayed, count, deadline)
            await allocation.release(timeout=min(0.2, _remaining(deadline)))
        finally:
            allocation.close()
        data = _relay_data(base, result, relayed, server_uri.label, _NOTHING_BACK["relay-range"])
        back = f"{result.received}/{result.sent} back"
        return ProbeStatus.OK, f"{format_address(relayed)} reached from this site, {back}", data

    return await _probe(RelayTestResult, "relay", server_uri, timeout, body, base=base, name="relay-range")


async def run_probe_set(
    uris: Sequence[ServerUri | str],
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 5.0,
    ca_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    stun_tcp: bool = True,
    nat: bool = False,
    relay: bool = True,
    relay_peer: Address | None = None,
    relay_count: int = DEFAULT_RELAY_PACKETS,
) -> ProbeSet:
    """Every applicable probe for ``uris``, concurrently, all ending by ``timeout`` seconds from now.

    ``stun:`` URIs get a Binding over UDP (and over TCP with ``stun_tcp``), ``stuns:`` over TLS;
    ``turn:``/``turns:`` URIs an allocation over their transport. ``relay`` adds one relay data test
    through the first TURN URI (UDP preferred); ``nat`` adds RFC 5780 discovery against the first
    UDP server.
    """
    started = time.monotonic()
    parsed = [_as_uri(u) for u in uris]
    context: ssl.SSLContext | None = None
    if any(u.secure for u in parsed):
        from callops.turn.tls import client_context

        context = client_context(ca_file, insecure=insecure)
    # The budget of each probe is what is left of the one deadline when it starts (now, for all).
    budget = max(0.001, timeout - (time.monotonic() - started))
    jobs: list[Awaitable[ProbeResult]] = []
    for uri in parsed:
        if uri.is_turn:
            jobs.append(turn_allocation(uri, username, password, budget, ssl_context=context))
        else:
            jobs.append(stun_binding(uri, budget, ssl_context=context))
            if stun_tcp and uri.transport == "udp":
                jobs.append(stun_binding(uri, budget, transport="tcp"))
    turn_uris = sorted((u for u in parsed if u.is_turn), key=lambda u: (u.secure, u.transport != "udp"))
    if relay and turn_uris:
        jobs.append(
            relay_data_test(
                turn_uris[0],
                username,
                password,
                budget,
                peer=relay_peer,
                count=relay_count,
                ssl_context=context,
            )
        )
    udp_servers = [u for u in parsed if u.transport == "udp"]
    if nat and udp_servers:
        jobs.append(nat_behaviour(udp_servers[0], budget))
    results = list(await asyncio.gather(*jobs))
    return ProbeSet(
        results=results, duration_ms=round((time.monotonic() - started) * 1000, 3), timeout_s=timeout
    )


__all__ = [
    "DEFAULT_RELAY_PACKETS",
    "AllocationResult",
    "NatResult",
    "ProbeResult",
    "ProbeSet",
    "ProbeStatus",
    "RelayTestResult",
    "StunResult",
    "nat_behaviour",
    "relay_data_test",
    "relay_pair",
    "relay_reach_test",
    "relay_transport",
    "run_probe",
    "run_probe_set",
    "stun_binding",
    "turn_allocation",
]
