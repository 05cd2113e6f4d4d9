"""``callops probe``, one site: every probe concurrently under one deadline, then the verdict.

The asyncio adapter around :mod:`callops.turn.probes`: a UDP STUN Binding per STUN server, RFC 5780
NAT discovery against the first one (bounded by ``nat_wait``: a filtering NAT never answers the
CHANGE-REQUEST tests, so waiting longer proves nothing more), and per TURN URI a relay data test
(two allocations over that transport, packets through the relay and back), and per TLS server the
certificate as a browser sees it (:func:`callops.turn.tls.certificate_check`). Every probe ends by
the deadline, answered or not.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING

from callops.orchestrator.probe.onesite_report import ProbeReport, build_report
from callops.orchestrator.probe.settings import ProbeSettings, load_credentials
from callops.turn.probes import ProbeResult, nat_behaviour, relay_data_test, stun_binding
from callops.turn.uri import ServerUri

if TYPE_CHECKING:
    from callops.orchestrator.probe.profile import Checklist, Profile

#: Packets per relay data test: enough to prove the path, few enough to be quick.
RELAY_PACKETS = 3
#: Time a bandwidth test may take beyond its flow: allocations, permissions, drain, release.
BANDWIDTH_SETUP_S = 2.5


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``), or 0.0 where that is unknown.

    ``callops probe`` counts its deadline from process start, so that the wall time of a run whose
    servers never answer is the deadline, start-up included.
    """
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            start_ticks = int(stat.read().rsplit(") ", 1)[1].split()[19])
            now = float(uptime.read().split()[0])
        return max(0.0, now - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


async def probe_site(settings: ProbeSettings, env: Mapping[str, str], *, spent: float = 0.0) -> ProbeReport:
    """Run the probes of ``settings`` and decide, by ``settings.timeout - spent`` seconds from now."""
    report, _ = await _probe_site(settings, env, spent=spent, profile=None)
    return report


async def probe_profile(
    settings: ProbeSettings, env: Mapping[str, str], profile: Profile, *, spent: float = 0.0
) -> Checklist:
    """The one-site probes plus what ``profile`` needs (relay range, bandwidth), as a checklist.

    The one-site probes end by ``settings.timeout``; then each bandwidth item runs alone (two flows
    at once would share the link), bounded by its ``duration_s`` plus set-up.
    """
    from callops.orchestrator.probe.profile import Checklist, checklist_items, exit_code

    started = time.monotonic()
    report, results = await _probe_site(settings, env, spent=spent, profile=profile)
    items = checklist_items(profile, settings.stun_uris(), settings.turn_uris(), results)
    return Checklist(
        profile=profile.name,
        title=profile.title,
        source=profile.source,
        items=items,
        exit_code=exit_code(items),
        duration_ms=round((time.monotonic() - started + spent) * 1000, 3),
        probe=report,
    )


async def _probe_site(
    settings: ProbeSettings, env: Mapping[str, str], *, spent: float, profile: Profile | None
) -> tuple[ProbeReport, list[ProbeResult]]:
    started = time.monotonic()
    stun_uris = settings.stun_uris()
    turn_uris = settings.turn_uris()
    credentials = load_credentials(settings, env, now=time.time())
    context = None
    if any(u.secure for u in (*stun_uris, *turn_uris)):
        from callops.turn.tls import client_context

        context = client_context(settings.ca_file, insecure=settings.insecure)
    budget = max(0.001, settings.timeout - spent - (time.monotonic() - started))
    password = credentials.password.reveal() if credentials.password is not None else None
    jobs: list[Awaitable[ProbeResult]] = [stun_binding(u, budget, ssl_context=context) for u in stun_uris]
    udp_stun = [u for u in stun_uris if u.transport == "udp" and not u.secure]
    if udp_stun:
        jobs.append(nat_behaviour(udp_stun[0], min(budget, settings.nat_wait)))
    jobs += [
        relay_data_test(u, credentials.username, password, budget, count=RELAY_PACKETS, ssl_context=context)
        for u in turn_uris
    ]
    jobs += [tls_check(u, budget, settings) for u in tls_servers([*stun_uris, *turn_uris])]
    if profile is not None:
        jobs += _profile_jobs(profile, stun_uris, turn_uris, credentials.username, password, budget, context)
    results: list[ProbeResult] = list(await asyncio.gather(*jobs))
    if profile is not None:
        results += await _bandwidth(profile, results, credentials.username, password, context)
    shown = password if credentials.kind == "rest" else None
    report = build_report(
        results,
        timeout_s=settings.timeout,
        duration_ms=round((time.monotonic() - started + spent) * 1000, 3),
        username=credentials.username,
        credential=shown,
        insecure=settings.insecure,
    )
    return report, results


def _profile_jobs(  # noqa: PLR0917 -- the site's servers and credentials
    profile: Profile,
    stun_uris: list[ServerUri],
    turn_uris: list[ServerUri],
    username: str | None,
    password: str | None,
    budget: float,
    context: ssl.SSLContext | None,
) -> list[Awaitable[ProbeResult]]:
    """The extra probes of a profile: STUN over TCP on an item's port, the relay-range reach test."""
    from callops.turn.probes import relay_reach_test

    jobs: list[Awaitable[ProbeResult]] = []
    for item in profile.items:
        if item.check == "stun" and item.transport == "tcp":
            jobs += [stun_binding(u, budget, transport="tcp") for u in stun_uris if u.port == item.port]
    if any(item.check == "relay-range" for item in profile.items):
        udp = next((u for u in turn_uris if u.transport == "udp" and not u.secure), None)
        if udp is not None:
            jobs.append(relay_reach_test(udp, username, password, budget, ssl_context=context))
    return jobs


async def _bandwidth(
    profile: Profile,
    results: list[ProbeResult],
    username: str | None,
    password: str | None,
    context: ssl.SSLContext | None,
) -> list[ProbeResult]:
    """Each bandwidth item, one after the other, through the best working relay."""
    from callops.orchestrator.probe.profile import best_relay
    from callops.turn.bandwidth import FlowSpec, bandwidth_test

    uri = best_relay(results)
    out: list[ProbeResult] = []
    if uri is None:
        return out
    for item in profile.items:
        if item.check != "bandwidth":
            continue
        assert item.media is not None and item.kbps is not None and item.floor_kbps is not None
        spec = FlowSpec(item.media, item.kbps, item.floor_kbps, duration_s=item.duration_s)
        out.append(
            await bandwidth_test(
                uri, username, password, item.duration_s + BANDWIDTH_SETUP_S, spec, ssl_context=context
            )
        )
    return out


def tls_servers(uris: list[ServerUri]) -> list[ServerUri]:
    """One URI per TLS server (host and port), in the order given."""
    seen: dict[tuple[str, int], ServerUri] = {}
    for uri in uris:
        if uri.secure:
            seen.setdefault((uri.host, uri.port), uri)
    return list(seen.values())


async def tls_check(uri: ServerUri, budget: float, settings: ProbeSettings) -> ProbeResult:
    from callops.turn.tls import certificate_check

    return await certificate_check(uri, budget, ca_file=settings.ca_file)


__all__ = ["BANDWIDTH_SETUP_S", "RELAY_PACKETS", "probe_profile", "probe_site", "process_age", "tls_servers"]
