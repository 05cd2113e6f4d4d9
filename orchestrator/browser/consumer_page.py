"""The consumer role played by a real Chromium: the tutorial's page, LivePerson's call app stood in.

:class:`ChromiumConsumer` is a :class:`~callops.orchestrator.call.legs.ConsumerLeg`: the roles of
:mod:`callops.orchestrator.call.roles` drive it exactly as they drive callops' aiortc consumer.

* :meth:`~ChromiumConsumer.join` launches Chromium (in a network namespace with no route out),
  loads the emulator's ``/web/consumer.html`` -- lpTag stand-in, call app stand-in and callops'
  JavaScript handler -- which connects (InitConnection with CO_BROWSE), opens a conversation and
  subscribes; it returns the conversation id;
* the page answers by itself, as a visitor's page does: ``cobrowseOffered``, then
  ``cobrowseAccepted`` / ``cobrowseDeclined`` (or no answer: ``wait``) as configured, the call app
  answers the agent's offer and trickles its candidates; the leg waits for each step the page
  reaches (an awaited Promise in the page, no polling from here) and reports it with the page's
  own time;
* statistics, health samples and the selected pair come from the page's ``getStats()``; console
  messages and page exceptions go to the report (:meth:`~ChromiumConsumer.info`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from callops.errors import DeadlineExceeded, RemoteProtocolError
from callops.orchestrator.browser.page_leg import (
    BrowserSettings,
    PageLeg,
    browser_ice_servers,
    monotonic_of,
)
from callops.orchestrator.call.legs import Invited, LegSettings, PhaseCallback
from callops.orchestrator.call.report import ErrorEntry
from callops.orchestrator.call.scenarios import Decision

log = logging.getLogger(__name__)


class ChromiumConsumer(PageLeg):
    """The consumer role's browser leg (see the module docstring)."""

    #: one getStats of the call app plus its connection's states, for the health watcher
    HEALTH_JS = (
        "lpCallApp.stats().then(function (s) { var pc = lpCallApp.pc; return {kinds: s.kinds, "
        "selected_pair: s.selected_pair, ice: pc ? pc.iceConnectionState : 'closed', "
        "connection: pc ? pc.connectionState : 'closed'}; })"
    )
    STATS_JS = "lpCallApp.stats()"

    def __init__(self, settings: LegSettings, browser: BrowserSettings, on_phase: PhaseCallback) -> None:
        super().__init__(settings, browser, on_phase)
        self.conversation_id: str | None = None

    # -- join the invitation path -------------------------------------------------------------------

    def _page_config(self, jwt: str) -> str:
        s, b = self.settings, self.browser_settings
        ws_base = "ws" + s.base_url[4:]
        stand_in = {
            "cobrowseUrl": s.cobrowse_url,
            "jwt": jwt,
            "account": s.account,
            "iceServers": browser_ice_servers(s.ice_servers),
            "iceTransportPolicy": s.policy,
            "iceTimeoutMs": int(s.ice_timeout_s * 1000),
        }
        page = {
            "websocketUrl": f"{ws_base}/ws_api/account/{s.account}/messaging/consumer?v=3",
            "jwt": jwt,
            "visitorName": s.visitor_name,
            "decide": b.decide,
            "answerAfterMs": round(s.answer_after_s * 1000),
            "withoutContainer": b.without_container,
        }
        return f"window.lpTagStandIn = {self.js(stand_in)};\nwindow.callopsPage = {self.js(page)};\n"

    async def join(self) -> str:
        """Launch, load the tagged page, connect and subscribe; the conversation id."""
        from callops.orchestrator.emulator.auth import mint_jwt

        s = self.settings
        consumer_id = f"callops-{uuid.uuid4().hex[:12]}"
        jwt = mint_jwt(consumer_id, s.jwt_secret, now=time.time())
        await self.open_page("/web/consumer.html", self._page_config(jwt))
        ready = await self.wait("handler", "ready", s.step_timeout_s)
        if ready is None:
            raise self.not_loaded(f"consumer page: not connected within {s.step_timeout_s:g} s")
        self.conversation_id = str(ready["detail"]["conversationId"])
        return self.conversation_id

    # -- what the page observes ---------------------------------------------------------------------

    async def wait(self, source: Literal["handler", "app"], name: str, within: float) -> Any:
        """The handler's history entry / the call app's phase time ``name`` once reached, or None
        after ``within`` seconds. A call app ``sessionError`` ends a wait for a call app phase."""
        if source == "handler":
            return await self.race(f"window.callopsHandler.when({self.js(name)})", within)
        return await self.race(self._app_target(name), within)

    def _app_target(self, phase: str) -> str:
        """The call app's Promise of ``phase``; a ``sessionError`` ends it with null."""
        return (
            f"Promise.race([lpCallApp.when({self.js(phase)}), "
            "lpCallApp.when('error').then(function () { return null; })])"
        )

    async def _handler_step(self, name: str, phase: str | None, within: float, what: str) -> dict[str, Any]:
        entry = await self.wait("handler", name, within)
        if not isinstance(entry, dict):
            raise DeadlineExceeded(f"consumer page: {what} within {within:g} s")
        if phase is not None and isinstance(entry.get("at"), int | float):
            self.on_phase(phase, monotonic_of(float(entry["at"])))
        return entry

    async def _app_phase(self, phase: str, within: float) -> bool:
        return await self.phase_of(self._app_target(phase), phase, within)

    async def app_state(self) -> dict[str, Any]:
        state = await self._page.evaluate("lpCallApp.state()")
        return state if isinstance(state, dict) else {}

    async def handler_history(self) -> list[dict[str, Any]]:
        history = await self._page.evaluate("window.callopsHandler ? window.callopsHandler.history : []")
        return history if isinstance(history, list) else []

    async def invited(self, within: float) -> Invited:
        entry = await self._handler_step("invited", "invited", within, "no invitation")
        detail = entry.get("detail") or {}
        at = entry.get("at")
        return Invited(
            service_id=str(detail.get("serviceId")),
            dialog_id=str(detail.get("dialogId")),
            conversation_id=str(detail.get("conversationId")),
            at=monotonic_of(float(at)) if isinstance(at, int | float) else None,
        )

    async def respond(self, decision: Decision) -> None:
        """The page answers by itself (configured at launch); this waits for what it published."""
        if decision != self.browser_settings.decide:
            raise RemoteProtocolError(
                f"the page was set up to {self.browser_settings.decide!r} but the call asks {decision!r}"
            )
        within = self.settings.step_timeout_s
        await self._handler_step("cobrowseOffered", "offered", within, "no cobrowseOffered")
        if decision != "wait":
            event = "cobrowseAccepted" if decision == "accept" else "cobrowseDeclined"
            await self._handler_step(event, None, within, f"no {event}")

    async def accepted(self, within: float) -> None:
        await self._handler_step("accepted", "accepted", within, "the dialog did not go ACCEPTED")

    async def connect(self, epoch: int) -> bool:
        """The call app answers the agent's offer by itself; ICE and DTLS as the page saw them."""
        s = self.settings
        if not await self._app_phase("dtls_connected", s.step_timeout_s + s.ice_timeout_s):
            return False
        phases = (await self.app_state()).get("phases", {})
        for phase in ("ice_checking", "ice_connected"):
            if isinstance(phases.get(phase), int | float):
                self.on_phase(phase, monotonic_of(float(phases[phase])))
        return True

    async def media(self, within: float) -> bool:
        deadline = time.monotonic() + within
        for kind in self.settings.kinds:
            if not await self._app_phase(f"first_{kind}", max(0.0, deadline - time.monotonic())):
                return False
        return True

    def local_candidate_types(self) -> list[str]:
        return []  # the call app reports its own failure (UNABLE_TO_CONNECT with ICE errors)

    def session_error(self, error_id: str, msg: str) -> None:
        """The call app raises its own sessionErrors; one it did not raise is noted."""
        log.info(
            "consumer (chromium): callops saw %s (%s); the page's own errors are reported", error_id, msg
        )

    async def errors(self) -> list[ErrorEntry]:
        """sessionErrors the call app raised, ICE candidate errors (701 ...), payload errors."""
        state = await self.app_state()
        out = [ErrorEntry(id=str(e.get("id")), msg=f"{e.get('msg')} {e.get('detail') or ''}".strip())
               for e in state.get("errors", [])]  # fmt: skip
        seen = set()
        for e in state.get("iceErrors", []):
            text = f"{e.get('errorCode')} {e.get('errorText')} ({e.get('url')})"
            if text not in seen:
                seen.add(text)
                out.append(ErrorEntry(id="ICE_CANDIDATE_ERROR", msg=text))
        for entry in await self.handler_history():
            if entry.get("type") == "payload-error":
                out.append(
                    ErrorEntry(id="LPTAG_PAYLOAD", msg=str((entry.get("detail") or {}).get("message")))
                )
        return out

    async def agent_left(self, within: float) -> None:
        if await self.wait("app", "error", within) is None:
            raise DeadlineExceeded(f"consumer page: no AGENT_DISCONNECTED within {within:g} s")
        ids = [e.get("id") for e in (await self.app_state()).get("errors", [])]
        if "AGENT_DISCONNECTED" not in ids:
            raise RemoteProtocolError(f"consumer page: the call app raised {', '.join(map(str, ids))}")

    async def hang_up(self) -> None:
        await self._page.evaluate("lpCallApp.hangUp()")

    async def closed(self, within: float) -> str:
        entry = await self._handler_step("closed", "closed", within, "the call did not close")
        return str((entry.get("detail") or {}).get("reason"))

    async def late_accept(self) -> str | None:
        # the handler never publishes for a call its tracker closed: nothing reaches the emulator
        return "not sent (the page's handler drops a closed call's invitation)"

    async def reload(self, on_resumed: Callable[[], None]) -> None:
        """A real reload: the call app finds the call in sessionStorage (sessionResume), the page
        opens its slider (sliderOpened) and the call app joins the call again."""
        s = self.settings
        await self._page.reload(timeout=s.step_timeout_s)
        if await self.wait("app", "sliderOpened", s.step_timeout_s) is None:
            state = await self.app_state()
            raise DeadlineExceeded(
                f"resume: the reloaded page did not reopen the call within {s.step_timeout_s:g} s "
                f"(errors: {state.get('errors')}, notes: {state.get('notes')})"
            )
        on_resumed()


def chromium_consumer(browser: BrowserSettings) -> Callable[[LegSettings, PhaseCallback], ChromiumConsumer]:
    """The consumer-leg factory of a call whose consumer is a real Chromium."""

    def make(settings: LegSettings, on_phase: PhaseCallback) -> ChromiumConsumer:
        return ChromiumConsumer(settings, browser, on_phase)

    return make


__all__ = ["BrowserSettings", "ChromiumConsumer", "browser_ice_servers", "chromium_consumer"]
