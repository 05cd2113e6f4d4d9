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

import contextlib
import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from callops.errors import CallopsError, DeadlineExceeded, RemoteProtocolError
from callops.orchestrator.browser.chromium import Chromium, ChromiumOptions, Page
from callops.orchestrator.call.legs import HealthSample, Invited, LegSettings, PhaseCallback
from callops.orchestrator.call.peer import IceServer, KindStats
from callops.orchestrator.call.report import CandidateInfo, ErrorEntry, LegInfo, SelectedPair
from callops.orchestrator.call.scenarios import Decision

log = logging.getLogger(__name__)

#: console lines kept in the report
CONSOLE_LINES = 40
#: a CDP evaluation's own bound on top of the page-side wait
_EVALUATE_SLACK_S = 5.0


@dataclass
class BrowserSettings:
    """How the browser leg runs (the rest is the call's :class:`LegSettings`)."""

    #: network namespace for Chromium; None: callops' own, which must have no route out
    netns: str | None = None
    #: CAs trusted in the browser profile (``turns:`` with a lab CA); nothing else is trusted
    trusted_ca: Sequence[Path] = ()
    #: how the page answers an invitation (the scenario's decision)
    decide: Decision = "accept"
    #: the page forgets the call container (the call app must raise a sessionError)
    without_container: bool = False
    #: grant camera/microphone (fake devices); False: denied (NO_CAMERA_ACCESS)
    grant_media: bool = True
    extra_args: Sequence[str] = field(default_factory=tuple)


