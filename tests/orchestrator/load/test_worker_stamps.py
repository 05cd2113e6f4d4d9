"""The worker's receive times over UDP are the kernel's (SO_TIMESTAMPNS), not the time it read the
datagram: a datagram that waits in the socket buffer while the loop sleeps to the next send tick
keeps its arrival time (real sockets on loopback)."""

from __future__ import annotations

import select
import socket
import time

from callops.orchestrator.load.plan import LoadPlan
from callops.orchestrator.load.worker import _CHANNEL_PACKET, Credentials, Worker, _Call
from callops.turn.traffic import MAGIC, VERSION

#: how long the datagram waits in the buffer before the worker reads it
HELD_S = 0.05


def _held_datagram(
    worker: Worker, call: _Call, sender: socket.socket, peer: object, seq: int
) -> tuple[int, int, int, float]:
    """Datagram ``seq`` sent, left in the buffer for HELD_S, then read: (sent, arrived by, stamp, read at)."""
    sent_us = int(time.monotonic() * 1_000_000)
    packet = bytearray(4 + 120)
    _CHANNEL_PACKET.pack_into(packet, 0, 0x4000, 120, MAGIC, VERSION, 0, call.cid, seq, sent_us, 0, 0)
    sender.send(packet)
    readable, _, _ = select.select([peer.sock], [], [], 5)  # type: ignore[attr-defined]
    assert readable, "the datagram did not arrive"
    arrived_by_us = int(time.monotonic() * 1_000_000)
    time.sleep(HELD_S)  # the fault: the loop reads late (it slept to the next send tick)
    now = time.monotonic()
    worker._clock_offset_us = int((time.time() - now) * 1_000_000)
    worker._read_stamped(peer, now)  # type: ignore[arg-type]
    return sent_us, arrived_by_us, call.cur[0]._last_arrival_us, now


def test_a_datagram_read_late_keeps_its_kernel_arrival_time() -> None:
    plan = LoadPlan(turn="turn:127.0.0.1:3478", calls=1, duration_s=1)
    worker = Worker(
        plan, 0, ("127.0.0.1", 3478), Credentials("u", "p"), report=lambda _: None, should_stop=lambda: False
    )
    assert worker.stamped
    call = _Call(1, time.monotonic())
    worker.calls[call.cid] = call  # closed with the worker
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        peer = worker._new_peer(call, 1)  # side b receives direction 0 (a to b)
        call.peers = [peer]
        peer.sock.bind(("127.0.0.1", 0))
        sender.connect(peer.sock.getsockname())
        # The kernel turns receive timestamps on for the whole system asynchronously (a deferred
        # static key) when the first socket asks: until then a datagram is stamped when it is
        # read. The first datagrams may therefore carry the late time; a few rounds, bounded.
        for seq in range(5):
            sent_us, arrived_by_us, stamp_us, now = _held_datagram(worker, call, sender, peer, seq)
            if stamp_us - sent_us <= arrived_by_us - sent_us + 1000:
                break
        assert call.cur[0].packets >= 1
        transit_us = stamp_us - sent_us
        # the kernel stamped it before select returned; reading 50 ms later moves nothing
        assert 0 <= transit_us <= arrived_by_us - sent_us + 1000
        assert stamp_us < int(now * 1_000_000) - HELD_S * 1_000_000 / 2
    finally:
        sender.close()
        worker.close()


def test_tcp_workers_do_not_sleep_through_arrivals() -> None:
    plan = LoadPlan(turn="turn:127.0.0.1:3478?transport=tcp", calls=1, duration_s=1)
    worker = Worker(
        plan, 0, ("127.0.0.1", 3478), Credentials("u", "p"), report=lambda _: None, should_stop=lambda: False
    )
    try:
        assert not worker.stamped
    finally:
        worker.close()
