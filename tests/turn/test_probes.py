"""callops.turn.probes: the probe set runs concurrently and honours its one deadline."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn
from callops.turn.credentials import rest_credentials
from callops.turn.probes import (
    AllocationResult,
    ProbeResult,
    ProbeSet,
    ProbeStatus,
    RelayTestResult,
    relay_data_test,
    run_probe_set,
    turn_allocation,
)


@pytest.mark.coturn
def test_probe_set_against_coturn_passes_every_probe(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)
    result = run_bounded(
        run_probe_set(
            [coturn.stun_uri, coturn.turn_udp, coturn.turn_tcp, coturn.turns],
            username=creds.username,
            password=creds.credential,
            timeout=10,
            ca_file=coturn.ca_file,
            nat=True,
        ),
        30,
    )
    kinds = [r.kind for r in result.results]
    assert kinds == ["stun-udp", "stun-tcp", "turn-udp", "turn-tcp", "turn-tls", "relay", "nat"]
    assert all(r.status is ProbeStatus.OK for r in result.results), [r.error for r in result.results]
    by_kind = {r.kind: r for r in result.results}
    tls, udp, relay = by_kind["turn-tls"], by_kind["turn-udp"], by_kind["relay"]
    assert isinstance(tls, AllocationResult) and isinstance(udp, AllocationResult)
    assert isinstance(relay, RelayTestResult)
    assert tls.data.transport == "tls"
    assert str(udp.data.relayed).startswith("127.0.0.1:")
    assert relay.data.loss == 0 and relay.data.transport == "udp"
    assert not result.failed
    # The JSON document round-trips through the model.
    assert ProbeSet.model_validate(json.loads(result.model_dump_json())) == result


@pytest.mark.coturn
def test_probe_set_without_credentials_skips_turn_probes(coturn: LoopbackCoturn) -> None:
    result = run_bounded(run_probe_set([coturn.stun_uri, coturn.turn_udp], timeout=10), 30)
    statuses = {r.kind: r.status for r in result.results}
    assert statuses == {
        "stun-udp": ProbeStatus.OK,
        "stun-tcp": ProbeStatus.OK,
        "turn-udp": ProbeStatus.SKIPPED,
        "relay": ProbeStatus.SKIPPED,
    }


@pytest.fixture
def silent_servers() -> Iterator[tuple[int, int]]:
    """A UDP port and a TCP port on loopback that accept but never answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(16)
        yield udp.getsockname()[1], tcp.getsockname()[1]


def test_probe_set_against_silent_servers_ends_at_the_deadline(silent_servers: tuple[int, int]) -> None:
    udp, tcp = silent_servers
    uris = [
        f"stun:127.0.0.1:{udp}",
        f"turn:127.0.0.1:{udp}",
        f"turn:127.0.0.1:{tcp}?transport=tcp",
        f"turns:127.0.0.1:{tcp}",
    ]

    async def run() -> tuple[ProbeSet, float]:
        started = time.monotonic()
        result = await run_probe_set(uris, username="u", password="p", timeout=0.6, nat=True)
        return result, time.monotonic() - started

    result, elapsed = run_bounded(run(), 20)
    # The set ends at its 0.6 s deadline, not after aioice's retransmissions (over 30 s for a
    # silent STUN server); the slack only absorbs scheduling delays on a loaded CI machine.
    slack = 2.0
    assert elapsed < 0.6 + slack, elapsed
    failed = {r.kind for r in result.results if r.status is ProbeStatus.FAIL}
    assert {"stun-udp", "turn-udp", "turn-tcp", "turn-tls", "relay", "nat"} <= failed
    for r in result.results:
        assert r.duration_ms < (0.6 + slack) * 1000
        assert r.error, r


def test_turn_allocation_to_a_silent_tls_server_fails_at_its_timeout(silent_servers: tuple[int, int]) -> None:
    _, tcp = silent_servers

    async def run() -> ProbeResult:
        return await asyncio.wait_for(turn_allocation(f"turns:127.0.0.1:{tcp}", "u", "p", 0.3), 5)

    result = run_bounded(run(), 20)
    assert result.status is ProbeStatus.FAIL
    assert (
        result.error
        == f"TURN/TLS 127.0.0.1:{tcp}: no answer within 0.3 s (is the server up, and is the port open?)"
    )


@pytest.mark.coturn
def test_relay_test_refused_for_a_loopback_relay_says_why_and_suggests_a_public_peer(
    start_coturn: Callable[..., LoopbackCoturn],
) -> None:
    # A secure coturn (loopback peers not allowed) relaying on 127.0.0.1 must refuse its own relays.
    server = start_coturn(rfc5780=False)
    creds = rest_credentials(server.secret, "alice", ttl=300)
    result = run_bounded(relay_data_test(server.turn_udp, creds.username, creds.credential, timeout=10), 30)
    assert result.status is ProbeStatus.FAIL
    assert result.error is not None
    assert "CreatePermission 127.0.0.1 failed: 403" in result.error
    assert "127.0.0.0/8" in result.error and "denied-peer-ip" in result.error
    assert "--peer HOST:PORT" in result.error
