"""``callops turn audit``: does a TURN server refuse to relay to addresses it must not reach?

An open relay to 127.0.0.1, the private ranges or 169.254.169.254 lets anyone with credentials
reach the operator's internal network through the TURN server (the classic TURN SSRF). With valid
credentials the audit opens UDP allocations (IPv4, and IPv6 when the server relays IPv6) and asks
for a permission (CreatePermission, RFC 8656 section 9) to each forbidden target: the targets of
:func:`forbidden_targets` plus the server's own listening and relayed addresses.

A target is *permitted* when CreatePermission succeeds. For the loopback targets, when the audited
server runs on this machine, the audit also runs its own UDP echo peer there and sends ONE small
datagram through the relay: data coming back proves the relay path end to end. No other target
gets any data -- a permission request carries no traffic to the peer -- and nothing is scanned.

Only audit servers you operate.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from callops.errors import CallopsError
from callops.turn.allocation import Allocation, TurnRequestFailed
from callops.turn.relay import EchoPeer, packet_seq, relay_packet
from callops.turn.stun import Address, format_address, resolve
from callops.turn.uri import ServerUri

log = logging.getLogger(__name__)

Outcome = Literal["permitted", "refused", "no-answer", "not-applicable"]

#: Forbidden peers: one representative of each range a relay must never reach.
FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("127.0.0.1", "IPv4 loopback (127.0.0.0/8)"),
    ("::1", "IPv6 loopback"),
    ("0.0.0.0", "'this host' (0.0.0.0/8)"),
    ("10.0.0.1", "private network (RFC 1918 10.0.0.0/8)"),
    ("172.16.0.1", "private network (RFC 1918 172.16.0.0/12)"),
    ("192.168.0.1", "private network (RFC 1918 192.168.0.0/16)"),
    ("169.254.169.254", "link-local, cloud metadata service (169.254.0.0/16)"),
    ("100.64.0.1", "shared address space / carrier-grade NAT (RFC 6598 100.64.0.0/10)"),
    ("224.0.0.1", "multicast (224.0.0.0/4)"),
    ("255.255.255.255", "limited broadcast"),
)

#: How long the audit waits for its one datagram to come back through the relay.
ECHO_WAIT = 1.0
#: How long the audit waits for an IPv6 allocation (servers without IPv6 relays answer 440 at once).
IPV6_WAIT = 2.0


class AuditTarget(BaseModel):
    ip: str
    #: why a relay must not reach it
    why: str


class AuditFinding(BaseModel):
    ip: str
    why: str
    outcome: Outcome
    #: CreatePermission succeeded for this forbidden peer
    permitted: bool
    #: the TURN error code of a refusal (403 is the expected one)
    error_code: int | None = None
    detail: str = ""
    #: our datagram to our own echo peer came back through the relay (None: not tried)
    data_relayed: bool | None = None


class AuditReport(BaseModel):
    """The ``callops turn audit --json`` document."""

    server: str
    listening: str
    relayed: str | None
    relayed_ipv6: str | None = None
    findings: list[AuditFinding]
    duration_ms: float

    @property
    def permitted(self) -> list[AuditFinding]:
        return [f for f in self.findings if f.permitted]

    @property
    def passed(self) -> bool:
        return not self.permitted


def forbidden_targets(listening_ip: str, relayed_ips: Sequence[str] = ()) -> list[AuditTarget]:
    """The fixed forbidden targets plus the server's own addresses, each IP once (reasons merged)."""
    reasons: dict[str, list[str]] = {}
    for ip, why in FORBIDDEN:
        reasons.setdefault(ip, []).append(why)
    own = [(listening_ip, "the server's own listening address")]
    own += [(ip, "the server's own relayed address") for ip in relayed_ips]
    for ip, why in own:
        key = str(ipaddress.ip_address(ip))
        if why not in reasons.setdefault(key, []):
            reasons[key].append(why)
    return [AuditTarget(ip=ip, why="; ".join(whys)) for ip, whys in reasons.items()]


async def _echo_once(allocation: Allocation, peer: Address, timeout: float) -> bool:
    """One small datagram to our own echo peer through ``allocation``; True if it came back."""
    back = asyncio.Event()

    def on_data(data: bytes, source: Address) -> None:
        if packet_seq(data) == 0:
            back.set()

    allocation.on_data(on_data)
    try:
        allocation.send(relay_packet(0), peer)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(back.wait(), timeout)
    finally:
        allocation.on_data(None)
    return back.is_set()


