"""The exporter's routes, without HTTP: ``/probe``, ``/metrics`` and ``/`` as request -> :class:`Reply`.

``/probe?module=M&target=T`` follows blackbox_exporter: the probe's time budget is
``X-Prometheus-Scrape-Timeout-Seconds`` minus ``timeout_margin``, capped by the module's
``timeout``; the answer is a fresh registry with ``probe_success``, ``probe_duration_seconds`` and the
prober's measurements. Concurrency is bounded twice: ``max_pending`` probe requests are admitted at
once (more get 503), and each module has its own ``concurrency`` slots, so slow targets of one
module never take the slots of another. A probe waits for a slot only within its own budget; the
wait counts against it, so every answer arrives within its timeout.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from callops.errors import CallopsError
from callops.orchestrator.exporter.exporter_config import ExporterSettings, Module
from callops.orchestrator.exporter.modules import Runner, TargetError, prepare
from callops.orchestrator.exporter.outcome import ProbeOutcome, probe_registry
from callops.secret import Secret, redact

log = logging.getLogger(__name__)

TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"
#: the least budget a probe gets, whatever the header says
MIN_TIMEOUT = 0.1
#: extra time given to a probe past its budget before it is cancelled (the probes end on their own)
CANCEL_GRACE = 0.25
#: the least share of its budget a probe must have left when it gets a slot, else it fails as busy
MIN_RUN_SHARE = 0.1

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class ProbeRecord:
    """One line of the HTML page's recent probes."""

    at: float
    module: str
    target: str
    success: bool
    duration_s: float
    reason: str | None


def _bad_request(message: str) -> Reply:
    return Reply(400, TEXT, (message + "\n").encode())


