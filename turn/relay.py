"""The relay data test: packets through a TURN allocation and back; loss and round-trip time.

:class:`RelayStats` is the sans-I/O part (sequence numbers and times in, loss and RTT out; time is
passed in). :class:`EchoPeer` is a UDP echo server for loopback tests and the audit's own peer.
:func:`round_trips` drives an allocation: it sends ``count`` numbered packets to a peer that echoes
them (a local :class:`EchoPeer`, or a second allocation on the same server that sends back what it
receives -- so the test needs nothing but the TURN server), and waits until all are back or the
deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from typing import Any

from pydantic import BaseModel

from callops.turn.allocation import Allocation
from callops.turn.stun import Address, DatagramEndpoint

log = logging.getLogger(__name__)

#: Test packets: this tag, then a 32-bit sequence number.
PACKET_TAG = b"callops-relay"
_PACKET = struct.Struct("!13sI")


def relay_packet(seq: int) -> bytes:
    return _PACKET.pack(PACKET_TAG, seq)


def packet_seq(data: bytes) -> int | None:
    """The sequence number of a test packet, or None for anything else."""
    if len(data) != _PACKET.size:
        return None
    tag, seq = _PACKET.unpack(data)
    return int(seq) if tag == PACKET_TAG else None


class RelayResult(BaseModel):
    sent: int
    received: int
    #: fraction lost, 0..1
    loss: float
    rtt_ms_p50: float | None
    rtt_ms_max: float | None


class RelayStats:
    """Send and receive times of numbered packets (a plain class: it sits on the packet path)."""

    __slots__ = ("received_at", "sent_at")

    def __init__(self) -> None:
        self.sent_at: dict[int, float] = {}
        self.received_at: dict[int, float] = {}

    def sent(self, seq: int, now: float) -> None:
        self.sent_at[seq] = now

    def received(self, seq: int, now: float) -> None:
        """Record an echo; duplicates and packets never sent are ignored."""
        if seq in self.sent_at and seq not in self.received_at:
            self.received_at[seq] = now

    @property
    def complete(self) -> bool:
        return bool(self.sent_at) and len(self.received_at) == len(self.sent_at)

    def result(self) -> RelayResult:
        rtts = sorted((self.received_at[s] - self.sent_at[s]) * 1000 for s in self.received_at)
        sent = len(self.sent_at)
        return RelayResult(
            sent=sent,
            received=len(rtts),
            loss=(sent - len(rtts)) / sent if sent else 0.0,
            rtt_ms_p50=round(rtts[len(rtts) // 2], 3) if rtts else None,
            rtt_ms_max=round(rtts[-1], 3) if rtts else None,
        )


class EchoPeer(DatagramEndpoint):
    """A UDP server that sends every datagram back to where it came from."""

    def __init__(self) -> None:
        self.echoed = 0

    @classmethod
    async def start(cls, host: str = "127.0.0.1", port: int = 0) -> EchoPeer:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return protocol

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is not None:
            self.echoed += 1
            self.transport.sendto(data, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def echo_through(allocation: Allocation) -> None:
    """Make ``allocation`` send every packet it receives back to its sender (the echoing side)."""
    allocation.on_data(allocation.send)


async def round_trips(
    allocation: Allocation,
    peer: Address,
    *,
    count: int,
    timeout: float,
    interval: float = 0.0,
) -> RelayResult:
    """Send ``count`` packets through ``allocation`` to ``peer`` (which echoes); collect them for ``timeout``.

    The permission for ``peer`` must exist. ``interval`` spaces the packets (0: a burst).
    """
    stats = RelayStats()
    done = asyncio.Event()

    def on_data(data: bytes, source: Address) -> None:
        seq = packet_seq(data)
        if seq is not None:
            stats.received(seq, time.monotonic())
            if stats.complete and len(stats.sent_at) == count:
                done.set()

    allocation.on_data(on_data)
    deadline = time.monotonic() + timeout
    try:
        for seq in range(count):
            stats.sent(seq, time.monotonic())
            allocation.send(relay_packet(seq), peer)
            if interval:
                await asyncio.sleep(interval)
        if stats.complete:
            done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), max(0.001, deadline - time.monotonic()))
    finally:
        allocation.on_data(None)
    return stats.result()


__all__ = [
    "PACKET_TAG",
    "EchoPeer",
    "RelayResult",
    "RelayStats",
    "echo_through",
    "packet_seq",
    "relay_packet",
    "round_trips",
]
