"""Call-shaped relayed traffic: media profiles, the packet schedule, the payload codec, receiver stats.

Pure code for the hot path of ``callops load`` (and the bandwidth test of ``callops probe``): no I/O,
no clock of its own (every function takes ``now`` in seconds of one monotonic clock), plain classes
with ``__slots__`` (no pydantic per packet).

- :class:`MediaProfile` -- what one direction of a call sends, as data: voice is Opus in 20 ms
  frames, one packet of 100-160 bytes each (50 packets/s); video is a bitrate cut into frames at
  15-30 fps, each frame bursted as MTU-sized packets (a key frame every ``keyframe_interval_s``).
- :class:`PacketSchedule` -- when to send what size: :meth:`~PacketSchedule.due` returns the packet
  sizes of every frame whose time has come; one schedule per direction, driven by one loop.
- The payload codec -- a fixed 32-byte header (:data:`HEADER_SIZE`) with the call id, direction,
  sequence number, send timestamp and an echoed timestamp (for RTT, like RTCP's LSR/DLSR),
  zero-padded to the packet size: :func:`pack_packet`/:func:`pack_into` and :func:`unpack_header`.
- :class:`ReceiverStats` -- what the receiving end of one direction measured: packets, bytes,
  loss (a stopped tail included once the sender's count is known), duplicates, reordering,
  RFC 3550 interarrival jitter, one-way delay and RTT from echoed timestamps, with percentiles
  from bounded log-scale :class:`Histogram` objects (memory per direction does not grow with time).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

#: the payload header's magic and version
MAGIC = b"CL"
VERSION = 1
#: magic, version, direction, call id, sequence, send time (us), echoed send time (us), echo delay (us)
HEADER_FORMAT = "!2sBBIIQQI"
_HEADER = struct.Struct(HEADER_FORMAT)
HEADER_SIZE = _HEADER.size
#: Largest payload :func:`pack_packet` makes (fits a ChannelData message in one UDP datagram).
MAX_PACKET = 65000
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

# -- media profiles ---------------------------------------------------------------------------------

MediaKind = Literal["audio", "video"]

#: Largest payload callops sends in one packet: WebRTC keeps RTP packets near 1200 bytes so that
#: they fit an IPv6 path MTU with TURN and tunnel overheads on top.
DEFAULT_MTU_PAYLOAD = 1200


@dataclass(frozen=True, slots=True)
class MediaProfile:
    """What one direction of a call sends."""

    #: profile name as the CLI and reports spell it (``voice``, ``video``)
    name: str
    kind: MediaKind
    #: frames per second (voice: 50, one 20 ms Opus frame per packet)
    fps: float
    #: mean media bitrate in bits per second, payload bytes on the wire to the relay
    bitrate_bps: int
    #: smallest and largest packet (payload bytes, header included)
    min_packet: int
    max_packet: int
    #: a key frame (``keyframe_factor`` times the size of a delta frame) every this many seconds;
    #: 0 means no key frames (voice)
    keyframe_interval_s: float = 0.0
    keyframe_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("audio", "video"):
            raise ValueError(f"profile {self.name!r}: kind {self.kind!r} is not 'audio' or 'video'")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"profile {self.name!r}: fps {self.fps} is outside 1-120")
        if self.bitrate_bps <= 0:
            raise ValueError(f"profile {self.name!r}: bitrate_bps {self.bitrate_bps} must be positive")
        if not HEADER_SIZE <= self.min_packet <= self.max_packet <= MAX_PACKET:
            raise ValueError(
                f"profile {self.name!r}: packet sizes {self.min_packet}-{self.max_packet} must satisfy "
                f"{HEADER_SIZE} <= min_packet <= max_packet <= {MAX_PACKET}"
            )
        if self.keyframe_interval_s < 0 or self.keyframe_factor < 1:
            raise ValueError(
                f"profile {self.name!r}: keyframe_interval_s must be >= 0 and keyframe_factor >= 1"
            )

    @property
    def frame_interval_s(self) -> float:
        return 1.0 / self.fps

    @property
    def frames_per_keyframe(self) -> int:
        """Frames from one key frame to the next (0: no key frames)."""
        if self.keyframe_interval_s <= 0 or self.keyframe_factor <= 1:
            return 0
        return max(1, round(self.keyframe_interval_s * self.fps))

    @property
    def delta_frame_bytes(self) -> float:
        """Bytes of an ordinary frame so that the mean over a key-frame period is the bitrate."""
        mean = self.bitrate_bps / 8 / self.fps
        period = self.frames_per_keyframe
        if period == 0:
            return mean
        return mean * period / (period - 1 + self.keyframe_factor)

    @property
    def packets_per_second(self) -> float:
        """Mean packets per second in one direction."""
        if self.kind == "audio":
            return self.fps
        period = self.frames_per_keyframe
        delta = math.ceil(self.delta_frame_bytes / self.max_packet)
        if period == 0:
            return delta * self.fps
        key = math.ceil(self.delta_frame_bytes * self.keyframe_factor / self.max_packet)
        return (delta * (period - 1) + key) * self.fps / period


#: Opus voice as WebRTC sends it: 20 ms frames, ~32 kbit/s VBR plus RTP/SRTP headers gives
#: 100-160-byte packets, 50 packets/s.
VOICE = MediaProfile(name="voice", kind="audio", fps=50, bitrate_bps=52_000, min_packet=100, max_packet=160)

#: A 720p-ish video stream: 1.5 Mbit/s at 30 fps in MTU-sized packets, a key frame every 2 s
#: at 4x the size of a delta frame.
VIDEO = MediaProfile(
    name="video",
    kind="video",
    fps=30,
    bitrate_bps=1_500_000,
    min_packet=200,
    max_packet=DEFAULT_MTU_PAYLOAD,
    keyframe_interval_s=2.0,
    keyframe_factor=4.0,
)

PROFILES: Mapping[str, MediaProfile] = {VOICE.name: VOICE, VIDEO.name: VIDEO}


def video_profile(
    bitrate_bps: int, fps: float = 30, *, mtu_payload: int = DEFAULT_MTU_PAYLOAD, name: str = "video"
) -> MediaProfile:
    """A video profile of ``bitrate_bps`` at ``fps`` (WebRTC video runs at 15-30 fps)."""
    return MediaProfile(
        name=name,
        kind="video",
        fps=fps,
        bitrate_bps=bitrate_bps,
        min_packet=min(200, mtu_payload),
        max_packet=mtu_payload,
        keyframe_interval_s=2.0,
        keyframe_factor=4.0,
    )


def profile_named(name: str) -> MediaProfile:
    """The built-in profile ``name``; ValueError names the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown media profile {name!r}: use one of {', '.join(PROFILES)}") from None