@dataclass
class ExporterMetrics:
    """The exporter's own metrics (``/metrics``), in their own registry."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.probes = Counter(
            "callops_exporter_probes", "Probes run, by module and result.", ["module", "result"], registry=r
        )
        self.duration = Histogram(
            "callops_exporter_probe_duration_seconds",
            "Duration of probes (queue wait included), by module.",
            ["module"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.in_flight = Gauge(
            "callops_exporter_probes_in_flight", "Probes running now, by module.", ["module"], registry=r
        )
        self.waiting = Gauge(
            "callops_exporter_probes_waiting",
            "Probes waiting for a slot of their module.",
            ["module"],
            registry=r,
        )
        self.rejected = Counter(
            "callops_exporter_requests_rejected",
            "Requests refused before probing (bad_request, busy, connections).",
            ["reason"],
            registry=r,
        )


class Exporter:
    """The routes; one per process, shared by every connection."""

    def __init__(self, settings: ExporterSettings, *, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.modules: dict[str, Module] = settings.all_modules()
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.slots = {name: asyncio.Semaphore(module.concurrency) for name, module in self.modules.items()}
        self.pending = 0
        self._admitted: asyncio.Condition | None = None
        self.history: collections.deque[ProbeRecord] = collections.deque(maxlen=settings.history)
        self.metrics = ExporterMetrics()
        for name in self.modules:
            self.metrics.in_flight.labels(name)
            self.metrics.waiting.labels(name)

    async def handle(self, method: str, target: str, headers: Mapping[str, str]) -> Reply:
        """Answer one request; ``headers`` have lower-case names."""
        if method not in ("GET", "HEAD"):
            return Reply(405, TEXT, b"only GET\n")
        url = urllib.parse.urlsplit(target)
        if url.path == "/probe":
            return await self.probe(urllib.parse.parse_qs(url.query, keep_blank_values=True), headers)
        if url.path == "/metrics":
            encoder, content_type = choose_encoder(headers.get("accept", ""))
            return Reply(200, content_type, encoder(self.metrics.registry))
        if url.path == "/":
            from callops.orchestrator.exporter.page import index_page

            return Reply(200, HTML, index_page(self).encode())
        return Reply(404, TEXT, b"not found: the exporter serves /, /probe and /metrics\n")

    async def admitted(self, count: int) -> None:
        """Return once ``count`` probe requests are pending (admitted, running or waiting for a slot)."""
        if self._admitted is None:
            self._admitted = asyncio.Condition()
        async with self._admitted:
            await self._admitted.wait_for(lambda: self.pending >= count)

    def budget(self, module: Module, headers: Mapping[str, str]) -> float:
        """The probe's seconds: the scrape timeout minus the margin, capped by the module (blackbox)."""
        raw = headers.get(TIMEOUT_HEADER)
        if raw is None:
            return module.timeout
        try:
            scrape = float(raw)
        except ValueError:
            raise TargetError(
                f"header X-Prometheus-Scrape-Timeout-Seconds: {raw!r} is not a number of seconds"
            ) from None
        if not scrape > 0:
            raise TargetError(f"header X-Prometheus-Scrape-Timeout-Seconds: {raw!r} must be above 0")
        return max(MIN_TIMEOUT, min(module.timeout, scrape - self.settings.timeout_margin))

    async def probe(self, params: Mapping[str, list[str]], headers: Mapping[str, str]) -> Reply:
        name = (params.get("module") or [""])[0]
        targets = params.get("target")
        text = targets[0] if targets else None
        module = self.modules.get(name)
        if not name or module is None:
            self.metrics.rejected.labels("bad_request").inc()
            known = ", ".join(sorted(self.modules))
            what = f"unknown module {name!r}" if name else "parameter 'module' is missing"
            return _bad_request(f"{what}; this exporter has: {known}")
        if text is None:
            self.metrics.rejected.labels("bad_request").inc()
            return _bad_request("parameter 'target' is missing (e.g. target=turn.example.com:3478)")
        try:
            prepared = prepare(module, text)
            timeout = self.budget(module, headers)
        except CallopsError as exc:
            self.metrics.rejected.labels("bad_request").inc()
            return _bad_request(str(exc))
        if self.pending >= self.settings.max_pending:
            self.metrics.rejected.labels("busy").inc()
            return Reply(503, TEXT, f"busy: {self.pending} probes pending (max_pending)\n".encode())
        self.pending += 1
        if self._admitted is not None:
            async with self._admitted:
                self._admitted.notify_all()
        try:
            started = time.monotonic()
            outcome = await self._run(name, module, prepared.run, timeout, started + timeout)
            duration = time.monotonic() - started
        finally:
            self.pending -= 1
        if outcome.reason is not None:
            outcome.reason = redact(outcome.reason, self._secrets(module))
        self._record(name, text, outcome, duration)
        registry = probe_registry(outcome, duration_s=duration, timeout_s=timeout)
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        return Reply(200, content_type, encoder(registry))

    async def _run(
        self, name: str, module: Module, runner: Runner, timeout: float, deadline: float
    ) -> ProbeOutcome:
        slot = self.slots[name]
        waiting = self.metrics.waiting.labels(name)
        waiting.inc()
        try:
            await asyncio.wait_for(slot.acquire(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return ProbeOutcome.failed(
                f"exporter busy: no free slot of module {name!r} within the probe's {timeout:.1f} s "
                f"(concurrency {module.concurrency}; raise it or scrape less often)"
            )
        finally:
            waiting.dec()
        left = deadline - time.monotonic()
        if left < MIN_RUN_SHARE * timeout:
            # a slot freed just before the deadline: too little time to probe, and "no answer" would lie
            slot.release()
            return ProbeOutcome.failed(
                f"exporter busy: a slot of module {name!r} freed only {max(0.0, left):.2f} s before the "
                f"probe's {timeout:.1f} s ran out (concurrency {module.concurrency}; raise it or scrape "
                "less often)"
            )
        in_flight = self.metrics.in_flight.labels(name)
        in_flight.inc()
        try:
            left = max(0.001, left)
            run = runner(left, self.env)
            return await asyncio.wait_for(run, left + CANCEL_GRACE)
        except CallopsError as exc:
            return ProbeOutcome.failed(str(exc))
        except TimeoutError:
            return ProbeOutcome.failed(f"no answer within {timeout:.1f} s")
        except Exception as exc:  # a bug or an unexpected library error: a failed probe, not a crash
            log.debug("probe %s crashed", name, exc_info=True)
            return ProbeOutcome.failed(f"unexpected {exc.__class__.__name__}: {exc}")
        finally:
            in_flight.dec()
            slot.release()

    def _secrets(self, module: Module) -> list[Secret | str | None]:
        sources = getattr(module, "secret_sources", None)
        return list(sources(self.env)) if sources is not None else []

    def _record(self, name: str, target: str, outcome: ProbeOutcome, duration: float) -> None:
        result = "success" if outcome.success else "failure"
        self.metrics.probes.labels(name, result).inc()
        self.metrics.duration.labels(name).observe(duration)
        self.history.append(ProbeRecord(time.time(), name, target, outcome.success, duration, outcome.reason))
        if not outcome.success:
            log.warning(
                "probe module=%s target=%s failed in %.3f s: %s", name, target, duration, outcome.reason
            )


__all__ = ["TIMEOUT_HEADER", "Exporter", "ExporterMetrics", "ProbeRecord", "Reply"]
