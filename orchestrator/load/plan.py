"""The load plan: which relay, what traffic, how many calls when, and the hard caps.

A plan is data (pydantic, it crosses into worker processes and into reports). :meth:`LoadPlan.steps`
is the documented schedule: a fixed run is one step of ``calls`` for ``duration_s``; a ramp is
``start, start+step, ...`` up to ``max`` calls, each step ``step_s`` long, at most
:data:`MAX_STEPS` steps, and it stops at the first step that fails. :meth:`LoadPlan.check_caps`
refuses a plan over the caps with a :class:`~callops.errors.UsageError` (exit 2) naming the flag
that raises the cap.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callops.errors import UsageError
from callops.turn.traffic import MediaProfile, profile_named, video_profile
from callops.turn.uri import ServerUri, parse_uri

LoadTransport = Literal["udp", "tcp", "tls"]

#: the most steps a ramp may have, whatever its flags say
MAX_STEPS = 50


class Caps(BaseModel):
    """Hard limits; each has a flag to raise it, none can be switched off."""

    model_config = ConfigDict(frozen=True)

    #: concurrent calls (``--max-calls``)
    max_calls: int = Field(default=600, ge=1, le=100_000)
    #: packets per second sent to the relay, both directions of every call (``--max-rate``)
    max_rate: int = Field(default=60_000, ge=1, le=10_000_000)
    #: seconds of load in all (``--max-duration``)
    max_duration_s: float = Field(default=900.0, gt=0, le=86_400)


class Thresholds(BaseModel):
    """When a call counts as degraded (``--max-loss``, ``--max-jitter``)."""

    model_config = ConfigDict(frozen=True)

    max_loss_percent: float = Field(default=1.0, ge=0, le=100)
    max_jitter_p99_ms: float = Field(default=30.0, gt=0)


class Ramp(BaseModel):
    """``start, start+step, ...`` calls up to ``max``, each step ``step_s`` seconds."""

    model_config = ConfigDict(frozen=True)

    start: int = Field(default=10, ge=1)
    step: int = Field(default=10, ge=1)
    max: int = Field(default=200, ge=1)
    step_s: float = Field(default=10.0, ge=2)


class Step(BaseModel):
    """One step of the schedule: ``calls`` concurrent calls from ``start_s`` for ``duration_s``."""

    model_config = ConfigDict(frozen=True)

    index: int
    calls: int
    start_s: float
    duration_s: float


class LoadPlan(BaseModel):
    """Everything a worker needs except the credentials."""

    model_config = ConfigDict(frozen=True)

    turn: str
    profile: str = "voice"
    #: video only: bitrate and frame rate of the profile
    video_bitrate_bps: int = Field(default=1_500_000, ge=10_000, le=50_000_000)
    video_fps: float = Field(default=30, ge=15, le=30)
    calls: int = Field(default=10, ge=1)
    duration_s: float = Field(default=10.0, gt=0)
    ramp: Ramp | None = None
    workers: int = Field(default=1, ge=1, le=256)
    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1)
    thresholds: Thresholds = Thresholds()
    caps: Caps = Caps()
    #: TURN timers: requested allocation lifetime, refresh and channel-rebind intervals
    lifetime_s: int = Field(default=600, ge=30, le=3600)
    refresh_s: float | None = Field(default=None, gt=0)
    rebind_s: float = Field(default=240.0, gt=0, le=290)
    #: seconds given to in-flight packets after a step ends before it is counted
    drain_s: float = Field(default=0.5, ge=0.05, le=5)
    ca_file: str | None = None
    insecure: bool = False

    @property
    def uri(self) -> ServerUri:
        return parse_uri(self.turn)

    @property
    def transport(self) -> LoadTransport:
        uri = self.uri
        return "tls" if uri.secure else uri.transport

    @property
    def media(self) -> MediaProfile:
        if self.profile == "video":
            return video_profile(self.video_bitrate_bps, self.video_fps)
        return profile_named(self.profile)

    def steps(self) -> list[Step]:
        """The schedule (see the module docstring)."""
        if self.ramp is None:
            return [Step(index=0, calls=self.calls, start_s=0.0, duration_s=self.duration_s)]
        ramp = self.ramp
        counts = list(range(ramp.start, ramp.max + 1, ramp.step))[:MAX_STEPS]
        if not counts:
            counts = [ramp.max]
        return [
            Step(index=i, calls=n, start_s=i * ramp.step_s, duration_s=ramp.step_s)
            for i, n in enumerate(counts)
        ]

    @property
    def peak_calls(self) -> int:
        return max(step.calls for step in self.steps())

    @property
    def total_s(self) -> float:
        last = self.steps()[-1]
        return last.start_s + last.duration_s

    def packet_rate(self, calls: int) -> float:
        """Packets per second sent to the relay by ``calls`` calls (both directions)."""
        return calls * 2 * self.media.packets_per_second

    def check(self) -> None:
        """Refuse a plan the caps or the URI do not allow (UsageError, exit 2)."""
        uri = self.uri
        if not uri.is_turn:
            raise UsageError(
                f"--turn {self.turn}: not a turn:/turns: URI", hint="e.g. turn:relay.example.com:3478"
            )
        if self.shard_index >= self.shard_count:
            raise UsageError(
                f"--shard {self.shard_index}/{self.shard_count}: the index must be below the count",
                hint="shards are numbered 0 .. N-1",
            )
        if self.ramp is not None and self.ramp.max < self.ramp.start:
            raise UsageError(
                f"--ramp-max {self.ramp.max} is below --ramp-start {self.ramp.start}",
                hint="raise --ramp-max",
            )
        self.media  # noqa: B018 -- validates the profile name and video options
        caps = self.caps
        peak = self.peak_calls
        if peak > caps.max_calls:
            raise UsageError(
                f"the plan reaches {peak} concurrent calls, over the cap of {caps.max_calls}",
                hint="lower --calls/--ramp-max, or raise the cap with --max-calls",
            )
        rate = self.packet_rate(peak)
        if rate > caps.max_rate:
            raise UsageError(
                f"the plan sends {math.ceil(rate)} packets/s at its peak, over the cap of {caps.max_rate}",
                hint="fewer calls, or raise the cap with --max-rate",
            )
        if self.total_s > caps.max_duration_s:
            raise UsageError(
                f"the plan runs {self.total_s:g} s, over the cap of {caps.max_duration_s:g} s",
                hint="shorten --duration/--step-duration, or raise the cap with --max-duration",
            )

    def call_ids(self, calls: int, worker: int) -> list[int]:
        """Global ids (1..calls) of the calls this shard's ``worker`` runs when ``calls`` are up."""
        mine = [c for c in range(1, calls + 1) if (c - 1) % self.shard_count == self.shard_index]
        return [c for i, c in enumerate(mine) if i % self.workers == worker]


def parse_shard(text: str) -> tuple[int, int]:
    """``i/N`` -> ``(i, N)`` with ``0 <= i < N``; UsageError names the fix."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or int(count) < 1 or int(index) >= int(count):
        raise UsageError(f"--shard {text!r}: expected i/N with 0 <= i < N", hint="e.g. --shard 0/4")
    return int(index), int(count)


__all__ = ["MAX_STEPS", "Caps", "LoadPlan", "LoadTransport", "Ramp", "Step", "Thresholds", "parse_shard"]
