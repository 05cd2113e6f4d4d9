"""Two-site probe on loopback: token, signalling, sessions, and ICE over the host path."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callops.errors import AuthenticationError, NetworkError
from callops.orchestrator.probe.ice import IceSettings
from callops.orchestrator.probe.paths import TwoSiteReport, parse_message
from callops.orchestrator.probe.twosite import (
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_SECONDS,
    CallServers,
    Responder,
    run_peer,
)
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.bandwidth import FlowSpec
from callops.turn.coturn import free_port

LOOPBACK = IceSettings(host_addresses=["127.0.0.1"])
TOKEN = Secret("two-site-token-123456")


def test_signalling_messages_are_validated() -> None:
    offer = parse_message(
        json.dumps(
            {"type": "offer", "session": "s", "path": "host", "ufrag": "u", "pwd": "p", "candidates": []}
        )
    )
    assert offer.type == "offer"
    with pytest.raises(ValueError, match="path"):
        parse_message(
            json.dumps(
                {"type": "offer", "session": "s", "path": "moon", "ufrag": "u", "pwd": "p", "candidates": []}
            )
        )


def test_responder_compares_the_token_in_constant_time_form() -> None:
    responder = Responder(TOKEN, LOOPBACK)
    assert responder.authorized("Bearer two-site-token-123456")
    assert not responder.authorized("Bearer two-site-token-12345")
    assert not responder.authorized(None)


@asynccontextmanager
async def serving(
    *,
    call: CallServers | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_seconds: float = DEFAULT_SESSION_SECONDS,
) -> AsyncIterator[tuple[Responder, str]]:
    """A loopback responder for :data:`TOKEN` listening on a free port until the block ends: (the
    responder, its URL)."""
    responder = Responder(TOKEN, LOOPBACK, call or CallServers(), max_sessions, session_seconds)
    port = free_port()
    server = await responder.start("127.0.0.1", port)
    try:
        yield responder, f"ws://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def test_host_path_connects_over_loopback_with_pair_and_rtt() -> None:
    async def scenario() -> None:
        async with serving() as (responder, url):
            report = await run_peer(url, TOKEN, LOOPBACK, timeout=15, paths=["host"])
        (path,) = report.paths
        assert path.connected, path
        assert path.local is not None and path.local.type == "host"
        assert path.remote is not None and path.remote.address.startswith("127.0.0.1:")
        assert path.rtt_ms is not None and path.rtt_ms >= 0
        assert (report.verdict, report.exit_code) == ("p2p", 0)
        assert responder.served == 1

    run_bounded(scenario(), 40)


def test_several_peers_at_once_are_served() -> None:
    async def scenario() -> None:
        async with serving() as (responder, url):
            reports = await asyncio.gather(
                *(run_peer(url, TOKEN, LOOPBACK, timeout=20, paths=["host"]) for _ in range(3))
            )
        assert [r.verdict for r in reports] == ["p2p"] * 3
        assert responder.served == 3 and responder.active == 0

    run_bounded(scenario(), 60)


def test_sessions_beyond_the_limit_are_refused_and_reported() -> None:
    async def scenario() -> None:
        async with serving(max_sessions=2) as (responder, url):
            responder.active = 2  # both slots taken by other peers
            report = await run_peer(url, TOKEN, LOOPBACK, timeout=20, paths=["host"])
        (path,) = report.paths
        assert not path.connected
        assert "too many sessions" in (path.error or "")
        assert responder.served == 0

    run_bounded(scenario(), 60)


def test_a_wrong_token_is_rejected_before_any_session() -> None:
    async def scenario() -> None:
        async with serving() as (responder, url):
            with pytest.raises(AuthenticationError, match="rejected the token"):
                await run_peer(url, Secret("wrong-token"), LOOPBACK, timeout=10, paths=["host"])
        assert responder.served == 0

    run_bounded(scenario(), 30)


def test_no_responder_is_a_network_error_naming_the_url() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(NetworkError, match=url):
        run_bounded(run_peer(url, TOKEN, LOOPBACK, timeout=5, paths=["host"]), 30)


def test_a_headless_call_over_loopback_reports_media_both_ways_and_the_pair() -> None:
    async def scenario() -> None:
        call = CallServers(host_addresses=["127.0.0.1"])
        async with serving(call=call) as (_, url):
            report = await run_peer(url, TOKEN, LOOPBACK, timeout=25, paths=["host"], call=call)
        assert report.call is not None
        assert report.call.connected and report.call.error is None, report.call
        assert report.call.media_received and report.call.media_sent and report.call.media
        # the same watched media phase as `callops call`: seconds watched, no gap, no drop
        assert report.call.media_s > 0 and not report.call.dropped
        assert report.call.interruptions == [] and report.call.transport_events == []
        assert report.call.local is not None and report.call.local.type == "host"
        assert report.call.remote is not None and report.call.remote.address.startswith("127.0.0.1:")

    run_bounded(scenario(), 60)


def test_a_session_that_never_connects_ends_after_session_seconds() -> None:
    async def scenario() -> None:
        from websockets.asyncio.client import connect

        # A peer whose only candidate swallows every check: ICE could wait for a long time.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
            black_hole.bind(("127.0.0.1", 0))
            port = black_hole.getsockname()[1]
            async with (
                serving(session_seconds=1.0) as (responder, url),
                connect(url, additional_headers={"Authorization": f"Bearer {TOKEN.reveal()}"}) as ws,
            ):
                candidate = f"1 1 UDP 2130706431 127.0.0.1 {port} typ host"
                offer = {"type": "offer", "session": "s1", "path": "host", "ufrag": "abcd"}
                await ws.send(json.dumps({**offer, "pwd": "p" * 22, "candidates": [candidate]}))
                answer = parse_message(await asyncio.wait_for(ws.recv(), 10))
                assert answer.type == "answer"
                # The session's own timeout ends it, and the responder says so.
                bye = parse_message(await asyncio.wait_for(ws.recv(), 15))
                assert (bye.type, bye.session) == ("bye", "s1")
        assert (responder.served, responder.active) == (1, 0)

    run_bounded(scenario(), 30)


def test_a_burst_of_peers_beyond_max_sessions_gets_at_most_n_sessions() -> None:
    """N + k peers connect and offer at the same instant: exactly N sessions, k refusals."""
    max_sessions, burst = 2, 7

    async def one_peer(url: str, number: int, silent_port: int) -> str:
        from websockets.asyncio.client import connect

        async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN.reveal()}"}) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "offer",
                        "session": f"burst-{number}",
                        "path": "host",
                        "ufrag": f"ufrag{number}",
                        "pwd": "p" * 22,
                        # a candidate that never answers keeps the session busy until its end
                        "candidates": [f"1 1 udp 2130706431 127.0.0.1 {silent_port} typ host"],
                    }
                )
            )
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return str(first["type"] if first["type"] != "error" else first["message"])

    async def scenario() -> tuple[list[str], int, int]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            async with serving(max_sessions=max_sessions, session_seconds=6) as (responder, url):
                answers = await asyncio.gather(
                    *(one_peer(url, n, silent.getsockname()[1]) for n in range(burst))
                )
                peak = responder.active
        return list(answers), peak, responder.active

    answers, peak, after = run_bounded(scenario(), 60)
    assert sorted(answers) == ["answer"] * max_sessions + ["too many sessions"] * (burst - max_sessions)
    assert peak == max_sessions
    assert after == 0  # every slot is freed when the server closes


def test_a_bandwidth_flow_over_the_direct_path_is_echoed_and_measured() -> None:
    flow = FlowSpec("video", 2600, 1100, duration_s=1.0)

    async def scenario() -> TwoSiteReport:
        async with serving() as (_, url):
            return await run_peer(url, TOKEN, LOOPBACK, timeout=15, paths=["host"], bandwidth=flow)

    report = run_bounded(scenario(), 30)
    (host,) = report.paths
    assert host.connected and host.bandwidth is not None, host
    assert host.bandwidth_status == "ok", host.bandwidth_detail
    got = host.bandwidth.flow
    assert got is not None and got.achieved_kbps >= 0.9 * 2600 and got.loss <= 0.05
    assert host.bandwidth.rtt_ms_p50 is not None
