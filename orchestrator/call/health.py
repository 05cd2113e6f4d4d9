"""Mid-call health: is media still flowing both ways, are both transports still up?

Sans-I/O: the watcher has no clock and no event loop. An adapter (the poller in
:mod:`callops.orchestrator.call.leg` for aiortc peers; a browser leg would feed it from
``getStats()``) passes observations in with the current monotonic time and gets events out:

* :meth:`HealthWatcher.observe_frames` -- the running total of decoded frames of one media kind
  in one direction (``agent->consumer``: the consumer's sink; ``framesDecoded`` or audio
  ``totalSamplesReceived`` in a browser);
* :meth:`HealthWatcher.observe_transport` -- one side's ICE (``ice``) or DTLS/connection
  (``dtls``) state;
* :meth:`HealthWatcher.tick` -- time passes without an observation.

Rules (docs/call.md, "Mid-call health"):

* a direction whose decoded-frame count has not grown for more than ``interruption_after_s``
  (1 s) is **interrupted** from its last progress; new frames end the interruption;
* an interruption that lasts ``drop_after_s`` (3 s) means the media stopped for good: the call is
  **dropped**;
* ICE ``disconnected`` and every ICE/DTLS state change after it is a **transport event**; ICE
  ``failed``/``closed`` or DTLS ``failed``/``closed`` cannot recover and drops the call at once;
* the verdict names every cause in the order it happened ("media agent->consumer stopped at
  5.1 s; consumer ICE failed at 5.3 s").

Times in the report are milliseconds on the call's timeline (``origin``: the invitation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final, Literal

from callops.orchestrator.call.report import InterruptionEntry, TransportEventEntry

log = logging.getLogger(__name__)

#: a direction whose decoded frames stop for longer than this is interrupted (seconds)
INTERRUPTION_AFTER_S: Final = 1.0
#: an interruption this long is a dropped call: the verdict comes this long after the last frame
DROP_AFTER_S: Final = 3.0

Layer = Literal["ice", "dtls"]

#: states after which a transport never carries media again
FATAL_STATES: Final[dict[str, frozenset[str]]] = {
    "ice": frozenset({"failed", "closed"}),
    "dtls": frozenset({"failed", "closed"}),
}
#: states worth a transport event even when they recover
TROUBLE_STATES: Final[dict[str, frozenset[str]]] = {
    "ice": frozenset({"disconnected", "failed", "closed"}),
    "dtls": frozenset({"failed", "closed"}),
}


@dataclass
class Interruption:
    """A stretch without decoded frames in one direction (``to_s`` None: it never recovered)."""

    kind: str
    direction: str
    from_s: float
    to_s: float | None = None


@dataclass(frozen=True)
class TransportChange:
    """One side's ICE or DTLS state changed to a state worth reporting."""

    side: str
    layer: Layer
    state: str
    at_s: float

    @property
    def label(self) -> str:
        """``ice-disconnected``, ``dtls-closed``, ...: the report's ``state``."""
        return f"{self.layer}-{self.state}"


@dataclass(frozen=True)
class Dropped:
    """The verdict: the call's media stopped for good. ``causes`` in the order they happened."""

    at_s: float
    causes: tuple[str, ...]


HealthEvent = Interruption | TransportChange | Dropped


@dataclass
class _Flow:
    kind: str
    direction: str
    frames: int = 0
    progress_s: float = 0.0
    open: Interruption | None = None


