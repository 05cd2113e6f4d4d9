"""The call leg: both peers, their phases on one timeline, stats per direction."""

from __future__ import annotations

import time

from callops.orchestrator.call.leg import CallLeg, connect_in_memory
from callops.orchestrator.call.peer import PeerConfig
from callops.orchestrator.call.timeline import Timeline
from callops.testing import run_bounded


def test_in_memory_leg_marks_phases_in_order_and_reports_both_directions() -> None:
    async def body() -> None:
        timeline = Timeline(time.monotonic())
        leg = CallLeg("VIDEO_CALL", PeerConfig(video_size=(160, 120)), timeline)
        try:
            await connect_in_memory(leg)
            assert await leg.wait_connected(20)
            assert await leg.wait_media(20, frames=2)
            marks = timeline.as_ms()
            order = ["offer_sent", "answer_received", "ice_connected", "dtls_connected"]
            assert [marks[p] for p in order] == sorted(marks[p] for p in order)
            assert marks["first_audio"] >= marks["dtls_connected"]
            assert marks["first_video"] >= marks["dtls_connected"]
            stats = await leg.stats()
            directions = {(m.kind, m.direction) for m in stats.media}
            assert len(directions) == 4
            assert all(m.frames_decoded >= 2 for m in stats.media)
            assert len(stats.audio_quality) == 2
        finally:
            await leg.close()

    run_bounded(body(), 60)


def test_resumed_leg_marks_media_again_not_first_audio() -> None:
    async def body() -> None:
        timeline = Timeline(time.monotonic())
        leg = CallLeg("VOICE_CALL", PeerConfig(), timeline)
        try:
            await connect_in_memory(leg)
            assert await leg.wait_media(20)
            first_audio = timeline.as_ms()["first_audio"]
            await leg.replace_consumer()
            answer = await leg.consumer.accept_offer(await leg.agent.create_offer())
            await leg.agent.accept_answer(answer)
            assert await leg.wait_connected(20)
            assert await leg.wait_media(20)
            marks = timeline.as_ms()
            assert marks["first_audio"] == first_audio
            assert marks["media_again"] > first_audio
        finally:
            await leg.close()

    run_bounded(body(), 60)
