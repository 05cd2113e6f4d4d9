"""The agent role's media played by a real Chromium: the Agent Workspace is a browser too.

:class:`ChromiumAgent` is a :class:`~callops.orchestrator.call.legs.AgentLeg`. The agent role
keeps what the Agent Workspace's backend does (control API, the agent's CoBrowse channel); the
browser does the WebRTC: the emulator's ``/web/agent.html`` (``window.agentLeg``) gets camera and
microphone (fake devices), makes a complete offer, applies the consumer's answer and its trickled
candidates, and reports ICE, DTLS and first decoded frames with its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from callops.errors import CallopsError, DeadlineExceeded, RemoteProtocolError
from callops.orchestrator.browser.page_leg import BrowserSettings, PageLeg, browser_ice_servers, monotonic_of
from callops.orchestrator.call.legs import LegSettings, PhaseCallback, SignalPipe
from callops.orchestrator.call.signalling import Answer, Candidate, EndOfCandidates, Offer, parse_signal

log = logging.getLogger(__name__)


class ChromiumAgent(PageLeg):
    """The agent's browser leg (see the module docstring)."""

    HEALTH_JS = "agentLeg.health()"
    STATS_JS = "agentLeg.health()"

    def __init__(self, settings: LegSettings, browser: BrowserSettings, on_phase: PhaseCallback) -> None:
        super().__init__(settings, browser, on_phase)
        self._offering: asyncio.Task[str] | None = None
        self._trickle: asyncio.Task[None] | None = None
        self.applied = 0

    def prepare(self, epoch: int) -> None:
        self._offering = asyncio.create_task(self._offer(), name=f"agent-chromium-offer-{epoch}")

    async def _offer(self) -> str:
        s = self.settings
        if self.page is None:
            await self.open_page("/web/agent.html", "")
        config = {
            "iceServers": browser_ice_servers(s.ice_servers),
            "iceTransportPolicy": s.policy,
            "mode": s.mode,
        }
        await self._page.evaluate(f"agentLeg.start({self.js(config)})", timeout=s.step_timeout_s)
        sdp = await self._page.evaluate(
            f"agentLeg.offer({int(s.step_timeout_s * 1000)})", timeout=s.step_timeout_s + 5.0
        )
        if not isinstance(sdp, str):
            raise RemoteProtocolError("agent page: no offer SDP")
        return sdp

    async def connect(self, pipe: SignalPipe, epoch: int, on_sent: Callable[[str], None]) -> bool:
        assert self._offering is not None, "prepare() first"
        s = self.settings
        try:
            async with asyncio.timeout(s.step_timeout_s + 5.0):
                offer = await asyncio.shield(self._offering)
        except TimeoutError:
            raise DeadlineExceeded(f"agent (chromium): no offer within {s.step_timeout_s:g} s") from None
        await pipe.send(Offer(kind="offer", sdp=offer, epoch=epoch))
        on_sent("offer_sent")
        answer = await pipe.next_signal(Answer, epoch, s.step_timeout_s)
        await self._page.evaluate(f"agentLeg.answer({self.js(answer.sdp)})")
        on_sent("answer_received")
        await self._stop_trickle()
        self._trickle = asyncio.create_task(self._follow(pipe, epoch), name="agent-chromium-trickle")
        target = (
            "Promise.race([agentLeg.when('dtls_connected'), "
            "agentLeg.when('failed').then(function () { return null; })])"
        )
        if not await self.phase_of(target, "dtls_connected", s.ice_timeout_s):
            return False
        phases = await self._page.evaluate("agentLeg.phases")
        for phase in ("ice_checking", "ice_connected"):
            at = phases.get(phase) if isinstance(phases, dict) else None
            if isinstance(at, int | float):
                self.on_phase(phase, monotonic_of(float(at)))
        return True

    async def _follow(self, pipe: SignalPipe, epoch: int) -> None:
        """Trickled candidates of ``epoch`` from the pipe into the page; malformed ones skipped."""
        while True:
            try:
                frame = await pipe.next("signal", 60.0)
                message = parse_signal(frame.get("data"))
            except RemoteProtocolError as exc:
                self.settings.notes.append(f"agent: ignored {exc.message}")
                continue
            except CallopsError:
                return
            if message.epoch != epoch:
                continue
            if isinstance(message, Candidate):
                c = {
                    "candidate": message.candidate,
                    "sdpMid": message.sdpMid,
                    "sdpMLineIndex": message.sdpMLineIndex,
                }
                if await self._page.evaluate(f"agentLeg.candidate({self.js(c)})"):
                    self.applied += 1
            elif isinstance(message, EndOfCandidates):
                await self._page.evaluate("agentLeg.candidate(null)")
                return

    async def _stop_trickle(self) -> None:
        if self._trickle is not None:
            self._trickle.cancel()
            await asyncio.gather(self._trickle, return_exceptions=True)
            self._trickle = None

    async def media(self, within: float) -> bool:
        for kind in self.settings.kinds:
            if not await self.phase_of(f"agentLeg.when('first_{kind}')", f"first_{kind}", within):
                return False
        return True

    def failure_reason(self) -> tuple[str, str]:
        console = "; ".join(self.console_tail(3)) or "no console output"
        return (
            f"agent (chromium): no connection within {self.settings.ice_timeout_s:g} s "
            f"({self.applied} trickled candidates applied; {console})",
            "check the ICE servers both sides were given and that the consumer runs",
        )

    async def vanish(self) -> None:
        await self._stop_trickle()
        await self._page.evaluate("agentLeg.close()")

    async def close(self) -> None:
        await self._stop_trickle()
        if self._offering is not None:
            self._offering.cancel()
            await asyncio.gather(self._offering, return_exceptions=True)
        if self.page is not None:
            with contextlib.suppress(CallopsError):
                await self._page.evaluate("agentLeg.close()", timeout=2.0)
        await super().close()


def chromium_agent(browser: BrowserSettings) -> Callable[[LegSettings, PhaseCallback], ChromiumAgent]:
    """The agent-leg factory of a call whose agent is a real Chromium."""

    def make(settings: LegSettings, on_phase: PhaseCallback) -> ChromiumAgent:
        return ChromiumAgent(settings, browser, on_phase)

    return make


__all__ = ["ChromiumAgent", "chromium_agent"]
