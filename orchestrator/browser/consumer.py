"""The consumer role played by a real Chromium: the tutorial's page, LivePerson's call app stood in.

:class:`ChromiumConsumer` is the browser leg of a call's consumer role, with a small interface
(join the invitation path, answer with trickled candidates, report phases and stats, hang up):

* :meth:`~ChromiumConsumer.join` launches Chromium (isolated namespace), loads the emulator's
  ``/web/consumer.html`` -- lpTag stand-in, call app stand-in and callops' JavaScript handler --
  which connects (InitConnection with CO_BROWSE), opens a conversation and subscribes; it returns
  the conversation id;
* the page answers by itself: ``cobrowseOffered``, then ``cobrowseAccepted`` (or
  ``cobrowseDeclined``), the call app answers the agent's offer and trickles its candidates;
* :meth:`~ChromiumConsumer.wait` waits for a handler event or a call app phase (the page decides
  when it is reached: an awaited Promise, no polling from here);
* :meth:`~ChromiumConsumer.timeline`, :meth:`~ChromiumConsumer.stats`,
  :meth:`~ChromiumConsumer.errors` and :meth:`~ChromiumConsumer.leg` give the report's parts in the
  shapes of :mod:`callops.orchestrator.call.report`; :meth:`~ChromiumConsumer.hang_up`,
  :meth:`~ChromiumConsumer.close`.

:func:`run_chromium_consumer` is ``callops call-site --role consumer --leg chromium``.
"""

from __future__ import annotations

import asyncio
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
from callops.orchestrator.call.peer import IceServer, KindStats
from callops.orchestrator.call.report import (
    CallReport,
    CallStats,
    CandidateInfo,
    ErrorEntry,
    LegInfo,
    Outcome,
    SelectedPair,
)
from callops.orchestrator.call.site import SiteSettings
from callops.orchestrator.call.timeline import Timeline

log = logging.getLogger(__name__)

Decision = Literal["accept", "decline"]
#: console lines kept in the report
CONSOLE_LINES = 40

#: handler history entry -> call phase
_HANDLER_PHASES = {
    "invited": "invited",
    "cobrowseOffered": "offered",
    "accepted": "accepted",
    "closed": "closed",
}
#: call app phase -> call phase
_APP_PHASES = ("ice_checking", "ice_connected", "dtls_connected", "first_audio", "first_video")


@dataclass
class BrowserSettings:
    """How the browser leg runs (the rest is the call's :class:`SiteSettings`)."""

    #: network namespace for Chromium; None: callops' own, which must have no route out
    netns: str | None = None
    #: CAs trusted in the browser profile (``turns:`` with a lab CA); nothing else is trusted
    trusted_ca: Sequence[Path] = ()
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


