"""One load worker: many simulated calls in one process, one tight loop, no asyncio.

Each call is two allocations (peer ``a`` and peer ``b``) on the relay, each on its own socket (UDP,
TCP or TLS to the relay). Their control planes are :class:`~.turnclient.TurnClient` state
machines; once both are allocated, each binds a channel to the other's relayed address, and the
call sends ChannelData both ways on the profile's :class:`~callops.turn.traffic.PacketSchedule`.

The loop: send what the schedules say is due (a heap ordered by due time -- no task per packet),
``epoll`` the sockets and drain each readable one until it would block (batched reads), feed STUN
to the clients and ChannelData to the receiver statistics, poll the clients' timers every
100 ms. Memory per call is bounded: two schedules, four :class:`ReceiverStats` (current and
previous step), and a send buffer for stream transports capped at :data:`MAX_STREAM_BUFFER`.

Steps: at a step boundary each call's statistics roll over (packets sent before the boundary
still count for the old step when they arrive late); ``drain_s`` later the old step is summed and
sent to the parent as a :class:`~.report.StepPart`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import heapq
import logging
import os
import resource
import select
import signal
import socket
import ssl
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType

from aioice import stun

from callops.orchestrator.load.plan import LoadPlan, Step
from callops.orchestrator.load.reporting import CallResult, DirectionResult, StepHistograms, StepPart
from callops.orchestrator.load.turnclient import FIRST_CHANNEL, TurnClient
from callops.turn.traffic import (
    HEADER_FORMAT,
    MAGIC,
    VERSION,
    Histogram,
    PacketSchedule,
    ReceiverStats,
    unpack_fields,
)

log = logging.getLogger(__name__)

#: bytes a stream peer may queue before packets are dropped (and counted as generator drops)
MAX_STREAM_BUFFER = 256 * 1024
#: how often the TURN clients' timers run
CONTROL_PERIOD_S = 0.1
#: new allocations started per loop turn (spreads setup bursts)
SETUPS_PER_TURN = 16
#: packets due within this many seconds go out now: one wake-up sends a batch (the send
#: timestamp is the real one, so this moves no measured figure)
SEND_EARLY_S = 0.005
#: new ports tried for one call whose allocations meet 437 (a stale allocation on the 5-tuple)
MAX_REPLACEMENTS = 3
#: a call not up within this many seconds fails
SETUP_TIMEOUT_S = 10.0
#: the longest the loop sleeps or waits in one go
MAX_WAIT_S = 0.01
#: SO_TIMESTAMPNS / SCM_TIMESTAMPNS (Linux; not exported by the socket module)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
#: ancillary buffer for one ``struct timespec``
_ANC_SIZE = socket.CMSG_SPACE(16)
_TIMESPEC = struct.Struct("@qq")

#: a ChannelData header followed by the load packet header (callops.turn.traffic)
_CHANNEL_PACKET = struct.Struct("!HH" + HEADER_FORMAT[1:])
_LOAD_HEADER = struct.Struct(HEADER_FORMAT)
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
#: the :class:`DirectionResult` fields a direction's :class:`DirectionSummary` gives as they are
_SUMMARY_FIELDS = ("reordered", "duplicates", "jitter_p50_ms", "jitter_p99_ms", "rtt_p50_ms", "rtt_p99_ms")


@dataclasses.dataclass(slots=True, repr=False)
class Credentials:
    """The TURN username/password the workers authenticate with (never printed)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


class _Peer:
    """One allocation: socket, TURN client, stream buffers."""

    __slots__ = (
        "call",
        "client",
        "connected",
        "events",
        "fd",
        "inbuf",
        "outbuf",
        "side",
        "sock",
        "stream",
    )

    def __init__(self, call: _Call, side: int, sock: socket.socket, client: TurnClient, stream: bool) -> None:
        self.call = call
        self.side = side
        #: the socket, an ssl.SSLSocket once a TLS peer is connected
        self.sock: socket.socket = sock
        self.fd = sock.fileno()
        self.client = client
        self.stream = stream
        self.connected = not stream
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.events = 0


