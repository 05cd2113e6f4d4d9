"""What a browser leg of a call is, whichever role it plays: a Chromium with one page, driven over
the DevTools protocol.

:class:`PageLeg` launches Chromium in a network namespace with no route out
(:mod:`callops.orchestrator.browser.isolation`), loads one page of the emulator's ``/web/`` with its
configuration injected before the page's scripts run, waits for what the page reaches (an awaited
Promise in the page raced against a timer: no polling from here), and reads the page's
``getStats()`` for the health watcher, the statistics and the selected candidate pair. Times the
page reports (epoch ms) are put on this process's monotonic clock. The consumer's page
(:mod:`.consumer_page`) and the agent's (:mod:`.agent_page`) build on it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from callops.errors import CallopsError, DeadlineExceeded
from callops.orchestrator.browser.chromium import Chromium, ChromiumOptions, Page
from callops.orchestrator.call.legs import HealthSample, LegSettings, PhaseCallback
from callops.orchestrator.call.peer import IceServer, KindStats
from callops.orchestrator.call.report import CandidateInfo, LegInfo, SelectedPair
from callops.orchestrator.call.scenarios import Decision

#: console lines kept in the report
CONSOLE_LINES = 40
#: a CDP evaluation's own bound on top of the page-side wait
EVALUATE_SLACK_S = 5.0


@dataclass
class BrowserSettings:
    """How a browser leg runs (the rest is the call's :class:`LegSettings`)."""

    #: network namespace for Chromium; None: callops' own, which must have no route out
    netns: str | None = None
    #: CAs trusted in the browser profile (``turns:`` with a lab CA); nothing else is trusted
    trusted_ca: Sequence[Path] = ()
    #: consumer: how the page answers an invitation (the scenario's decision)
    decide: Decision = "accept"
    #: consumer: the page forgets the call container (the call app must raise a sessionError)
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


def monotonic_of(page_ms: float) -> float:
    """A page time (epoch ms) on this process's monotonic clock (same machine, same wall clock)."""
    return page_ms / 1000.0 - (time.time() - time.monotonic())


@dataclass(eq=False)
class PageLeg:
    """One Chromium, one page (see the module docstring)."""

    kind = "chromium"
    #: a JS expression: Promise of ``{kinds, selected_pair, ice, connection}`` (the page's getStats)
    HEALTH_JS = ""
    #: a JS expression: Promise of ``{kinds, selected_pair}``
    STATS_JS = ""

    settings: LegSettings
    browser_settings: BrowserSettings
    on_phase: PhaseCallback
    browser: Chromium | None = field(default=None, init=False)
    page: Page | None = field(default=None, init=False)
    _pair: SelectedPair | None = field(default=None, init=False)
    _last_stats: dict[str, KindStats] = field(default_factory=dict, init=False)

    @property
    def _page(self) -> Page:
        assert self.page is not None, "the browser has no page yet"
        return self.page

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

    async def open_page(self, path: str, config_script: str) -> Page:
        """Launch Chromium and load ``path`` of the emulator with ``config_script`` run first."""
        self.browser = await Chromium.launch(self._options())
        self.page = await self.browser.new_page()
        await self.page.command("Page.addScriptToEvaluateOnNewDocument", {"source": config_script})
        await self.page.navigate(f"{self.settings.base_url}{path}", timeout=self.settings.step_timeout_s)
        return self.page

    async def race(self, target: str, within: float) -> Any:
        """The value of the page Promise ``target``, or None after ``within`` seconds."""
        ms = max(0, int(within * 1000))
        timer = f"new Promise(function (r) {{ setTimeout(function () {{ r(null); }}, {ms}); }})"
        return await self._page.evaluate(
            f"Promise.race([{target}, {timer}])", timeout=within + EVALUATE_SLACK_S
        )

    async def phase_of(self, target: str, phase: str, within: float) -> bool:
        """Wait for the page Promise ``target`` of a phase time; report ``phase`` with it."""
        at = await self.race(target, within)
        if not isinstance(at, int | float):
            return False
        self.on_phase(phase, monotonic_of(float(at)))
        return True

    @staticmethod
    def js(value: Any) -> str:
        return json.dumps(value)

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
        raw = await self._stats(self.HEALTH_JS)
        frames = {kind: stats.frames_decoded for kind, stats in self._last_stats.items()}
        return frames, str(raw.get("ice") or "closed"), str(raw.get("connection") or "closed")

    async def kind_stats(self) -> dict[str, KindStats]:
        if self.page is not None:
            with contextlib.suppress(CallopsError):
                await self._stats(self.STATS_JS)
        return self._last_stats

    async def selected_pair(self) -> SelectedPair | None:
        if self._pair is None and self.page is not None:
            with contextlib.suppress(CallopsError):
                await self._stats(self.STATS_JS)
        return self._pair

    def console_tail(self, lines: int = CONSOLE_LINES) -> list[str]:
        if self.page is None:
            return []
        return [f"{entry.level}: {entry.text}" for entry in self.page.console[-lines:]]

    def not_loaded(self, what: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{what} ({'; '.join(self.console_tail(3)) or 'no console output'})",
            hint="is the emulator reachable from the browser's namespace?",
        )

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


__all__ = ["BrowserSettings", "PageLeg", "browser_ice_servers", "monotonic_of"]