@dataclass
class HealthWatcher:
    """Media flow and transport state of one call during its media phase (see module docs)."""

    #: (kind, direction) of every flow to watch, e.g. ("audio", "agent->consumer")
    flows: tuple[tuple[str, str], ...]
    #: monotonic time the media phase starts (every flow counts as fresh then)
    start_s: float
    #: monotonic time of the call's t=0 (the invitation), for the report's milliseconds
    origin_s: float
    interruption_after_s: float = INTERRUPTION_AFTER_S
    drop_after_s: float = DROP_AFTER_S
    interruptions: list[Interruption] = field(default_factory=list)
    transport_events: list[TransportChange] = field(default_factory=list)
    dropped: Dropped | None = None
    _flows: dict[tuple[str, str], _Flow] = field(default_factory=dict, init=False)
    _states: dict[tuple[str, str], str] = field(default_factory=dict, init=False)
    _troubled: set[tuple[str, str]] = field(default_factory=set, init=False)
    #: what is wrong right now (recovered problems are no cause): key -> (since, in words)
    _causes: dict[object, tuple[float, str]] = field(default_factory=dict, init=False)
    _finished: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        for kind, direction in self.flows:
            self._flows[(kind, direction)] = _Flow(kind, direction, progress_s=self.start_s)

    # -- observations in -------------------------------------------------------------------------

    def observe_frames(self, kind: str, direction: str, frames: int, now: float) -> list[HealthEvent]:
        """The running total of decoded frames of ``kind`` in ``direction`` at ``now``."""
        flow = self._flows.get((kind, direction))
        if flow is None or self._finished:
            return []
        events: list[HealthEvent] = []
        if frames > flow.frames:
            flow.frames = frames
            if flow.open is not None:
                flow.open.to_s = now
                self._causes.pop(id(flow.open), None)
                events.append(flow.open)
                log.info("%s %s: media back after %.1f s", kind, direction, now - flow.open.from_s)
                flow.open = None
            flow.progress_s = now
        return events + self.tick(now)

    def observe_transport(self, side: str, layer: Layer, state: str, now: float) -> list[HealthEvent]:
        """``side``'s ``layer`` (``ice``/``dtls``) is in ``state`` at ``now``."""
        key = (side, layer)
        if self._finished or self._states.get(key) == state:
            return []
        previous, self._states[key] = self._states.get(key), state
        if previous is None and state not in TROUBLE_STATES[layer]:
            return self.tick(now)  # the first (healthy) state is the baseline, not an event
        if state not in TROUBLE_STATES[layer] and key not in self._troubled:
            return self.tick(now)
        change = TransportChange(side, layer, state, now)
        self.transport_events.append(change)
        log.info("%s %s state %s at %+.1f s", side, layer, state, now - self.origin_s)
        events: list[HealthEvent] = [change]
        if state in TROUBLE_STATES[layer]:
            self._troubled.add(key)
            self._causes.setdefault(key, (now, f"{side} {layer.upper()} {state} at {self._seconds(now)}"))
        else:
            self._troubled.discard(key)
            self._causes.pop(key, None)
        if state in FATAL_STATES[layer]:
            events += self._drop(now)
        return events + self.tick(now)

    def tick(self, now: float) -> list[HealthEvent]:
        """Time passed: open interruptions that are due, and the drop verdict."""
        if self._finished:
            return []
        events: list[HealthEvent] = []
        for flow in self._flows.values():
            silent = now - flow.progress_s
            if flow.open is None and silent > self.interruption_after_s:
                flow.open = Interruption(flow.kind, flow.direction, flow.progress_s)
                self.interruptions.append(flow.open)
                events.append(flow.open)
                self._causes[id(flow.open)] = (
                    flow.progress_s,
                    f"media {self._label(flow)} stopped at {self._seconds(flow.progress_s)}",
                )
                log.info("%s %s: no decoded frames for %.1f s", flow.kind, flow.direction, silent)
        if any(f.open is not None and now - f.progress_s >= self.drop_after_s for f in self._flows.values()):
            events += self._drop(now)
        return events

    def finish(self, now: float) -> None:
        """The media phase is over (hang-up): stop watching; open interruptions stay open."""
        self.tick(now)
        self._finished = True

    # -- facts out --------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self.dropped is None

    def interrupted_s(self, kind: str, direction: str, until: float) -> float:
        """Seconds ``kind`` in ``direction`` was interrupted up to ``until`` (for the quality estimate)."""
        return sum(
            max(0.0, (i.to_s if i.to_s is not None else until) - i.from_s)
            for i in self.interruptions
            if i.kind == kind and i.direction == direction
        )

    def ms(self, at_s: float) -> float:
        """``at_s`` as milliseconds on the call's timeline."""
        return round((at_s - self.origin_s) * 1000.0, 1)

    def failure(self) -> str | None:
        """The dropped verdict in words: its causes, first first; None while healthy."""
        if self.dropped is None:
            return None
        return "call dropped: " + "; ".join(self.dropped.causes)

    def interruption_entries(self) -> list[InterruptionEntry]:
        """The report's ``interruptions`` (ms on the call's timeline)."""
        return [
            InterruptionEntry(
                kind=i.kind,  # type: ignore[arg-type]
                direction=i.direction,
                from_ms=self.ms(i.from_s),
                to_ms=None if i.to_s is None else self.ms(i.to_s),
            )
            for i in self.interruptions
        ]

    def transport_entries(self) -> list[TransportEventEntry]:
        """The report's ``transport_events`` (ms on the call's timeline)."""
        return [
            TransportEventEntry(side=e.side, state=e.label, at_ms=self.ms(e.at_s))
            for e in self.transport_events
        ]

    # -- internals --------------------------------------------------------------------------------

    def _label(self, flow: _Flow) -> str:
        kinds = {kind for kind, _ in self.flows}
        return flow.direction if len(kinds) == 1 else f"{flow.kind} {flow.direction}"

    def _seconds(self, at_s: float) -> str:
        return f"{at_s - self.origin_s:.1f} s"

    def _drop(self, now: float) -> list[HealthEvent]:
        if self.dropped is not None:
            return []
        causes = tuple(text for _, text in sorted(self._causes.values(), key=lambda c: c[0]))
        self.dropped = Dropped(now, causes)
        log.warning("call dropped at %+.1f s: %s", now - self.origin_s, "; ".join(causes))
        return [self.dropped]


__all__ = [
    "DROP_AFTER_S",
    "FATAL_STATES",
    "INTERRUPTION_AFTER_S",
    "TROUBLE_STATES",
    "Dropped",
    "HealthEvent",
    "HealthWatcher",
    "Interruption",
    "TransportChange",
]
