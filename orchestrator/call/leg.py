"""The WebRTC leg of a call: the agent's and the consumer's headless peers, and their timeline.

The leg does not know how offers and answers travel (the emulator's CoBrowse channel, or memory
in benches): the caller moves the SDP. The leg maps peer events onto the call's
:class:`~callops.orchestrator.call.timeline.Timeline`:

* ``ice_checking``, ``ice_connected``, ``dtls_connected``: as the **consumer** sees them;
* ``first_audio`` / ``first_video``: when decoded frames of that kind have arrived on **both**
  sides (media verified both ways), i.e. the later of the two first frames.

After a resume (:meth:`CallLeg.replace_consumer`) the same marks feed ``media_again``.

During the media phase :func:`poll_health` feeds a :class:`~callops.orchestrator.call.health.HealthWatcher`
from the peers (decoded frames per direction, ICE and connection state) every
:data:`HEALTH_POLL_S` until the planned end or the watcher's ``dropped`` verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from callops.orchestrator.call.health import HealthWatcher
from callops.orchestrator.call.peer import HeadlessPeer, PeerConfig
from callops.orchestrator.call.report import CallMode, CallStats, SelectedPair
from callops.orchestrator.call.stats import call_stats
from callops.orchestrator.call.timeline import Timeline

log = logging.getLogger(__name__)

#: how often the health poller samples the peers (seconds); cheap: no getStats, counters only
HEALTH_POLL_S = 0.1


def feed_health(watcher: HealthWatcher, peer: HeadlessPeer, now: float) -> None:
    """One sample of ``peer`` into ``watcher``: what it decodes, its ICE and connection state."""
    frames, ice_state, connection_state = peer.health_sample()
    sender = "consumer" if peer.role == "agent" else "agent"
    for kind, count in frames.items():
        watcher.observe_frames(kind, f"{sender}->{peer.role}", count, now)
    watcher.observe_transport(peer.role, "ice", ice_state, now)
    watcher.observe_transport(peer.role, "dtls", connection_state, now)


async def poll_health(
    watcher: HealthWatcher,
    peers: Sequence[HeadlessPeer],
    *,
    until: float,
    clock: Callable[[], float] = time.monotonic,
    interval: float = HEALTH_POLL_S,
) -> None:
    """Sample ``peers`` every ``interval`` until ``until`` (monotonic) or the drop verdict."""
    while True:
        now = clock()
        for peer in peers:
            feed_health(watcher, peer, now)
        watcher.tick(now)
        if watcher.dropped is not None or now >= until:
            return
        await asyncio.sleep(min(interval, max(0.0, until - now)))  # the poll period, not a sync


class CallLeg:
    """Agent peer + consumer peer of one call."""

    def __init__(
        self,
        mode: CallMode,
        config: PeerConfig,
        timeline: Timeline,
        *,
        agent_config: PeerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.config = config
        self.agent_config = agent_config or config
        self.timeline = timeline
        self._clock = clock
        self._first: dict[str, float] = {}
        self._resumed = False
        self.agent = self._peer("agent")
        self.consumer = self._peer("consumer")
        self.media_started: float | None = None

    def _peer(self, role: str) -> HeadlessPeer:
        config = self.agent_config if role == "agent" else self.config
        return HeadlessPeer(
            "agent" if role == "agent" else "consumer",
            self.mode,
            config,
            on_phase=lambda phase, now: self._peer_phase(role, phase, now),
            clock=self._clock,
        )

    def _peer_phase(self, role: str, phase: str, now: float) -> None:
        if phase in ("ice_checking", "ice_connected", "dtls_connected"):
            if role == "consumer" and not self._resumed:
                self.timeline.mark(phase, now)
            return
        # "<role>_first_<kind>"
        _, _, kind = phase.partition("_first_")
        self._first[f"{role}:{kind}"] = now
        if f"agent:{kind}" in self._first and f"consumer:{kind}" in self._first:
            if self._resumed:
                kinds = self.agent.kinds
                if all(f"agent:{k}" in self._first and f"consumer:{k}" in self._first for k in kinds):
                    self.timeline.mark("media_again", now)
            else:
                self.timeline.mark(f"first_{kind}", now)
                if self.media_started is None:
                    self.media_started = now

    @property
    def kinds(self) -> list[str]:
        return self.agent.kinds

    def now(self) -> float:
        return self._clock()

    async def wait_connected(self, within: float) -> bool:
        """Both peers DTLS-connected within ``within`` seconds."""
        results = await asyncio.gather(
            self.agent.wait_connected(within), self.consumer.wait_connected(within)
        )
        return all(results)

    async def wait_media(self, within: float, frames: int = 1) -> bool:
        """Every kind decoded on both sides within ``within`` seconds."""
        try:
            await asyncio.wait_for(
                asyncio.gather(self.agent.wait_media(frames), self.consumer.wait_media(frames)), within
            )
        except TimeoutError:
            return False
        return True

    async def replace_consumer(self) -> HeadlessPeer:
        """Resume: drop the consumer peer (the page reloaded) and make a fresh one."""
        old = self.consumer
        await old.close()
        with contextlib.suppress(Exception):
            await self.agent.close()
        self._resumed = True
        self._first.clear()
        self.agent = self._peer("agent")
        self.consumer = self._peer("consumer")
        return self.consumer

    def selected_pair(self) -> SelectedPair | None:
        return self.consumer.selected_pair()

    def agent_selected_pair(self) -> SelectedPair | None:
        return self.agent.selected_pair()

    def health_watcher(self, start: float) -> HealthWatcher:
        """A watcher of every kind in both directions, from ``start`` (monotonic)."""
        flows = tuple(
            (kind, direction) for kind in self.kinds for direction in ("agent->consumer", "consumer->agent")
        )
        return HealthWatcher(flows=flows, start_s=start, origin_s=self.timeline.origin)

    async def watch(self, watcher: HealthWatcher, until: float) -> None:
        """Poll both peers into ``watcher`` until ``until`` or the drop verdict."""
        await poll_health(watcher, [self.agent, self.consumer], until=until, clock=self._clock)

    async def stats(self, interrupted_s: Mapping[tuple[str, str], float] | None = None) -> CallStats:
        started = self.media_started or self.timeline.at("dtls_connected")
        duration = (self._clock() - started) if started is not None else 0.0
        agent, consumer = await asyncio.gather(self.agent.kind_stats(), self.consumer.kind_stats())
        return call_stats(agent, consumer, self.kinds, duration, interrupted_s=interrupted_s)

    async def close(self) -> None:
        await asyncio.gather(self.agent.close(), self.consumer.close())


async def connect_in_memory(leg: CallLeg) -> None:
    """Offer/answer handed over in memory (benches, tests): marks ``offer_sent``/``answer_received``."""
    offer = await leg.agent.create_offer()
    leg.timeline.mark("offer_sent", leg.now())
    answer = await leg.consumer.accept_offer(offer)
    await leg.agent.accept_answer(answer)
    leg.timeline.mark("answer_received", leg.now())


__all__ = ["CallLeg", "connect_in_memory"]