def _is_loopback(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return host == "localhost"


def _ice_host(url: str) -> str:
    from callops.turn.uri import parse_uri

    return parse_uri(url).host


def browser_ice_servers(servers: Sequence[IceServer]) -> list[dict[str, str]]:
    """``RTCConfiguration.iceServers`` for the page (credentials revealed only into the page)."""
    out = []
    for server in servers:
        entry = {"urls": server.url}
        if server.username is not None and server.credential is not None:
            entry["username"] = server.username
            entry["credential"] = server.credential.reveal()
        out.append(entry)
    return out


def _candidate(raw: Any) -> CandidateInfo | None:
    if not isinstance(raw, dict) or raw.get("type") not in ("host", "srflx", "prflx", "relay"):
        return None
    relay = raw.get("relay_protocol")
    return CandidateInfo(
        type=raw["type"],
        protocol="tcp" if raw.get("protocol") == "tcp" else "udp",
        relay_protocol=relay if relay in ("udp", "tcp", "tls") else None,
        address=str(raw.get("address") or ""),
        port=int(raw.get("port") or 0),
    )


def _kind_stats(raw: Any) -> dict[str, KindStats]:
    kinds: dict[str, KindStats] = {}
    for kind, figures in (raw or {}).get("kinds", {}).items():
        if kind in ("audio", "video") and isinstance(figures, dict):
            kinds[kind] = KindStats(
                packets_sent=int(figures.get("packets_sent", 0)),
                bytes_sent=int(figures.get("bytes_sent", 0)),
                packets_received=int(figures.get("packets_received", 0)),
                packets_lost=int(figures.get("packets_lost", 0)),
                jitter_ms=float(figures.get("jitter_ms", 0.0)),
                rtt_ms=figures.get("rtt_ms"),
                frames_decoded=int(figures.get("frames_decoded", 0)),
            )
    return kinds


def _monotonic(page_ms: float) -> float:
    """A page time (epoch ms) on this process's monotonic clock (same machine, same wall clock)."""
    return page_ms / 1000.0 - (time.time() - time.monotonic())


#: one getStats of the call app plus its connection's states, for the health watcher
_HEALTH = (
    "lpCallApp.stats().then(function (s) { var pc = lpCallApp.pc; return {kinds: s.kinds, "
    "selected_pair: s.selected_pair, ice: pc ? pc.iceConnectionState : 'closed', "
    "connection: pc ? pc.connectionState : 'closed'}; })"
)


class ChromiumConsumer:
    """The consumer role's browser leg (see the module docstring)."""

    kind = "chromium"

    def __init__(self, settings: LegSettings, browser: BrowserSettings, on_phase: PhaseCallback) -> None:
        self.settings = settings
        self.browser_settings = browser
        self.on_phase = on_phase
        self.browser: Chromium | None = None
        self.page: Page | None = None
        self.conversation_id: str | None = None
        self._pair: SelectedPair | None = None
        self._last_stats: dict[str, KindStats] = {}

    @property
    def _page(self) -> Page:
        assert self.page is not None, "the browser has no page yet"
        return self.page

    # -- join the invitation path -------------------------------------------------------------------

    def _options(self) -> ChromiumOptions:
        s, b = self.settings, self.browser_settings
        origin = s.base_url.rstrip("/")
        hosts = [urlsplit(origin).hostname or ""] + [_ice_host(server.url) for server in s.ice_servers]
        return ChromiumOptions(
            netns=b.netns,
            loopback_peers=any(_is_loopback(host) for host in hosts),
            trusted_ca=list(b.trusted_ca),
            secure_origins=[origin],
            grant_media=b.grant_media,
            extra_args=list(b.extra_args),
        )

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
            "withoutContainer": b.without_container,
        }
        return f"window.lpTagStandIn = {json.dumps(stand_in)};\nwindow.callopsPage = {json.dumps(page)};\n"

    async def join(self) -> str:
        """Launch, load the tagged page, connect and subscribe; the conversation id."""
        from callops.orchestrator.emulator.auth import mint_jwt

        s = self.settings
        self.browser = await Chromium.launch(self._options())
        self.page = await self.browser.new_page()
        consumer_id = f"callops-{uuid.uuid4().hex[:12]}"
        jwt = mint_jwt(consumer_id, s.jwt_secret, now=time.time())
        await self.page.command("Page.addScriptToEvaluateOnNewDocument", {"source": self._page_config(jwt)})
        await self.page.navigate(f"{s.base_url}/web/consumer.html", timeout=s.step_timeout_s)
        ready = await self.wait("handler", "ready", s.step_timeout_s)
        if ready is None:
            raise DeadlineExceeded(
                f"consumer page: not connected within {s.step_timeout_s:g} s ({self.console_tail(3)})",
                hint="is the emulator reachable from the browser's namespace?",
            )
        self.conversation_id = str(ready["detail"]["conversationId"])
        return self.conversation_id

    # -- what the page observes ---------------------------------------------------------------------

    async def wait(self, source: Literal["handler", "app"], name: str, within: float) -> Any:
        """The handler's history entry / the call app's phase time ``name`` once reached, or None
        after ``within`` seconds. A call app ``sessionError`` ends a wait for a call app phase."""
        ms = max(0, int(within * 1000))
        if source == "handler":
            target = f"window.callopsHandler.when({json.dumps(name)})"
        else:
            target = (
                f"Promise.race([lpCallApp.when({json.dumps(name)}), "
                "lpCallApp.when('error').then(function () { return null; })])"
            )
        timer = f"new Promise(function (r) {{ setTimeout(function () {{ r(null); }}, {ms}); }})"
        return await self._page.evaluate(
            f"Promise.race([{target}, {timer}])", timeout=within + _EVALUATE_SLACK_S
        )

    async def _handler_step(self, name: str, phase: str | None, within: float, what: str) -> dict[str, Any]:
        entry = await self.wait("handler", name, within)
        if not isinstance(entry, dict):
            raise DeadlineExceeded(f"consumer page: {what} within {within:g} s")
        if phase is not None and isinstance(entry.get("at"), int | float):
            self.on_phase(phase, _monotonic(float(entry["at"])))
        return entry

    async def _app_phase(self, phase: str, within: float) -> bool:
        at = await self.wait("app", phase, within)
        if not isinstance(at, int | float):
            return False
        self.on_phase(phase, _monotonic(float(at)))
        return True

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
            at=_monotonic(float(at)) if isinstance(at, int | float) else None,
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
                self.on_phase(phase, _monotonic(float(phases[phase])))
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

    # -- media, health, statistics ----------------------------------------------------------------------

    async def _stats(self, expression: str) -> dict[str, Any]:
        raw = await self._page.evaluate(expression)
        raw = raw if isinstance(raw, dict) else {}
        self._last_stats = _kind_stats(raw)
        pair = raw.get("selected_pair") or {}
        local, remote = _candidate(pair.get("local")), _candidate(pair.get("remote"))
        if local and remote:
            self._pair = SelectedPair(local=local, remote=remote)
        return raw

    async def health_sample(self) -> HealthSample:
        raw = await self._stats(_HEALTH)
        frames = {kind: stats.frames_decoded for kind, stats in self._last_stats.items()}
        return frames, str(raw.get("ice") or "closed"), str(raw.get("connection") or "closed")

    async def kind_stats(self) -> dict[str, KindStats]:
        if self.page is not None:
            with contextlib.suppress(CallopsError):
                await self._stats("lpCallApp.stats()")
        return self._last_stats

    async def selected_pair(self) -> SelectedPair | None:
        if self._pair is None and self.page is not None:
            with contextlib.suppress(CallopsError):
                await self._stats("lpCallApp.stats()")
        return self._pair

    def console_tail(self, lines: int = CONSOLE_LINES) -> list[str]:
        if self.page is None:
            return []
        return [f"{entry.level}: {entry.text}" for entry in self.page.console[-lines:]]

    def info(self) -> LegInfo:
        browser = self.browser
        ready = browser.launch_to_ready_s if browser is not None else None
        return LegInfo(
            kind="chromium",
            version=browser.version if browser is not None else None,
            launch_to_ready_ms=round(ready * 1000.0, 1) if ready is not None else None,
            console=self.console_tail(),
        )

    async def close(self) -> None:
        if self.browser is not None:
            await self.browser.close()


def chromium_consumer(browser: BrowserSettings) -> Callable[[LegSettings, PhaseCallback], ChromiumConsumer]:
    """The consumer-leg factory of a call whose consumer is a real Chromium."""

    def make(settings: LegSettings, on_phase: PhaseCallback) -> ChromiumConsumer:
        return ChromiumConsumer(settings, browser, on_phase)

    return make


__all__ = ["BrowserSettings", "ChromiumConsumer", "browser_ice_servers", "chromium_consumer"]
