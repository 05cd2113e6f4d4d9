"""The timeline of one call: milliseconds from the invitation to each phase.

Sans-I/O: the adapter passes the current monotonic time in; the first mark of a phase wins and
later marks of the same phase are ignored (a re-sent ``ACCEPTED`` must not move ``accepted``).
"""

from __future__ import annotations

import logging
from typing import Final

log = logging.getLogger(__name__)

#: Every phase a call can reach, in the order a successful call reaches them.
PHASES: Final[tuple[str, ...]] = (
    "invited",
    "offered",
    "accepted",
    "offer_sent",
    "answer_received",
    "ice_checking",
    "ice_connected",
    "dtls_connected",
    "first_audio",
    "first_video",
    "resumed",
    "media_again",
    "dropped",
    "closed",
)


class Timeline:
    """Phase -> time, relative to ``origin`` (the invitation), in milliseconds."""

    def __init__(self, origin: float, *, name: str = "call") -> None:
        self.origin = origin
        self.name = name
        self._marks: dict[str, float] = {}

    def mark(self, phase: str, now: float) -> bool:
        """Record ``phase`` at ``now`` (monotonic seconds). Returns False if it was already marked."""
        if phase not in PHASES:
            raise ValueError(f"unknown call phase {phase!r}; known: {', '.join(PHASES)}")
        if phase in self._marks:
            return False
        self._marks[phase] = now
        log.debug("%s: %s at +%.1f ms", self.name, phase, (now - self.origin) * 1000.0)
        return True

    def has(self, phase: str) -> bool:
        return phase in self._marks

    def at(self, phase: str) -> float | None:
        """Monotonic time of ``phase``, or None."""
        return self._marks.get(phase)

    def between(self, start: str, end: str) -> float | None:
        """Milliseconds from ``start`` to ``end``, or None if either is missing."""
        a, b = self._marks.get(start), self._marks.get(end)
        if a is None or b is None:
            return None
        return round((b - a) * 1000.0, 1)

    def as_ms(self) -> dict[str, float]:
        """Every marked phase in :data:`PHASES` order, as ms from the origin (0.1 ms resolution)."""
        return {
            phase: round((self._marks[phase] - self.origin) * 1000.0, 1)
            for phase in PHASES
            if phase in self._marks
        }


__all__ = ["PHASES", "Timeline"]
