"""Headless peers connected directly (in-memory offer/answer): ICE, DTLS, media, pair, stats."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callops.orchestrator.call.embedded import EmbeddedTurn
from callops.orchestrator.call.peer import HeadlessPeer, IceServer, PeerConfig
from callops.orchestrator.call.report import CallMode
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.credentials import rest_credentials


@asynccontextmanager
async def _peers(mode: CallMode, config: PeerConfig) -> AsyncIterator[tuple[HeadlessPeer, HeadlessPeer]]:
    """(agent, consumer): the consumer has answered the agent's offer; both closed after the block."""
    agent = HeadlessPeer("agent", mode, config)
    consumer = HeadlessPeer("consumer", mode, config)
    try:
        answer = await consumer.accept_offer(await agent.create_offer())
        await agent.accept_answer(answer)
        yield agent, consumer
    finally:
        await agent.close()
        await consumer.close()


@asynccontextmanager
async def _call(
    mode: CallMode, config: PeerConfig, *, until_frames: int = 3
) -> AsyncIterator[tuple[HeadlessPeer, HeadlessPeer]]:
    """:func:`_peers`, connected, each having decoded ``until_frames`` frames of the other's media."""
    async with _peers(mode, config) as (agent, consumer):
        await asyncio.wait_for(asyncio.gather(agent.connected.wait(), consumer.connected.wait()), 20)
        await asyncio.wait_for(
            asyncio.gather(agent.wait_media(until_frames), consumer.wait_media(until_frames)), 20
        )
        yield agent, consumer


def _turn_config(turn: EmbeddedTurn, secret: Secret | None = None) -> PeerConfig:
    creds = rest_credentials(secret or turn.secret, "callops-test", ttl=600)
    server = IceServer(turn.url, creds.username, Secret(creds.credential, "test"))
    return PeerConfig(ice_servers=[server], policy="relay")


def test_host_only_voice_call_selects_host_pair_and_decodes_audio_both_ways() -> None:
    async def body() -> None:
        async with _call("VOICE_CALL", PeerConfig()) as (agent, consumer):
            for peer in (agent, consumer):
                pair = peer.selected_pair()
                assert pair is not None
                assert (pair.local.type, pair.remote.type) == ("host", "host")
                assert pair.local.address == "127.0.0.1"
                assert peer.sinks["audio"].frames >= 3

    run_bounded(body(), 60)


def test_video_call_decodes_vp8_video_and_opus_audio_both_ways() -> None:
    async def body() -> None:
        async with _call("VIDEO_CALL", PeerConfig(video_size=(160, 120))) as (agent, consumer):
            for peer in (agent, consumer):
                stats = await peer.kind_stats()
                assert stats["audio"].frames_decoded >= 3
                assert stats["video"].frames_decoded >= 3
                assert stats["video"].packets_sent > 0
                assert stats["audio"].bytes_sent > 0
            answer = consumer.pc.localDescription.sdp
            assert "opus/48000" in answer
            assert "VP8/90000" in answer
            assert "PCMU" not in answer
            assert "H264" not in answer

    run_bounded(body(), 60)


@pytest.mark.coturn
def test_relay_policy_selects_relay_candidates_on_both_sides_over_udp(local_turn: EmbeddedTurn) -> None:
    async def body() -> None:
        async with _call("VOICE_CALL", _turn_config(local_turn)) as (agent, consumer):
            for peer in (agent, consumer):
                assert peer.local_candidate_types() == ["relay"]
                pair = peer.selected_pair()
                assert pair is not None
                assert pair.local.type == "relay"
                assert pair.local.relay_protocol == "udp"
                assert pair.remote.type == "relay"

    run_bounded(body(), 60)


@pytest.mark.coturn
def test_relay_policy_with_wrong_secret_gathers_nothing_and_never_connects(local_turn: EmbeddedTurn) -> None:
    async def body() -> None:
        config = _turn_config(local_turn, Secret("not-the-secret", "test"))
        async with _peers("VOICE_CALL", config) as (agent, _):
            assert agent.local_candidate_types() == []
            assert not await agent.wait_connected(2.0)
            assert agent.selected_pair() is None

    run_bounded(body(), 60)


def test_closed_peers_leave_no_tasks_and_no_sockets() -> None:
    async def body() -> None:
        before = len(os.listdir("/proc/self/fd"))
        tasks_before = set(asyncio.all_tasks())
        async with _call("VOICE_CALL", PeerConfig(), until_frames=1) as (agent, consumer):
            assert agent.connected.is_set() and consumer.connected.is_set()
        deadline = asyncio.get_running_loop().time() + 15
        while True:  # closing tasks finish within a few loop turns; bounded for a loaded machine
            others = [t for t in asyncio.all_tasks() if t not in tasks_before and not t.done()]
            if not others or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.wait(others, timeout=0.5)
        assert others == []
        assert len(os.listdir("/proc/self/fd")) <= before

    run_bounded(body(), 60)


def test_pre_encoded_opus_tone_is_decoded_on_both_sides() -> None:
    async def body() -> None:
        async with _call("VOICE_CALL", PeerConfig(pre_encoded_audio=True), until_frames=10) as (
            agent,
            consumer,
        ):
            for peer in (agent, consumer):
                stats = await peer.kind_stats()
                assert stats["audio"].frames_decoded >= 10
                assert stats["audio"].packets_lost == 0

    run_bounded(body(), 60)