class _Call:
    __slots__ = (
        "base",
        "cid",
        "cur",
        "error",
        "error_code",
        "peers",
        "prev",
        "prev_sent",
        "replacements",
        "schedules",
        "send_drops",
        "seq",
        "setup_ms",
        "started",
        "state",
    )

    def __init__(self, cid: int, now: float) -> None:
        self.cid = cid
        self.state = "setup"
        self.peers: list[_Peer] = []
        self.started = now
        self.setup_ms: float | None = None
        self.error: str | None = None
        self.error_code: int | None = None
        self.seq = [0, 0]
        self.base = [0, 0]
        self.cur = [ReceiverStats(), ReceiverStats()]
        self.prev: list[ReceiverStats] | None = None
        self.prev_sent = [0, 0]
        self.schedules: list[PacketSchedule] = []
        self.send_drops = 0
        self.replacements = 0


@dataclasses.dataclass(slots=True)
class _Ending:
    """A step that ended and waits ``drain_s`` for late packets before it is summed up."""

    step: Step
    due: float
    cpu_s: float
    wall_s: float
    states: dict[int, str]
    partial: bool = dataclasses.field(kw_only=True)


@dataclasses.dataclass(slots=True)
class _Progress:
    """Where :meth:`Worker.run` is in the plan's steps."""

    steps: list[Step]
    #: when the current step started (monotonic) and the CPU time used by then
    started: float
    cpu_started: float
    index: int = 0
    #: the step that ended and drains, not yet reported
    ending: _Ending | None = None
    #: the last step ended (the loop ends once it is reported)
    ended: bool = False
    #: should_stop() said so: end the current step now, as partial
    stopping: bool = False

    @property
    def step(self) -> Step:
        return self.steps[self.index]

    def step_end(self, t0: float) -> float:
        return t0 + self.step.start_s + self.step.duration_s


