"""Generated media (a tone, moving frames) and receiving sinks that verify decoded frames.

Sources pace themselves on the event loop's monotonic clock like aiortc's own dummy tracks, so a
call carries real-time media. Sinks pull decoded frames from a remote track and note the time of
the first one: "media verified, not assumed".
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

AUDIO_RATE = 48_000
AUDIO_PTIME = 0.020
VIDEO_CLOCK = 90_000
VIDEO_FPS = 15


def tone_chunks(frequency: float = 440.0, amplitude: float = 0.3) -> list[bytes]:
    """One second of a sine tone as 50 chunks of 20 ms (48 kHz mono s16, native byte order)."""
    samples = int(AUDIO_RATE * AUDIO_PTIME)
    level = amplitude * 32767
    wave = array.array(
        "h", (round(level * math.sin(2 * math.pi * frequency * n / AUDIO_RATE)) for n in range(AUDIO_RATE))
    )
    data = wave.tobytes()
    step = samples * wave.itemsize
    return [data[k : k + step] for k in range(0, len(data), step)]


def _audio_frame(chunk: bytes, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
    frame.planes[0].update(chunk)
    frame.sample_rate = AUDIO_RATE
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, AUDIO_RATE)
    return frame


class _Paced(MediaStreamTrack):
    """A track that hands out one frame per ``period`` seconds, on a fixed clock."""

    def __init__(self, period: float) -> None:
        super().__init__()
        self._period = period
        self._start: float | None = None
        self._index = 0

    async def _next(self) -> int:
        """The index of the next frame, once it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._index += 1
            wait = self._start + self._index * self._period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        return self._index


class _PacedAudio(_Paced):
    """An audio track that hands out one 20 ms frame per :data:`AUDIO_PTIME`."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__(AUDIO_PTIME)
        self._samples = int(AUDIO_RATE * AUDIO_PTIME)


class ToneTrack(_PacedAudio):
    """A sine tone (default 440 Hz), 48 kHz mono s16, 20 ms frames -- encoded to Opus by aiortc."""

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self._chunks = tone_chunks(frequency, amplitude)

    async def recv(self) -> av.AudioFrame:
        index = await self._next()
        return _audio_frame(self._chunks[index % len(self._chunks)], index * self._samples)


_TONE_PACKETS: dict[float, list[bytes]] = {}


def encoded_tone(frequency: float = 440.0) -> list[bytes]:
    """One second of the tone as 50 Opus packets (20 ms), encoded once per process by aiortc's
    own Opus encoder (libopus, 48 kHz, voip) and cached."""
    cached = _TONE_PACKETS.get(frequency)
    if cached is not None:
        return cached
    from aiortc.codecs.opus import OpusEncoder

    encoder = OpusEncoder()
    chunks = tone_chunks(frequency)
    packets: list[bytes] = []
    samples = int(AUDIO_RATE * AUDIO_PTIME)
    for index in range(2 * len(chunks)):  # 2 s: the first packets prime the encoder
        payloads, _ = encoder.encode(_audio_frame(chunks[index % len(chunks)], index * samples))
        packets += payloads
    _TONE_PACKETS[frequency] = packets = packets[-len(chunks) :]
    return packets


class EncodedToneTrack(_PacedAudio):
    """The tone as pre-encoded Opus packets, paced at 20 ms: the sender skips per-frame encoding
    (for load tests with many peers in one process); receivers still decode every packet."""

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        self._packets = encoded_tone(frequency)
        self._time_base = fractions.Fraction(1, AUDIO_RATE)

    async def recv(self) -> av.Packet[Any]:
        index = await self._next()
        packet = av.Packet(self._packets[index % len(self._packets)])
        packet.pts = index * self._samples
        packet.time_base = self._time_base
        return packet


@functools.cache
def _gradient(width: int, height: int, line_size: int) -> bytes:
    """A diagonal luma gradient with the plane's line padding (computed once per size)."""
    return bytes((x + y) % 256 if x < width else 0 for y in range(height) for x in range(line_size))


class PatternTrack(_Paced):
    """A moving diagonal gradient (default 320x240 at 15 fps, yuv420p) -- encoded to VP8 by aiortc."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = VIDEO_FPS) -> None:
        super().__init__(1 / fps)
        self.width, self.height, self.fps = width, height, fps
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK)

    def _frame(self) -> av.VideoFrame:
        frame = av.VideoFrame(width=self.width, height=self.height, format="yuv420p")
        luma_plane = frame.planes[0]
        luma = _gradient(self.width, self.height, luma_plane.line_size)
        shift = (self._index * 4) % 256
        luma_plane.update(luma.translate(bytes((v + shift) % 256 for v in range(256))))
        for chroma_plane in frame.planes[1:]:
            chroma_plane.update(bytes([(128 + shift) % 256]) * chroma_plane.buffer_size)
        return frame

    async def recv(self) -> av.VideoFrame:
        index = await self._next()
        frame = self._frame()
        frame.pts = int(index * VIDEO_CLOCK / self.fps)
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
