"""Selected-pair derivation: candidate types and the transport to the TURN server."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from callops.orchestrator.call.embedded import EmbeddedTurn
from callops.orchestrator.call.pair import candidate_info, relay_protocol, selected_pair
from callops.orchestrator.call.peer import HeadlessPeer, IceServer, PeerConfig
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.credentials import rest_credentials


def _candidate(kind: str, transport: str = "udp") -> SimpleNamespace:
    return SimpleNamespace(type=kind, transport=transport, host="127.0.0.1", port=4000)


@pytest.mark.parametrize(
    ("turn_server", "ssl", "transport", "expected"),
    [
        (("127.0.0.1", 3478), False, "udp", "udp"),
        (("127.0.0.1", 3478), False, "tcp", "tcp"),
        (("127.0.0.1", 5349), True, "tcp", "tls"),
        (None, False, "udp", None),
    ],
)
def test_relay_protocol_names_the_transport_to_the_turn_server(
    turn_server: tuple[str, int] | None, ssl: bool, transport: str, expected: str | None
) -> None:
    connection = SimpleNamespace(turn_server=turn_server, turn_ssl=ssl, turn_transport=transport)
    assert relay_protocol(connection) == expected


def test_only_relay_candidates_carry_the_relay_protocol() -> None:
    assert candidate_info(_candidate("relay"), relay_via="tcp").relay_protocol == "tcp"
    assert candidate_info(_candidate("host"), relay_via="tcp").relay_protocol is None
    assert candidate_info(_candidate("prflx")).type == "prflx"


def test_unknown_candidate_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ICE candidate type 'weird'"):
        candidate_info(_candidate("weird"))


def test_no_pair_before_nomination() -> None:
    async def body() -> None:
        peer = HeadlessPeer("agent", "VOICE_CALL", PeerConfig())
        try:
            assert selected_pair(peer.pc) is None
        finally:
            await peer.close()

    run_bounded(body(), 30)


@pytest.mark.coturn
def test_relay_over_tcp_to_the_turn_server_is_reported_as_tcp(local_turn: EmbeddedTurn) -> None:
    async def body() -> None:
        creds = rest_credentials(local_turn.secret, "callops-test", ttl=600)
        server = IceServer(f"{local_turn.url}?transport=tcp", creds.username, Secret(creds.credential, "t"))
        config = PeerConfig(ice_servers=[server], policy="relay")
        agent = HeadlessPeer("agent", "VOICE_CALL", config)
        consumer = HeadlessPeer("consumer", "VOICE_CALL", config)
        try:
            await agent.accept_answer(await consumer.accept_offer(await agent.create_offer()))
            assert await agent.wait_connected(20) and await consumer.wait_connected(20)
            await asyncio.wait_for(consumer.wait_media(1), 20)
            for peer in (agent, consumer):
                pair = peer.selected_pair()
                assert pair is not None
                assert (pair.local.type, pair.local.relay_protocol, pair.remote.type) == (
                    "relay",
                    "tcp",
                    "relay",
                )
        finally:
            await agent.close()
            await consumer.close()

    run_bounded(body(), 60)