@dataclasses.dataclass(eq=False, repr=False)
class Worker:
    """Runs this worker's share of a :class:`LoadPlan` against one relay address."""

    plan: LoadPlan
    index: int
    server: tuple[str, int]
    credentials: Credentials
    _: dataclasses.KW_ONLY
    report: Callable[[StepPart], None]
    should_stop: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.transport = self.plan.transport
        self.profile = self.plan.media
        self.calls: dict[int, _Call] = {}
        self.by_fd: dict[int, _Peer] = {}
        self.heap: list[tuple[float, int, int]] = []
        self.epoll = select.epoll()
        self.pending_setup: list[_Peer] = []
        self.ssl_context: ssl.SSLContext | None = None
        self._buf = bytearray(65536)
        self._bufview = memoryview(self._buf)
        self._rbuf = bytearray(65536)
        self._rview = memoryview(self._rbuf)
        self._rbufs = [self._rbuf]
        self.stopped_early = False
        #: calls in state "setup": while there are any, the loop wakes for every arrival (STUN
        #: answers and setup times are not delayed to the next send tick)
        self.in_setup = 0
        #: realtime minus monotonic clock in microseconds (kernel timestamps are realtime)
        self._clock_offset_us = 0
        #: UDP with the real monotonic clock: the loop may sleep to the next send tick and take
        #: arrival times from the kernel (SO_TIMESTAMPNS) instead of waking for every datagram
        self.stamped = self.transport == "udp" and self.clock is time.monotonic
        if self.transport == "tls":
            from callops.turn.tls import client_context

            self.ssl_context = client_context(self.plan.ca_file, insecure=self.plan.insecure)

    # -- setup ------------------------------------------------------------------------------------

    def _open_call(self, cid: int, now: float) -> None:
        call = _Call(cid, now)
        self.calls[cid] = call
        self.in_setup += 1
        for side in (0, 1):
            call.peers.append(self._new_peer(call, side))

    def _new_peer(self, call: _Call, side: int) -> _Peer:
        """A socket and a TURN client for one side of ``call``, queued for setup."""
        stream = self.transport != "udp"
        sock = socket.socket(
            socket.AF_INET6 if ":" in self.server[0] else socket.AF_INET,
            socket.SOCK_STREAM if stream else socket.SOCK_DGRAM,
        )
        sock.setblocking(False)
        if self.stamped:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        client = TurnClient(
            self.credentials.username,
            self.credentials.password,
            stream=stream,
            lifetime=self.plan.lifetime_s,
            refresh_s=self.plan.refresh_s,
            rebind_s=self.plan.rebind_s,
            label=f"call {call.cid}{'ab'[side]}",
        )
        peer = _Peer(call, side, sock, client, stream)
        self.by_fd[peer.fd] = peer
        self.pending_setup.append(peer)
        return peer

    def _replace_peer(self, peer: _Peer) -> None:
        """437 on our 5-tuple: an allocation of an earlier run still holds this local port on the
        relay. Start this side again from another port (at most :data:`MAX_REPLACEMENTS` times)."""
        call = peer.call
        call.replacements += 1
        log.debug("call %d: 437 on %s, again from a new port", call.cid, peer.client.label)
        self._close_peer(peer)
        call.peers[peer.side] = self._new_peer(call, peer.side)

    def _start_peer(self, peer: _Peer, now: float) -> None:
        try:
            if peer.stream:
                err = peer.sock.connect_ex(self.server)
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
                peer.events = _EPOLLIN | _EPOLLOUT
                self.epoll.register(peer.fd, peer.events)
            else:
                peer.sock.connect(self.server)
                peer.events = _EPOLLIN
                self.epoll.register(peer.fd, peer.events)
                peer.client.allocate(now)
                self._flush_control(peer)
        except OSError as exc:
            self._fail_call(peer.call, f"{self.plan.uri.label}: {exc.strerror or exc}", 0)

    def _stream_writable(self, peer: _Peer, now: float) -> None:
        """Finish connect and TLS handshake; then flush the send buffer."""
        if not peer.connected:
            if not isinstance(peer.sock, ssl.SSLSocket):
                err = peer.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._fail_call(peer.call, f"{self.plan.uri.label}: {os.strerror(err)}", 0)
                    return
                peer.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.ssl_context is not None:
                    fd = peer.fd
                    peer.sock = self.ssl_context.wrap_socket(
                        peer.sock, server_hostname=self.plan.uri.host, do_handshake_on_connect=False
                    )
                    assert peer.sock.fileno() == fd
            if isinstance(peer.sock, ssl.SSLSocket):
                try:
                    peer.sock.do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return
                except (ssl.SSLError, OSError) as exc:
                    self._fail_call(peer.call, f"{self.plan.uri.label}: TLS handshake failed: {exc}", 0)
                    return
            peer.connected = True
            peer.client.allocate(now)
            self._flush_control(peer)
        self._flush_stream(peer)

    # -- sending ----------------------------------------------------------------------------------

    def _flush_control(self, peer: _Peer) -> None:
        for message in peer.client.data_to_send():
            if peer.stream:
                if peer.connected:
                    peer.outbuf += message
            else:
                with contextlib.suppress(OSError):
                    peer.sock.send(message)
        if peer.stream and peer.connected:
            self._flush_stream(peer)

    def _flush_stream(self, peer: _Peer) -> None:
        if peer.outbuf:
            try:
                sent = peer.sock.send(peer.outbuf)
                del peer.outbuf[:sent]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
            except OSError as exc:
                self._fail_call(peer.call, f"{self.plan.uri.label}: connection lost: {exc}", 0)
                return
        want = _EPOLLIN | (_EPOLLOUT if peer.outbuf else 0)
        if want != peer.events and peer.fd in self.by_fd:
            peer.events = want
            self.epoll.modify(peer.fd, want)

    def _send_media(self, call: _Call, direction: int, sizes: list[int], now: float) -> None:
        peer = call.peers[direction]
        channel = peer.client.channel
        buf = self._buf
        now_us = int(now * 1_000_000)
        echo_us, echo_delay = call.cur[1 - direction].echo(now_us)
        cid = call.cid
        seq = call.seq[direction]
        view = self._bufview
        for size in sizes:
            # ChannelData header and load header in one go (RFC 8656 section 12.4)
            _CHANNEL_PACKET.pack_into(
                buf, 0, channel, size, MAGIC, VERSION, direction, cid, seq, now_us, echo_us, echo_delay
            )
            total = 4 + size
            if peer.stream:
                total = (total + 3) & ~3  # RFC 8656 section 12.5: pad to 4 over TCP
                if len(peer.outbuf) + total > MAX_STREAM_BUFFER:
                    call.send_drops += 1
                    continue
                peer.outbuf += view[:total]
                seq += 1
            else:
                try:
                    peer.sock.send(view[:total])
                    seq += 1
                except (BlockingIOError, InterruptedError):
                    call.send_drops += 1
                except OSError:
                    seq += 1  # refused (ICMP unreachable): the relay is gone, the packet is lost on the way
        call.seq[direction] = seq
        if peer.stream:
            self._flush_stream(peer)

    # -- receiving --------------------------------------------------------------------------------

    def _readable(self, peer: _Peer, now: float) -> None:
        now_us = int(now * 1_000_000)
        if not peer.stream:
            # one datagram per readiness event: epoll is level-triggered, so a socket with more
            # queued comes back in the next poll -- cheaper than reading until EAGAIN raises
            try:
                n = peer.sock.recv_into(self._rbuf)
            except BlockingIOError:
                return
            except OSError as exc:
                self._receive_error(peer, exc)
                return
            self._datagram(peer, self._rbuf, n, now, now_us)
            return
        if not peer.connected:
            self._stream_writable(peer, now)
            return
        self._read_stream(peer, now, now_us)

    def _receive_error(self, peer: _Peer, exc: OSError) -> None:
        """An ICMP error on a datagram socket: nothing listens there (any more)."""
        if peer.call.state == "setup":
            self._fail_call(peer.call, f"{self.plan.uri.label}: {exc.strerror or exc}", 0)

    def _read_stamped(self, peer: _Peer, now: float) -> None:
        """One datagram with its kernel receive time (SO_TIMESTAMPNS): it may have waited in the
        socket buffer while the loop slept to the next send tick."""
        try:
            n, anc, _flags, _addr = peer.sock.recvmsg_into(self._rbufs, _ANC_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._receive_error(peer, exc)
            return
        if anc:
            sec, nsec = _TIMESPEC.unpack(anc[0][2])
            now_us = sec * 1_000_000 + nsec // 1000 - self._clock_offset_us
        else:
            now_us = int(now * 1_000_000)
        self._datagram(peer, self._rbuf, n, now, now_us)

    def _datagram(self, peer: _Peer, rbuf: bytearray, n: int, now: float, now_us: int) -> None:
        """One datagram from the relay: ChannelData (parsed in place) or a STUN message."""
        if n >= 36 and 0x40 <= rbuf[0] <= 0x4F:  # ChannelData: the common case, inline
            magic, version, direction, cid, seq, sent_us, echo_us, delay = _LOAD_HEADER.unpack_from(rbuf, 4)
            if magic != MAGIC or version != VERSION or direction > 1:
                return
            call = peer.call
            if cid != call.cid or direction == peer.side:
                return
            if seq >= call.base[direction]:
                call.cur[direction].on_packet(seq, sent_us, (rbuf[2] << 8) | rbuf[3], now_us)
            elif call.prev is not None:
                call.prev[direction].on_packet(seq, sent_us, (rbuf[2] << 8) | rbuf[3], now_us)
            call.cur[1 - direction].on_echo(echo_us, delay, now_us)
            return
        self._frame(peer, self._rview, 0, n, now, now_us)

    def _read_stream(self, peer: _Peer, now: float, now_us: int) -> None:
        chunks = 0
        while chunks < 64:
            try:
                data = peer.sock.recv(262144)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError):
                break
            except (OSError, ssl.SSLError) as exc:
                self._fail_call(peer.call, f"{self.plan.uri.label}: connection lost: {exc}", 0)
                return
            if not data:
                self._fail_call(peer.call, f"{self.plan.uri.label}: the relay closed the connection", 0)
                return
            peer.inbuf += data
            chunks += 1
        buf = peer.inbuf
        view = memoryview(buf)
        pos = 0
        end = len(buf)
        try:
            while end - pos >= 4:
                first = buf[pos]
                if 0x40 <= first <= 0x4F:
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    total = (4 + length + 3) & ~3
                else:
                    if end - pos < 20:
                        break
                    total = 20 + ((buf[pos + 2] << 8) | buf[pos + 3])
                if end - pos < total:
                    break
                self._frame(peer, view, pos, total, now, now_us)
                pos += total
        finally:
            view.release()
        if pos:
            del buf[:pos]

    def _frame(  # noqa: PLR0917 -- per packet: positional
        self, peer: _Peer, view: memoryview, pos: int, n: int, now: float, now_us: int
    ) -> None:
        first = view[pos]
        if 0x40 <= first <= 0x4F:
            if n < 36:
                return
            length = (view[pos + 2] << 8) | view[pos + 3]
            try:
                cid, direction, seq, sent_us, echo_us, delay = unpack_fields(view, pos + 4)
            except ValueError:
                return
            call = peer.call
            if cid != call.cid or direction == peer.side:
                return
            if seq >= call.base[direction]:
                call.cur[direction].on_packet(seq, sent_us, length, now_us)
            elif call.prev is not None:
                call.prev[direction].on_packet(seq, sent_us, length, now_us)
            call.cur[1 - direction].on_echo(echo_us, delay, now_us)
            return
        if first < 0x40:
            try:
                message = stun.parse_message(bytes(view[pos : pos + n]))
            except ValueError:
                return
            peer.client.receive(message, now)
            self._flush_control(peer)
            self._client_events(peer, now)

    # -- call state -------------------------------------------------------------------------------

    def _client_events(self, peer: _Peer, now: float) -> None:
        call = peer.call
        for event in peer.client.events():
            if event.kind == "failed":
                if event.code == 437 and call.state == "setup" and call.replacements < MAX_REPLACEMENTS:
                    self._replace_peer(peer)
                    return
                self._fail_call(call, event.detail, event.code)
                return
            if event.kind == "allocated" and call.state == "setup":
                a, b = call.peers
                if a.client.relayed is not None and b.client.relayed is not None:
                    for me, other in ((a, b), (b, a)):
                        assert other.client.relayed is not None
                        me.client.bind(other.client.relayed, FIRST_CHANNEL, now)
                        self._flush_control(me)
            elif (
                event.kind == "bound"
                and call.state == "setup"
                and all(p.client.state == "ready" for p in call.peers)
            ):
                self._activate(call, now)

    def _activate(self, call: _Call, now: float) -> None:
        call.state = "active"
        self.in_setup -= 1
        call.setup_ms = (now - call.started) * 1000
        log.debug("call %d active after %.1f ms", call.cid, call.setup_ms)
        interval = self.profile.frame_interval_s
        for direction in (0, 1):
            phase = ((call.cid * 7919 + direction * 104729) % 1000) / 1000 * interval
            schedule = PacketSchedule(self.profile, now + phase, seed=call.cid * 2 + direction + 1)
            call.schedules.append(schedule)
            heapq.heappush(self.heap, (schedule.next_due, call.cid, direction))

    def _fail_call(self, call: _Call, detail: str, code: int) -> None:
        if call.state == "failed":
            return
        log.debug("call %d failed: %s", call.cid, detail)
        if call.state == "setup":
            self.in_setup -= 1
        call.state = "failed"
        call.error = detail
        call.error_code = code
        for peer in call.peers:
            self._close_peer(peer)

    def _close_peer(self, peer: _Peer) -> None:
        if self.by_fd.pop(peer.fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self.epoll.unregister(peer.fd)
        with contextlib.suppress(OSError):
            peer.sock.close()

    # -- steps ------------------------------------------------------------------------------------

    def _roll(self) -> None:
        """Start a new measurement window for every call; the old one waits for late packets."""
        for call in self.calls.values():
            call.prev = call.cur
            call.prev_sent = [call.seq[d] - call.base[d] for d in (0, 1)]
            call.base = list(call.seq)
            call.cur = [ReceiverStats(), ReceiverStats()]

    def _summarise(self, ending: _Ending) -> StepPart:
        """The :class:`StepPart` of a step that ended (late packets had ``drain_s`` to arrive)."""
        jitter, rtt, delay = Histogram(), Histogram(), Histogram()
        results: list[CallResult] = []
        for cid, state in ending.states.items():
            call = self.calls[cid]
            stats, sent = call.prev, call.prev_sent
            active = state == "active"
            directions: list[DirectionResult] = []
            for d in (0, 1):
                st = stats[d] if stats is not None else ReceiverStats()
                summary = st.summary(sent[d])
                directions.append(
                    DirectionResult(
                        sent=sent[d],
                        received=summary.packets_received,
                        lost=summary.packets_lost if active else 0,
                        loss_percent=summary.loss_percent if active else 0.0,
                        **{name: getattr(summary, name) for name in _SUMMARY_FIELDS},
                    )
                )
                jitter.merge(st.jitter_hist)
                rtt.merge(st.rtt)
                delay.merge(st.delay)
            results.append(
                CallResult(
                    call=call.cid,
                    state="active" if active else ("failed" if state == "failed" else "setup"),
                    shard=self.plan.shard_index,
                    worker=self.index,
                    setup_ms=None if call.setup_ms is None else round(call.setup_ms, 2),
                    a_to_b=directions[0],
                    b_to_a=directions[1],
                    refreshes=sum(p.client.refreshes for p in call.peers),
                    rebinds=sum(p.client.rebinds for p in call.peers),
                    skipped_frames=sum(s.skipped_frames for s in call.schedules),
                    send_drops=call.send_drops,
                    error=call.error,
                    error_code=call.error_code,
                )
            )
            call.prev = None
        return StepPart(
            step=ending.step.index,
            shard=self.plan.shard_index,
            worker=self.index,
            calls=results,
            histograms=StepHistograms(
                jitter_us=jitter.to_counts(), rtt_us=rtt.to_counts(), delay_us=delay.to_counts()
            ),
            cpu_s=round(ending.cpu_s, 4),
            wall_s=round(ending.wall_s, 4),
            partial=ending.partial,
        )

    # -- the loop ---------------------------------------------------------------------------------

    def run(self, t0: float) -> None:
        """Run the plan's steps from ``t0`` (this machine's monotonic clock) until done or stopped."""
        progress = _Progress(self.plan.steps(), t0, time.process_time())
        end_at = t0 + self.plan.total_s
        next_control = t0
        next_stop_check = t0
        self._wait_for(t0)
        self._open_calls(progress.step, t0)
        while True:
            now = self.clock()
            if now >= next_stop_check:
                next_stop_check = now + 0.02
                if not progress.stopping and self.should_stop():
                    progress.stopping = True
                    self.stopped_early = True
            # a step ends: roll the statistics over, report it once late packets had time to arrive
            if not progress.ended and (progress.stopping or now >= end_at or now >= progress.step_end(t0)):
                self._end_step(progress, now)
            ending = progress.ending
            if ending is not None and (now >= ending.due or (progress.stopping and not progress.ended)):
                self.report(self._summarise(ending))
                progress.ending = None
                if progress.ended:
                    break
            if self.pending_setup:
                self._start_setups(now)
            self._send_due(now + SEND_EARLY_S)
            # control timers
            if now >= next_control:
                next_control = now + CONTROL_PERIOD_S
                self._control(now)
            self._wait_and_read()
        self.close()

    def _wait_for(self, t0: float) -> None:
        """Sleep until the common start time ``t0`` (every worker starts its calls at once)."""
        while self.clock() < t0:
            time.sleep(min(0.01, max(0.0, t0 - self.clock())))

    def _open_calls(self, step: Step, now: float) -> None:
        """Open this worker's calls of ``step`` that are not open yet."""
        for cid in self.plan.call_ids(step.calls, self.index):
            if cid not in self.calls:
                self._open_call(cid, now)

    def _end_step(self, progress: _Progress, now: float) -> None:
        """Roll every call's statistics over; the ended step drains, the next one starts."""
        if progress.ending is not None:  # the step before is still draining: report it now
            self.report(self._summarise(progress.ending))
        self._roll()
        cpu_now = time.process_time()
        stopping = progress.stopping
        last = stopping or progress.index + 1 >= len(progress.steps)
        drain = min(self.plan.drain_s, 0.2) if stopping else self.plan.drain_s
        progress.ending = _Ending(
            progress.step,
            now + drain,
            cpu_now - progress.cpu_started,
            now - progress.started,
            {cid: call.state for cid, call in self.calls.items()},
            partial=stopping,
        )
        progress.cpu_started, progress.started = cpu_now, now
        if last:
            progress.ended = True
            self.heap.clear()
        else:
            progress.index += 1
            self._open_calls(progress.step, now)

    def _start_setups(self, now: float) -> None:
        """Start up to :data:`SETUPS_PER_TURN` queued allocations."""
        batch = self.pending_setup[:SETUPS_PER_TURN]
        del self.pending_setup[:SETUPS_PER_TURN]
        for peer in batch:
            if peer.call.state == "setup":
                self._start_peer(peer, now)

    def _send_due(self, horizon: float) -> None:
        """Send every packet due by ``horizon``, each direction's batch at once."""
        heap = self.heap
        while heap and heap[0][0] <= horizon:
            _, cid, direction = heapq.heappop(heap)
            call = self.calls.get(cid)
            if call is None or call.state != "active":
                continue
            schedule = call.schedules[direction]
            sizes = schedule.due(horizon)
            if sizes:
                # the time of this send, not of the wake-up: a batch takes a while to go out
                self._send_media(call, direction, sizes, self.clock())
            heapq.heappush(heap, (schedule.next_due, cid, direction))

    def _wait_and_read(self) -> None:
        """Wait until the next packet is due, reading what arrives.

        Not until it is within SEND_EARLY_S: then every wake-up would send one direction's
        packet; this way each sends SEND_EARLY_S worth.
        """
        heap = self.heap
        timeout = MAX_WAIT_S
        if heap:
            timeout = min(timeout, max(0.0, heap[0][0] - self.clock()))
        if self.stamped and not self.in_setup and not self.pending_setup:
            self._wait_stamped(timeout)
            return
        # arrival times are taken when a datagram is read
        for fd, events in self.epoll.poll(timeout, 1024):
            peer = self.by_fd.get(fd)
            if peer is None:
                continue
            now = self.clock()
            if events & (_EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                self._readable(peer, now)
            if events & _EPOLLOUT and peer.fd in self.by_fd:
                self._stream_writable(peer, now)

    def _wait_stamped(self, timeout: float) -> None:
        """Sleep to the next send tick, then read what arrived meanwhile: one wake-up per tick
        instead of one per datagram. Receive times are the kernel's (SO_TIMESTAMPNS), so the wait
        moves no measured figure."""
        if timeout > 0:
            time.sleep(timeout)
        now = self.clock()
        self._clock_offset_us = int((time.time() - now) * 1_000_000)
        by_fd = self.by_fd
        # level-triggered: a socket with more queued is reported again by the next poll
        for _ in range(4):
            events = self.epoll.poll(0, 1024)
            if not events:
                return
            for fd, _ev in events:
                peer = by_fd.get(fd)
                if peer is not None:
                    self._read_stamped(peer, now)

    def _control(self, now: float) -> None:
        for call in self.calls.values():
            if call.state == "failed":
                continue
            if call.state == "setup" and now - call.started > SETUP_TIMEOUT_S:
                self._fail_call(
                    call, f"{self.plan.uri.label}: call not set up within {SETUP_TIMEOUT_S:g} s", 0
                )
                continue
            for peer in call.peers:
                if peer.fd in self.by_fd and peer.connected:
                    peer.client.poll(now)
                    self._flush_control(peer)
                    self._client_events(peer, now)
                    if call.state == "failed":
                        break

    def close(self) -> None:
        """Release every allocation (Refresh LIFETIME 0, not waited for) and close the sockets."""
        now = self.clock()
        for call in self.calls.values():
            for peer in call.peers:
                if peer.fd in self.by_fd and peer.connected:
                    peer.client.release(now)
                    self._flush_control(peer)
                self._close_peer(peer)
        self.epoll.close()


def raise_fd_limit(wanted: int) -> None:
    """Raise the soft open-files limit towards ``wanted`` (two sockets per call)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(wanted, soft)), hard))


def worker_main(  # noqa: PLR0917 -- a multiprocessing target takes positional args
    plan_json: str,
    index: int,
    server: tuple[str, int],
    username: str,
    password: str,
    conn: Connection,
    stop: EventType,
) -> None:
    """Entry point of a worker process: wait for the start time, run, report over ``conn``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us through ``stop``
    logging.basicConfig(level=logging.WARNING)
    plan = LoadPlan.model_validate_json(plan_json)
    raise_fd_limit(2 * len(plan.call_ids(plan.peak_calls, index)) + 64)
    worker = Worker(
        plan,
        index,
        server,
        Credentials(username, password),
        report=lambda part: conn.send(("step", part.model_dump_json())),
        should_stop=stop.is_set,
    )
    conn.send(("ready", index))
    message = conn.recv()
    if message[0] != "start":
        return
    try:
        worker.run(float(message[1]))
    except Exception as exc:  # a bug: tell the parent instead of dying silently
        conn.send(("error", f"worker {index}: {type(exc).__name__}: {exc}"))
        raise
    conn.send(("done", index))


__all__ = ["Credentials", "Worker", "raise_fd_limit", "worker_main"]