class ChromiumConsumer:
    """The consumer role's browser leg (see the module docstring)."""

    kind = "chromium"

    def __init__(self, settings: SiteSettings, browser: BrowserSettings) -> None:
        self.settings = settings
        self.browser_settings = browser
        self.browser: Chromium | None = None
        self.page: Page | None = None
        self.conversation_id: str | None = None

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
        assert self.page is not None
        ms = max(0, int(within * 1000))
        if source == "handler":
            target = f"window.callopsHandler.when({json.dumps(name)})"
        else:
            target = (
                f"Promise.race([lpCallApp.when({json.dumps(name)}), "
                "lpCallApp.when('error').then(function () { return null; })])"
            )
        timer = f"new Promise(function (r) {{ setTimeout(function () {{ r(null); }}, {ms}); }})"
        expression = f"Promise.race([{target}, {timer}])"
        return await self.page.evaluate(expression, timeout=within + 5.0)

    async def app_state(self) -> dict[str, Any]:
        assert self.page is not None
        state = await self.page.evaluate("lpCallApp.state()")
        return state if isinstance(state, dict) else {}

    async def handler_history(self) -> list[dict[str, Any]]:
        assert self.page is not None
        history = await self.page.evaluate("window.callopsHandler ? window.callopsHandler.history : []")
        return history if isinstance(history, list) else []

    async def timeline(self) -> Timeline:
        """The call's phases as the page saw them, from the invitation (page clock, epoch ms)."""
        history = await self.handler_history()
        times = {e["type"]: float(e["at"]) for e in reversed(history) if isinstance(e, dict) and "at" in e}
        origin = times.get("invited", 0.0) / 1000.0
        timeline = Timeline(origin, name="call-site/consumer/chromium")
        for kind, phase in _HANDLER_PHASES.items():
            if kind in times:
                timeline.mark(phase, times[kind] / 1000.0)
        phases = (await self.app_state()).get("phases", {})
        for phase in _APP_PHASES:
            if isinstance(phases.get(phase), int | float):
                timeline.mark(phase, float(phases[phase]) / 1000.0)
        return timeline

    async def stats(self) -> tuple[dict[str, KindStats], SelectedPair | None]:
        """The browser's getStats, reduced to callops' per-kind figures, and the selected pair."""
        assert self.page is not None
        raw = await self.page.evaluate("lpCallApp.stats()")
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
        pair = (raw or {}).get("selected_pair") or {}
        local, remote = _candidate(pair.get("local")), _candidate(pair.get("remote"))
        selected = SelectedPair(local=local, remote=remote) if local and remote else None
        return kinds, selected

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

    def console_tail(self, lines: int = CONSOLE_LINES) -> list[str]:
        if self.page is None:
            return []
        return [f"{entry.level}: {entry.text}" for entry in self.page.console[-lines:]]

    def leg(self) -> LegInfo:
        browser = self.browser
        ready = browser.launch_to_ready_s if browser is not None else None
        return LegInfo(
            kind="chromium",
            version=browser.version if browser is not None else None,
            launch_to_ready_ms=round(ready * 1000.0, 1) if ready is not None else None,
            console=self.console_tail(),
        )

    # -- hang up ------------------------------------------------------------------------------------

    async def hang_up(self) -> None:
        if self.page is not None:
            await self.page.evaluate("lpCallApp.hangUp()")

    async def close(self) -> None:
        if self.browser is not None:
            await self.browser.close()