# -- the packet schedule ----------------------------------------------------------------------------


class PacketSchedule:
    """When one direction sends what size: frames at the profile's rate from ``start``.

    :meth:`due` returns the packet sizes of every frame due at ``now`` (a video frame is a burst of
    several packets) and advances :attr:`next_due`. A sender that fell more than ``max_lag_s``
    behind skips the frames it missed (a codec does not send stale frames) and counts them in
    :attr:`skipped_frames` -- a generator that skips frames is itself the bottleneck.
    Packet sizes come from a small deterministic generator seeded by ``seed``.
    """

    __slots__ = (
        "_delta_bytes",
        "_frame",
        "_interval",
        "_key_every",
        "_key_factor",
        "_max",
        "_min",
        "_start",
        "_state",
        "max_lag_s",
        "next_due",
        "profile",
        "skipped_frames",
    )

    def __init__(self, profile: MediaProfile, start: float, *, seed: int = 1, max_lag_s: float = 0.2) -> None:
        if max_lag_s <= 0:
            raise ValueError(f"max_lag_s {max_lag_s} must be positive")
        self.profile = profile
        self.next_due = start
        self._start = start
        self.max_lag_s = max_lag_s
        self.skipped_frames = 0
        self._interval = profile.frame_interval_s
        self._frame = 0
        self._key_every = profile.frames_per_keyframe
        self._key_factor = profile.keyframe_factor
        self._delta_bytes = profile.delta_frame_bytes
        self._min = profile.min_packet
        self._max = profile.max_packet
        self._state = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1

    def _random(self) -> int:
        """xorshift32: cheap, deterministic, good enough to vary packet sizes."""
        x = self._state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._state = x
        return x

    def frame_sizes(self) -> list[int]:
        """Packet sizes of the next frame (advances the frame counter, not the time)."""
        frame = self._frame
        self._frame = frame + 1
        if self.profile.kind == "audio":
            return [self._min + self._random() % (self._max - self._min + 1)]
        size = self._delta_bytes
        if self._key_every and frame % self._key_every == 0:
            size *= self._key_factor
        # +-10 % around the target so that frames differ as an encoder's do
        size *= 0.9 + (self._random() % 2001) / 10000
        total = max(self._min, int(size))
        count = -(-total // self._max)
        each, rest = divmod(total, count)
        sizes = [each + 1] * rest + [each] * (count - rest)
        return [min(self._max, max(self._min, s)) for s in sizes]

    def due(self, now: float) -> list[int]:
        """Sizes of the packets of every frame due at ``now``, in sending order (often empty)."""
        if now < self.next_due:
            return []
        lag = now - self.next_due
        if lag > self.max_lag_s:
            missed = int((lag - self.max_lag_s) / self._interval) + 1
            self.skipped_frames += missed
            self._frame += missed
            self.next_due = self._start + self._frame * self._interval
        sizes: list[int] = []
        while self.next_due <= now:
            sizes.extend(self.frame_sizes())
            self.next_due = self._start + self._frame * self._interval
        return sizes


# -- the payload codec ------------------------------------------------------------------------------


class Direction(IntEnum):
    """Which way a packet goes within a call: from its first peer to its second, or back."""

    A_TO_B = 0
    B_TO_A = 1

    @property
    def reverse(self) -> Direction:
        return Direction(1 - self.value)


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """The fixed header at the start of every load packet (network byte order)."""

    call_id: int
    direction: Direction
    #: 0, 1, 2, ... per call and direction
    sequence: int
    #: sender's clock when the packet left, microseconds
    sent_us: int
    #: send time (us) of the newest packet the sender had received the other way (0: none yet)
    echo_us: int = 0
    #: how long (us) the sender held that packet before this one left
    echo_delay_us: int = 0


def _check_fields(  # noqa: PLR0917 -- the header's six fields
    call_id: int, direction: int, sequence: int, sent_us: int, echo_us: int, delay: int
) -> None:
    if not 0 <= call_id <= _U32:
        raise ValueError(f"call_id {call_id} is outside 0-{_U32}")
    if direction not in (0, 1):
        raise ValueError(f"direction {direction} is not 0 (a->b) or 1 (b->a)")
    if not 0 <= sequence <= _U32:
        raise ValueError(f"sequence {sequence} is outside 0-{_U32}")
    if not 0 <= sent_us <= _U64:
        raise ValueError(f"sent_us {sent_us} is outside 0-{_U64}")
    if not 0 <= echo_us <= _U64:
        raise ValueError(f"echo_us {echo_us} is outside 0-{_U64}")
    if not 0 <= delay <= _U32:
        raise ValueError(f"echo_delay_us {delay} is outside 0-{_U32}")


def pack_packet(header: PacketHeader, size: int) -> bytes:
    """``header`` followed by zeros up to ``size`` bytes."""
    if not HEADER_SIZE <= size <= MAX_PACKET:
        raise ValueError(f"packet size {size} is outside {HEADER_SIZE}-{MAX_PACKET}")
    buffer = bytearray(size)
    pack_into(
        buffer,
        0,
        header.call_id,
        header.direction,
        header.sequence,
        header.sent_us,
        header.echo_us,
        header.echo_delay_us,
    )
    return bytes(buffer)


def pack_into(  # noqa: PLR0917 -- the hot path: positional, no objects
    buffer: bytearray | memoryview,
    offset: int,
    call_id: int,
    direction: int,
    sequence: int,
    sent_us: int,
    echo_us: int = 0,
    echo_delay_us: int = 0,
) -> None:
    """Write a header into ``buffer`` at ``offset`` (the hot path: no objects made)."""
    try:
        _HEADER.pack_into(
            buffer, offset, MAGIC, VERSION, direction, call_id, sequence, sent_us, echo_us, echo_delay_us
        )
    except struct.error:
        _check_fields(call_id, direction, sequence, sent_us, echo_us, echo_delay_us)
        if len(buffer) - offset < HEADER_SIZE:
            raise ValueError(
                f"buffer has {max(0, len(buffer) - offset)} bytes after offset {offset}, "
                f"the header needs {HEADER_SIZE}"
            ) from None
        raise


def unpack_fields(
    data: bytes | bytearray | memoryview, offset: int = 0
) -> tuple[int, int, int, int, int, int]:
    """``(call_id, direction, sequence, sent_us, echo_us, echo_delay_us)`` of the packet at ``offset``."""
    if len(data) - offset < HEADER_SIZE:
        raise ValueError(
            f"packet of {max(0, len(data) - offset)} bytes is shorter than the {HEADER_SIZE}-byte header"
        )
    magic, version, direction, call_id, sequence, sent_us, echo_us, delay = _HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        raise ValueError(f"bad magic {bytes(magic)!r}: not a callops load packet (expected {MAGIC!r})")
    if version != VERSION:
        raise ValueError(f"unsupported load packet version {version} (this callops speaks {VERSION})")
    if direction > 1:
        raise ValueError(f"bad direction {direction}: not 0 (a->b) or 1 (b->a)")
    return call_id, direction, sequence, sent_us, echo_us, delay


def unpack_header(data: bytes | bytearray | memoryview, offset: int = 0) -> PacketHeader:
    """The :class:`PacketHeader` of ``data``; ValueError with the exact problem on bad input."""
    call_id, direction, sequence, sent_us, echo_us, delay = unpack_fields(data, offset)
    return PacketHeader(call_id, Direction(direction), sequence, sent_us, echo_us, delay)


def to_us(seconds: float) -> int:
    """Seconds of the monotonic clock to the header's microseconds."""
    return int(seconds * 1_000_000)


# -- histograms and percentiles ---------------------------------------------------------------------

#: sub-buckets per power of two: values are kept to within 1/16 (6 %)
_SUB_BITS = 4
_SUB = 1 << _SUB_BITS


def bucket_of(value: int) -> int:
    """The bucket index of a non-negative integer (exact below 16, then 16 buckets per octave)."""
    if value < _SUB:
        return max(0, value)
    shift = value.bit_length() - _SUB_BITS - 1
    return _SUB * (shift + 1) + ((value >> shift) - _SUB)


def bucket_value(index: int) -> float:
    """The midpoint of bucket ``index`` (its value for percentiles)."""
    if index < _SUB:
        return float(index)
    shift = index // _SUB - 1
    low = (_SUB + index % _SUB) << shift
    return low + ((1 << shift) - 1) / 2


class Histogram:
    """Counts of non-negative integer samples (microseconds) in log-scale buckets, bounded size.

    Mergeable (:meth:`merge`), serialisable as a sparse ``{bucket: count}`` mapping
    (:meth:`to_counts`/:meth:`from_counts`), so shard reports merge exactly.
    """

    __slots__ = ("count", "counts", "max", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.max = 0

    def add(self, value: int) -> None:
        # bucket_of, inlined: this runs several times per packet
        if value < _SUB:
            if value < 0:  # noqa: PLR1730 -- the hot path
                value = 0
            index = value
        else:
            shift = value.bit_length() - _SUB_BITS - 1
            index = ((shift + 1) << _SUB_BITS) + (value >> shift) - _SUB
        counts = self.counts
        counts[index] = counts.get(index, 0) + 1
        self.count += 1
        self.total += value
        if value > self.max:  # noqa: PLR1730 -- faster than max() on the hot path
            self.max = value

    def merge(self, other: Histogram) -> None:
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100, nearest rank) or None without samples."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile {q} is outside 0-100")
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(bucket_value(index), float(self.max))
        return float(self.max)  # pragma: no cover - counts add up to count

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def to_counts(self) -> dict[str, int]:
        """``{"bucket": count}`` plus ``"total"``/``"max"`` -- JSON-friendly."""
        out = {str(i): n for i, n in sorted(self.counts.items())}
        out["total"] = self.total
        out["max"] = self.max
        return out

    @classmethod
    def from_counts(cls, data: Mapping[str, int]) -> Histogram:
        """The inverse of :meth:`to_counts`; ValueError on a bad bucket or count."""
        histogram = cls()
        for key, n in data.items():
            if key in ("total", "max"):
                continue
            if not key.isdigit() or not isinstance(n, int) or n < 0:
                raise ValueError(f"histogram bucket {key!r}: {n!r} is not a bucket index with a count >= 0")
            histogram.counts[int(key)] = n
            histogram.count += n
        histogram.total = int(data.get("total", 0))
        histogram.max = int(data.get("max", 0))
        return histogram


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``, or None when there are none."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- receiver statistics ----------------------------------------------------------------------------