async def _check(
    allocation: Allocation | None,
    target: AuditTarget,
    *,
    timeout: float,
    echo_peer: EchoPeer | None,
    family_note: str,
) -> AuditFinding:
    if allocation is None:
        return AuditFinding(
            ip=target.ip, why=target.why, outcome="not-applicable", permitted=False, detail=family_note
        )
    try:
        await allocation.create_permission(target.ip, timeout=timeout)
    except TurnRequestFailed as exc:
        return AuditFinding(
            ip=target.ip,
            why=target.why,
            outcome="refused",
            permitted=False,
            error_code=exc.code,
            detail=f"CreatePermission refused: {exc.code} {exc.reason}".strip(),
        )
    except CallopsError as exc:
        return AuditFinding(
            ip=target.ip, why=target.why, outcome="no-answer", permitted=False, detail=str(exc)
        )
    finding = AuditFinding(
        ip=target.ip, why=target.why, outcome="permitted", permitted=True, detail="CreatePermission succeeded"
    )
    if echo_peer is not None:
        finding.data_relayed = await _echo_once(allocation, echo_peer.address, min(ECHO_WAIT, timeout))
        if finding.data_relayed:
            peer = format_address(echo_peer.address)
            finding.detail += f"; a datagram to our echo peer {peer} came back through the relay"
    return finding


def _is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_loopback


async def _open_ipv6(
    uri: ServerUri, username: str, password: str, *, timeout: float, ssl_context: ssl.SSLContext | None
) -> tuple[Allocation | None, str]:
    """An IPv6 relay (RFC 8656 REQUESTED-ADDRESS-FAMILY), or ``None`` and why there is none."""
    try:
        v6 = await Allocation.open(
            uri, username, password, timeout=timeout, ssl_context=ssl_context, family=6
        )
    except TurnRequestFailed as exc:
        return None, (
            f"the server allocates no IPv6 relay ({exc.code} {exc.reason}), so it cannot reach IPv6 peers"
        )
    except CallopsError as exc:
        return None, f"no IPv6 allocation: {exc}"
    return v6, ""


async def _loopback_echo_peers() -> dict[str, EchoPeer]:
    """The audited server runs here: our own echo peers on loopback can prove data flows."""
    peers: dict[str, EchoPeer] = {}
    for ip in ("127.0.0.1", "::1"):
        with contextlib.suppress(OSError):
            peers[ip] = await EchoPeer.start(ip, 0)
    return peers


async def audit_server(
    uri: ServerUri,
    username: str,
    password: str,
    *,
    timeout: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
) -> AuditReport:
    """Audit ``uri``: allocate, ask for a permission to every forbidden target, report what was permitted.

    Raises (as callops errors) only when no allocation can be made at all: wrong credentials, server
    unreachable. Every permission request is bounded by ``timeout``.
    """
    started = time.monotonic()
    deadline = started + timeout
    server = await resolve(uri.host, uri.port, timeout=timeout, label=uri.label)
    v4 = await Allocation.open(uri, username, password, timeout=timeout, ssl_context=ssl_context)
    v6: Allocation | None = None
    peers: dict[str, EchoPeer] = {}
    try:
        v6_wait = max(0.001, min(IPV6_WAIT, deadline - time.monotonic()))
        v6, v6_note = await _open_ipv6(uri, username, password, timeout=v6_wait, ssl_context=ssl_context)
        relayed = [a.relayed[0] for a in (v4, v6) if a is not None and a.relayed is not None]
        targets = forbidden_targets(server[0], relayed)
        if _is_loopback(server[0]):
            peers = await _loopback_echo_peers()
        remaining = max(0.5, deadline - time.monotonic())
        findings = await asyncio.gather(
            *(
                _check(
                    v6 if ":" in t.ip else v4,
                    t,
                    timeout=remaining,
                    echo_peer=peers.get(t.ip),
                    family_note=v6_note,
                )
                for t in targets
            )
        )
        await asyncio.gather(*(a.release(timeout=0.5) for a in (v4, v6) if a is not None))
    finally:
        v4.close()
        if v6 is not None:
            v6.close()
        for peer in peers.values():
            peer.close()
    report = AuditReport(
        server=str(uri),
        listening=format_address(server) or "",
        relayed=format_address(v4.relayed),
        relayed_ipv6=format_address(v6.relayed) if v6 is not None else None,
        findings=list(findings),
        duration_ms=round((time.monotonic() - started) * 1000, 3),
    )
    for finding in report.findings:
        log.info("audit %s %s: %s", uri, finding.ip, finding.outcome)
    return report


__all__ = [
    "FORBIDDEN",
    "AuditFinding",
    "AuditReport",
    "AuditTarget",
    "audit_server",
    "forbidden_targets",
]
