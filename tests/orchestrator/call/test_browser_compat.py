"""The aiortc peer copes with browsers: bundled candidates (aiortc #1437), trickle ICE, and an ICE
failure with zero remote candidates named as such. Real aiortc peers on loopback."""

from __future__ import annotations

import asyncio

from callops.orchestrator.call.peer import (
    HeadlessPeer,
    PeerConfig,
    add_remote_candidate,
    end_of_remote_candidates,
    ice_failure_reason,
    remote_candidate_count,
    spread_bundled_candidates,
)
from callops.testing import run_bounded

BROWSER_LIKE = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host\r\n"
    "a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtcp-mux\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n"
    "a=candidate:9 1 udp 1 127.0.0.9 9 typ host\r\n"
)


def _candidates(section: str) -> list[str]:
    return [line for line in section.split("\r\n") if line.startswith("a=candidate:")]


def test_bundled_candidates_are_copied_into_every_bundled_section_only() -> None:
    out = spread_bundled_candidates(BROWSER_LIKE)
    audio, video, application = out.split("m=")[1:]
    assert _candidates(audio) == _candidates(video) == _candidates(BROWSER_LIKE.split("m=")[1])
    assert _candidates(application) == ["a=candidate:9 1 udp 1 127.0.0.9 9 typ host"]  # not in the group
    assert out.endswith("\r\n") and "a=rtcp-mux" in video


def test_sdp_without_bundle_is_unchanged_and_end_of_candidates_spreads() -> None:
    plain = BROWSER_LIKE.replace("a=group:BUNDLE 0 1\r\n", "")
    assert spread_bundled_candidates(plain) == plain
    ended = BROWSER_LIKE.replace(
        "typ host tcptype active\r\n", "typ host tcptype active\r\na=end-of-candidates\r\n"
    )
    audio, video, _ = spread_bundled_candidates(ended).split("m=")[1:]
    assert "a=end-of-candidates" in audio and "a=end-of-candidates" in video


def _only_first_section_candidates(sdp: str) -> str:
    """What a browser sends for a bundled transport: candidates in the first m-section only."""
    head, *sections = sdp.split("m=")
    kept = [sections[0]] + [
        "".join(line + "\r\n" for line in s.split("\r\n")[:-1] if not line.startswith("a=candidate:"))
        for s in sections[1:]
    ]
    return head + "".join("m=" + s for s in kept)


def _without_candidates(sdp: str) -> str:
    return "".join(
        line + "\r\n"
        for line in sdp.split("\r\n")[:-1]
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    )


def test_a_browser_like_bundled_answer_connects_the_aiortc_agent() -> None:
    async def body() -> tuple[int, int, bool]:
        agent = HeadlessPeer("agent", "VIDEO_CALL", PeerConfig())
        consumer = HeadlessPeer("consumer", "VIDEO_CALL", PeerConfig())
        plain = HeadlessPeer("agent", "VIDEO_CALL", PeerConfig())
        try:
            offer = await agent.create_offer()
            answer = _only_first_section_candidates(await consumer.accept_offer(offer))
            assert "a=candidate:" in answer.split("m=")[1] and "a=candidate:" not in answer.split("m=")[2]
            # aiortc alone (#1437): the last m-section's (zero) candidates win
            from aiortc import RTCSessionDescription

            await plain.create_offer()
            await plain.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            unpatched = remote_candidate_count(plain)
            await agent.accept_answer(answer)
            patched = remote_candidate_count(agent)
            connected = await agent.wait_connected(15) and await consumer.wait_connected(15)
            await asyncio.wait_for(asyncio.gather(agent.wait_media(), consumer.wait_media()), 15)
            return unpatched, patched, connected
        finally:
            for peer in (agent, consumer, plain):
                await peer.close()

    unpatched, patched, connected = run_bounded(body(), 60)
    assert unpatched == 0 and patched >= 1 and connected


def test_trickled_candidates_connect_and_end_of_candidates_is_applied() -> None:
    async def body() -> bool:
        agent = HeadlessPeer("agent", "VOICE_CALL", PeerConfig())
        consumer = HeadlessPeer("consumer", "VOICE_CALL", PeerConfig())
        try:
            full = await consumer.accept_offer(await agent.create_offer())
            await agent.accept_answer(_without_candidates(full))
            assert remote_candidate_count(agent) == 0
            for line in full.split("\r\n"):
                if line.startswith("a=candidate:"):
                    assert await add_remote_candidate(agent, line[2:], "0", 0)
            assert not await add_remote_candidate(agent, "candidate:garbage", "0", 0)
            await end_of_remote_candidates(agent)
            return await agent.wait_connected(15) and await consumer.wait_connected(15)
        finally:
            await agent.close()
            await consumer.close()

    assert run_bounded(body(), 60)


def test_ice_failure_without_remote_candidates_blames_the_other_side_not_the_ice_servers() -> None:
    async def body() -> tuple[bool, str, str]:
        agent = HeadlessPeer("agent", "VOICE_CALL", PeerConfig())
        consumer = HeadlessPeer("consumer", "VOICE_CALL", PeerConfig())
        try:
            answer = await consumer.accept_offer(await agent.create_offer())
            await agent.accept_answer(_without_candidates(answer))
            await end_of_remote_candidates(agent)
            connected = await agent.wait_connected(3)
            message, hint = ice_failure_reason(agent, 3)
            return connected, message, hint
        finally:
            await agent.close()
            await consumer.close()

    connected, message, hint = run_bounded(body(), 30)
    assert not connected
    assert "the other side sent no ICE candidates" in message and "none trickled" in message
    assert "other side" in hint
