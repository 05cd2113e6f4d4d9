"""Two headless peers and their timeline, with the SDP handed over in memory (benches, tests).

The WebRTC part of a call without the invitation path: the same peers and the same phase rules
(:class:`~callops.orchestrator.call.roles.MediaMarks`) as a call, so that a bench can measure the
media path alone. A real call is :class:`~callops.orchestrator.call.runs.CallRun`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from callops.orchestrator.call.legs import own_phases
from callops.orchestrator.call.peer import HeadlessPeer, PeerConfig
from callops.orchestrator.call.report import CallMode, CallStats
from callops.orchestrator.call.roles import CallState, MediaMarks
from callops.orchestrator.call.stats import call_stats
from callops.orchestrator.call.timeline import Timeline


@dataclass(eq=False)
class CallLeg:
    """Agent peer + consumer peer of one in-memory call."""

    mode: CallMode
    config: PeerConfig
    timeline: Timeline
    _: KW_ONLY
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        kinds = ["audio"] if self.mode == "VOICE_CALL" else ["audio", "video"]
        self.marks = MediaMarks(CallState(self.timeline, []), ("agent", "consumer"), kinds)
        self.agent = self._peer("agent")
        self.consumer = self._peer("consumer")

    def _peer(self, role: str) -> HeadlessPeer:
        on_phase = own_phases(self.marks.callback("agent" if role == "agent" else "consumer"))
        return HeadlessPeer(
            "agent" if role == "agent" else "consumer",
            self.mode,
            self.config,
            on_phase=on_phase,
            clock=self.clock,
        )

    @property
    def kinds(self) -> list[str]:
        return self.agent.kinds

    def now(self) -> float:
        return self.clock()

    async def wait_connected(self, within: float) -> bool:
        """Both peers DTLS-connected within ``within`` seconds."""
        results = await asyncio.gather(
            self.agent.wait_connected(within), self.consumer.wait_connected(within)
        )
        return all(results)

    async def wait_media(self, within: float, frames: int = 1) -> bool:
        """Every kind decoded on both sides within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                await asyncio.gather(self.agent.wait_media(frames), self.consumer.wait_media(frames))
        except TimeoutError:
            return False
        return True

    async def replace_consumer(self) -> HeadlessPeer:
        """Resume: both peers start a new WebRTC session (the consumer's page reloaded)."""
        await asyncio.gather(self.consumer.close(), self.agent.close(), return_exceptions=True)
        self.marks.resume()
        self.agent = self._peer("agent")
        self.consumer = self._peer("consumer")
        return self.consumer

    async def stats(self) -> CallStats:
        started = self.marks.started or self.timeline.at("dtls_connected")
        duration = (self.clock() - started) if started is not None else 0.0
        agent, consumer = await asyncio.gather(self.agent.kind_stats(), self.consumer.kind_stats())
        return call_stats(agent, consumer, self.kinds, duration)

    async def close(self) -> None:
        await asyncio.gather(self.agent.close(), self.consumer.close())


async def connect_in_memory(leg: CallLeg) -> None:
    """Offer/answer handed over in memory: marks ``offer_sent``/``answer_received``."""
    offer = await leg.agent.create_offer()
    leg.timeline.mark("offer_sent", leg.now())
    answer = await leg.consumer.accept_offer(offer)
    await leg.agent.accept_answer(answer)
    leg.timeline.mark("answer_received", leg.now())


__all__ = ["CallLeg", "connect_in_memory"]