class ChromiumConsumerRun:
    """``call-site --role consumer --leg chromium``: the same steps as the aiortc consumer side."""

    def __init__(
        self,
        settings: SiteSettings,
        browser: BrowserSettings,
        *,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.leg = ChromiumConsumer(settings, browser)
        self.on_ready = on_ready
        self.outcome: Outcome = "failed"
        self.failure: str | None = None
        self.stats = CallStats()
        self.selected_pair: SelectedPair | None = None
        self.notes: list[str] = list(settings.notes)
        self.service_id: str | None = None

    def _set_outcome(self, outcome: Outcome, why: str) -> None:
        """The one place this side's outcome changes (logged)."""
        if outcome != self.outcome:
            log.info("consumer (chromium): outcome %s -> %s (%s)", self.outcome, outcome, why)
            self.outcome = outcome

    @property
    def expected(self) -> Outcome:
        return "declined" if self.leg.browser_settings.decide == "decline" else "connected"

    async def run(self) -> CallReport:
        """Run the consumer side in Chromium; never raises for a failed call (``ok`` says)."""
        timeline = Timeline(0.0)
        errors: list[ErrorEntry] = []
        try:
            try:
                await self._steps()
            except CallopsError as exc:
                self.failure = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
            except Exception as exc:  # a bug: report it, do not crash
                log.exception("consumer (chromium) crashed")
                self.failure = f"internal error: {exc.__class__.__name__}: {exc}"
            if self.leg.page is not None:
                with contextlib.suppress(CallopsError):
                    timeline = await self.leg.timeline()
                    errors = await self.leg.errors()
        finally:
            await self.leg.close()
        if self.failure is None and errors and self.outcome != self.expected:
            self.failure = "; ".join(f"{e.id}: {e.msg}" for e in errors)
        ok = self.failure is None and self.outcome == self.expected
        return CallReport(
            ok=ok,
            scenario="decline" if self.expected == "declined" else "accept",
            mode=self.settings.mode,
            policy=self.settings.policy,
            outcome=self.outcome,
            service_id=self.service_id,
            timeline_ms=timeline.as_ms(),
            selected_pair=self.selected_pair,
            errors=errors,
            stats=self.stats,
            ice_servers=[server.url for server in self.settings.ice_servers],
            notes=self.notes,
            expected_outcome=self.expected,
            failure=self.failure
            if (self.failure or ok)
            else f"outcome {self.outcome}, expected {self.expected}",
            legs={"consumer": self.leg.leg()},
        )

    async def _steps(self) -> None:
        s, leg = self.settings, self.leg
        conversation = await leg.join()
        log.info("consumer (chromium): conversation %s open, waiting for an invitation", conversation)
        if self.on_ready is not None:
            self.on_ready(conversation)
        invited = await leg.wait("handler", "invited", s.wait_timeout_s)
        if invited is None:
            raise DeadlineExceeded(f"consumer: no invitation within {s.wait_timeout_s:g} s")
        self.service_id = str(invited["detail"]["serviceId"])
        if self.expected == "declined":
            closed = await leg.wait("handler", "closed", s.step_timeout_s)
            if closed is None:
                raise DeadlineExceeded(
                    f"consumer: the declined call did not close within {s.step_timeout_s:g} s"
                )
            reason = str(closed["detail"]["reason"])
            self._set_outcome("declined" if reason == "declined" else "failed", f"closed ({reason})")
            return
        accepted = await leg.wait("handler", "accepted", s.step_timeout_s)
        if accepted is None:
            raise DeadlineExceeded(f"consumer: the dialog did not go ACCEPTED within {s.step_timeout_s:g} s")
        connected = await leg.wait("app", "dtls_connected", s.step_timeout_s + s.ice_timeout_s)
        if connected is None:
            state = await leg.app_state()
            raise RemoteProtocolError(
                "consumer (chromium): the call did not connect: "
                + (
                    "; ".join(f"{e['id']} ({e.get('detail')})" for e in state.get("errors", []))
                    or "no sessionError"
                )
            )
        self._set_outcome("connected", "DTLS connected")
        for kind in ["audio"] + (["video"] if s.mode == "VIDEO_CALL" else []):
            if await leg.wait("app", f"first_{kind}", s.media_timeout_s) is None:
                raise DeadlineExceeded(
                    f"consumer: no decoded {kind} from the agent within {s.media_timeout_s:g} s"
                )
        started = time.monotonic()
        await asyncio.sleep(s.duration_s)  # the call's media time (not a synchronisation)
        mine, self.selected_pair = await leg.stats()
        from callops.orchestrator.call.stats import call_stats

        kinds = ["audio", "video"] if s.mode == "VIDEO_CALL" else ["audio"]
        self.stats = call_stats({}, mine, kinds, time.monotonic() - started)
        # The agent hangs up; the page observes CLOSED.
        if await leg.wait("handler", "closed", s.step_timeout_s + s.duration_s) is None:
            raise DeadlineExceeded("consumer: the call did not close after the agent's hang-up")


async def run_chromium_consumer(
    settings: SiteSettings, browser: BrowserSettings, *, on_ready: Callable[[str], None] | None = None
) -> CallReport:
    """Run the consumer side in Chromium and report it (never raises for a failed call)."""
    return await ChromiumConsumerRun(settings, browser, on_ready=on_ready).run()


__all__ = [
    "BrowserSettings",
    "ChromiumConsumer",
    "ChromiumConsumerRun",
    "Decision",
    "browser_ice_servers",
    "run_chromium_consumer",
]
