"""Generated media (a tone, moving frames) and receiving sinks that verify decoded frames.

Sources pace themselves on the event loop's monotonic clock like aiortc's own dummy tracks, so a
call carries real-time media. Sinks pull decoded frames from a remote track and note the time of
the first one: "media verified, not assumed".
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

AUDIO_RATE = 48_000
AUDIO_PTIME = 0.020
VIDEO_CLOCK = 90_000
VIDEO_FPS = 15


class ToneTrack(MediaStreamTrack):
    """A sine tone (default 440 Hz), 48 kHz mono s16, 20 ms frames -- encoded to Opus by aiortc."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        self._samples = samples
        # One period-aligned buffer of 1 s, sliced per frame.
        t = np.arange(AUDIO_RATE, dtype=np.float64) / AUDIO_RATE
        self._wave = (np.sin(2 * math.pi * frequency * t) * amplitude * 32767).astype(np.int16)
        self._start: float | None = None
        self._pts = 0
        self._time_base = fractions.Fraction(1, AUDIO_RATE)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += self._samples
            wait = self._start + self._pts / AUDIO_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        offset = self._pts % AUDIO_RATE
        chunk = np.take(self._wave, range(offset, offset + self._samples), mode="wrap")
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._pts
        frame.time_base = self._time_base
        return frame


_TONE_PACKETS: dict[float, list[bytes]] = {}


def encoded_tone(frequency: float = 440.0) -> list[bytes]:
    """One second of the tone as 50 Opus packets (20 ms), encoded once per process by aiortc's
    own Opus encoder (libopus, 48 kHz, voip) and cached."""
    cached = _TONE_PACKETS.get(frequency)
    if cached is not None:
        return cached
    from aiortc.codecs.opus import OpusEncoder

    encoder = OpusEncoder()
    source = ToneTrack(frequency)
    packets: list[bytes] = []
    samples = int(AUDIO_RATE * AUDIO_PTIME)
    for index in range(2 * AUDIO_RATE // samples):  # 2 s: the first packets prime the encoder
        offset = (index * samples) % AUDIO_RATE
        chunk = np.take(source._wave, range(offset, offset + samples), mode="wrap")
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        payloads, _ = encoder.encode(frame)
        packets += payloads
    source.stop()
    _TONE_PACKETS[frequency] = packets = packets[-(AUDIO_RATE // samples) :]
    return packets


class EncodedToneTrack(MediaStreamTrack):
    """The tone as pre-encoded Opus packets, paced at 20 ms: the sender skips per-frame encoding
    (for load tests with many peers in one process); receivers still decode every packet."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        self._packets = encoded_tone(frequency)
        self._samples = int(AUDIO_RATE * AUDIO_PTIME)
        self._start: float | None = None
        self._index = 0
        self._time_base = fractions.Fraction(1, AUDIO_RATE)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._index += 1
            wait = self._start + self._index * AUDIO_PTIME - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts = self._index * self._samples
        packet.time_base = self._time_base
        return packet


class PatternTrack(MediaStreamTrack):
    """Moving gradient frames (default 320x240 at 15 fps) -- encoded to VP8 by aiortc."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = VIDEO_FPS) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._start: float | None = None
        self._index = 0
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK)
        x = np.arange(width, dtype=np.uint16)
        y = np.arange(height, dtype=np.uint16)
        self._base = (x[None, :] + y[:, None]).astype(np.uint16)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._index += 1
            wait = self._start + self._index / self.fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        shift = (self._index * 4) % 256
        luma = ((self._base + shift) % 256).astype(np.uint8)
        rgb = np.stack([luma, np.full_like(luma, 128), 255 - luma], axis=-1)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = int(self._index * VIDEO_CLOCK / self.fps)
        frame.time_base = self._time_base
        return frame


class MediaSink:
    """Consume a remote track: count decoded frames, call ``on_first(kind, when)`` on the first one."""

    def __init__(
        self,
        track: MediaStreamTrack,
        *,
        on_first: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.track = track
        self.kind: str = track.kind
        self.frames = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._on_first = on_first
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.first_frame = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"sink-{self.kind}")

    async def wait_frames(self, count: int) -> None:
        """Return once ``count`` frames in total have been decoded."""
        if self.frames >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        try:
            await future
        finally:
            self._waiters = [(n, f) for n, f in self._waiters if f is not future]

    def reset(self) -> None:
        """Forget the first frame (used when a call is re-established after a resume)."""
        self.first_at = None
        self.first_frame = asyncio.Event()

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame | av.VideoFrame):  # pragma: no cover - encoded packets
                continue
            now = self._clock()
            self.frames += 1
            self.last_at = now
            for count, future in self._waiters:
                if self.frames >= count and not future.done():
                    future.set_result(None)
            if self.first_at is None:
                self.first_at = now
                self.first_frame.set()
                if self._on_first is not None:
                    self._on_first(self.kind, now)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await task


__all__ = [
    "AUDIO_RATE",
    "VIDEO_FPS",
    "EncodedToneTrack",
    "MediaSink",
    "PatternTrack",
    "ToneTrack",
    "encoded_tone",
]
