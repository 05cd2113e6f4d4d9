"""callops.turn.relay and the relay data test: packets through a real coturn and back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn
from callops.turn.credentials import rest_credentials
from callops.turn.probes import ProbeResult, ProbeStatus, RelayTestResult, relay_data_test
from callops.turn.relay import EchoPeer, RelayStats, packet_seq, relay_packet

StartCoturn = Callable[..., LoopbackCoturn]


def test_relay_stats_count_loss_and_rtt_from_times_passed_in() -> None:
    stats = RelayStats()
    for seq in range(4):
        stats.sent(seq, 10.0 + seq)
    stats.received(0, 10.002)
    stats.received(1, 11.004)
    stats.received(1, 11.5)  # duplicate: ignored
    stats.received(9, 12.0)  # never sent: ignored
    stats.received(3, 13.006)
    result = stats.result()
    assert (result.sent, result.received) == (4, 3)
    assert result.loss == pytest.approx(0.25)
    assert result.rtt_ms_p50 == pytest.approx(4.0)
    assert result.rtt_ms_max == pytest.approx(6.0)
    assert not stats.complete


def test_relay_packets_carry_their_sequence_number_and_nothing_else_parses() -> None:
    assert packet_seq(relay_packet(7)) == 7
    assert packet_seq(b"something else") is None
    assert packet_seq(b"x" * len(relay_packet(0))) is None


@pytest.mark.coturn
@pytest.mark.parametrize("which", ["turn_udp", "turn_tcp", "turns"])
def test_relay_data_test_through_a_second_allocation_loses_nothing(
    coturn: LoopbackCoturn, which: str
) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)
    result = run_bounded(
        relay_data_test(
            getattr(coturn, which), creds.username, creds.credential, 10, count=20, ca_file=coturn.ca_file
        ),
        30,
    )
    assert result.status is ProbeStatus.OK, result.error
    assert result.data.sent == result.data.received == 20
    assert result.data.loss == 0
    assert result.data.peer == "allocation"
    assert result.data.rtt_ms is not None and 0 < result.data.rtt_ms < 5000


@pytest.mark.coturn
def test_relay_data_test_to_a_local_udp_echo_peer(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)

    async def run() -> tuple[RelayTestResult, int]:
        peer = await EchoPeer.start("127.0.0.1")
        try:
            result = await relay_data_test(
                coturn.turn_udp, creds.username, creds.credential, 10, peer=peer.address, count=5
            )
            return result, peer.echoed
        finally:
            peer.close()

    result, echoed = run_bounded(run(), 30)
    assert result.status is ProbeStatus.OK, result.error
    assert result.data.received == 5
    assert echoed == 5


@pytest.mark.coturn
def test_relay_data_test_fails_with_a_sentence_when_the_server_refuses_the_peer(
    start_coturn: StartCoturn,
) -> None:
    server = start_coturn(rfc5780=False)  # no allow-loopback-peers: relayed 127.0.0.1 peers refused
    creds = rest_credentials(server.secret, "alice", ttl=300)

    async def run() -> ProbeResult:
        peer = await EchoPeer.start("127.0.0.1")
        try:
            return await relay_data_test(
                server.turn_udp, creds.username, creds.credential, 5, peer=peer.address
            )
        finally:
            peer.close()

    result = run_bounded(run(), 30)
    assert result.status is ProbeStatus.FAIL
    assert result.error is not None and "403: forbidden" in result.error
    assert result.data.error_code == 403


def test_relay_data_test_without_credentials_is_skipped() -> None:
    result = run_bounded(relay_data_test("turn:127.0.0.1:3478", None, None, 1), 10)
    assert result.status is ProbeStatus.SKIPPED
    assert asyncio.iscoroutinefunction(relay_data_test)