#: how far back duplicates are recognised (sequence numbers)
REORDER_WINDOW = 1024
_WINDOW_MASK = (1 << REORDER_WINDOW) - 1


@dataclass(frozen=True, slots=True)
class DirectionSummary:
    """What one direction of one call measured (times in milliseconds)."""

    packets_sent: int | None
    packets_received: int
    bytes_received: int
    packets_lost: int
    loss_percent: float
    duplicates: int
    reordered: int
    #: RFC 3550 interarrival jitter at the end, and percentiles of its value over the call
    jitter_ms: float
    jitter_p50_ms: float | None
    jitter_p99_ms: float | None
    #: one-way delay (meaningful when both ends share a clock, as in one load worker)
    delay_p50_ms: float | None
    delay_p99_ms: float | None
    #: round trips measured from echoed timestamps, by the sender of this direction
    rtt_p50_ms: float | None
    rtt_p99_ms: float | None
    rtt_samples: int


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


class ReceiverStats:
    """The receiving end of one direction of one call.

    :meth:`on_packet` for each arrival (``now`` and the header's ``sequence``/``sent_us``);
    :meth:`echo` gives the (``echo_us``, ``echo_delay_us``) pair to put in the next packet going the
    other way; the end that gets that packet back calls :meth:`on_echo` on *its* stats for the
    direction it sends (so RTT is kept by the direction whose packets made the round trip).
    :meth:`summary` with the sender's count makes a stopped tail count as loss.
    """

    __slots__ = (
        "_echo_recv_at",
        "_echo_sent_us",
        "_last_arrival_us",
        "_last_sent_us",
        "_window",
        "bytes",
        "delay",
        "duplicates",
        "highest",
        "jitter_hist",
        "jitter_us",
        "packets",
        "reordered",
        "rtt",
    )

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.duplicates = 0
        self.reordered = 0
        self.highest = -1
        self._window = 0
        #: RFC 3550 section 6.4.1 J, in microseconds (float, as the recurrence needs)
        self.jitter_us = 0.0
        self.jitter_hist = Histogram()
        self.delay = Histogram()
        self.rtt = Histogram()
        self._last_arrival_us = -1
        self._last_sent_us = 0
        self._echo_sent_us = 0
        self._echo_recv_at = 0

    def on_packet(self, sequence: int, sent_us: int, size: int, now_us: int) -> None:
        """Account for one arriving packet (``now_us``: the receiver's clock in microseconds)."""
        highest = self.highest
        if sequence > highest:
            gap = sequence - highest
            self._window = ((self._window << gap) | 1) & _WINDOW_MASK if gap < REORDER_WINDOW else 1
            self.highest = sequence
        else:
            back = highest - sequence
            if back < REORDER_WINDOW:
                bit = 1 << back
                if self._window & bit:
                    self.duplicates += 1
                    return
                self._window |= bit
            self.reordered += 1
        self.packets += 1
        self.bytes += size
        transit = now_us - sent_us
        self.delay.add(transit)
        # RFC 3550 section 6.4.1 and A.8: J += (|D(i-1,i)| - J) / 16, in arrival order
        if self._last_arrival_us >= 0:
            d = transit - (self._last_arrival_us - self._last_sent_us)
            if d < 0:
                d = -d
            self.jitter_us += (d - self.jitter_us) / 16
            self.jitter_hist.add(int(self.jitter_us))
        self._last_arrival_us = now_us
        self._last_sent_us = sent_us
        if sent_us >= self._echo_sent_us:
            self._echo_sent_us = sent_us
            self._echo_recv_at = now_us

    def echo(self, now_us: int) -> tuple[int, int]:
        """``(echo_us, echo_delay_us)`` for the next packet sent back: the newest send time seen."""
        if self._last_arrival_us < 0:
            return 0, 0
        return self._echo_sent_us, min(_U32, max(0, now_us - self._echo_recv_at))

    def on_echo(self, echo_us: int, echo_delay_us: int, now_us: int) -> None:
        """A packet came back carrying one of our send times: one RTT sample (none if ``echo_us`` is 0)."""
        if echo_us:
            self.rtt.add(now_us - echo_us - echo_delay_us)

    def lost(self, sent: int | None = None) -> int:
        """Packets missing: of ``sent`` when the sender's count is known, else up to the highest seen."""
        expected = sent if sent is not None else self.highest + 1
        return max(0, expected - self.packets)

    def summary(self, sent: int | None = None) -> DirectionSummary:
        lost = self.lost(sent)
        expected = sent if sent is not None else self.highest + 1
        return DirectionSummary(
            packets_sent=sent,
            packets_received=self.packets,
            bytes_received=self.bytes,
            packets_lost=lost,
            loss_percent=round(100 * lost / expected, 3) if expected > 0 else 0.0,
            duplicates=self.duplicates,
            reordered=self.reordered,
            jitter_ms=round(self.jitter_us / 1000, 3),
            jitter_p50_ms=_ms(self.jitter_hist.percentile(50)),
            jitter_p99_ms=_ms(self.jitter_hist.percentile(99)),
            delay_p50_ms=_ms(self.delay.percentile(50)),
            delay_p99_ms=_ms(self.delay.percentile(99)),
            rtt_p50_ms=_ms(self.rtt.percentile(50)),
            rtt_p99_ms=_ms(self.rtt.percentile(99)),
            rtt_samples=self.rtt.count,
        )


def iter_frames(schedule: PacketSchedule, until: float) -> Iterator[tuple[float, list[int]]]:
    """``(due time, packet sizes)`` of every frame of ``schedule`` before ``until`` (for tests and
    planning; a live sender calls :meth:`PacketSchedule.due`)."""
    while schedule.next_due < until:
        at = schedule.next_due
        yield at, schedule.due(at)


__all__ = [
    "DEFAULT_MTU_PAYLOAD",
    "HEADER_FORMAT",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PACKET",
    "PROFILES",
    "REORDER_WINDOW",
    "VERSION",
    "VIDEO",
    "VOICE",
    "Direction",
    "DirectionSummary",
    "Histogram",
    "MediaKind",
    "MediaProfile",
    "PacketHeader",
    "PacketSchedule",
    "ReceiverStats",
    "bucket_of",
    "bucket_value",
    "iter_frames",
    "pack_into",
    "pack_packet",
    "percentile",
    "profile_named",
    "to_us",
    "unpack_fields",
    "unpack_header",
    "video_profile",
]
