"""One call along the whole invitation path, through the emulator, with a report of every phase.

The path (docs/call.md): the consumer connects (Messaging Window API) and opens a conversation;
the agent asks for a call (control API) -> the consumer's tracker sees ``INVITED`` -> the consumer
publishes ``cobrowseOffered`` then ``cobrowseAccepted`` on the CoBrowse stand-in -> the consumer
observes ``ACCEPTED`` -> the agent sends its offer over the CoBrowse channel (keyed by
``serviceId``), the consumer answers -> ICE with the configured STUN/TURN servers and policy ->
DTLS -> media both ways, verified by decoded frames -> hang-up -> the consumer observes ``CLOSED``.

Every wait is bounded (``step_timeout_s``, ``ice_timeout_s``, ``media_timeout_s``, the invitation
expiry); every resource (peers, channels, the consumer client) is released in ``finally``. Errors
end the call with ``outcome="failed"`` and a ``failure`` text; they never escape as tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from callops.consumer.client import ConsumerClient, jwt_subject
from callops.consumer.tracker import CallAccepted, CallClosed, CallInvited
from callops.errors import CallopsError, DeadlineExceeded, NetworkError, RemoteProtocolError, UsageError
from callops.orchestrator.call.health import HealthWatcher
from callops.orchestrator.call.leg import CallLeg
from callops.orchestrator.call.peer import IceServer, PeerConfig
from callops.orchestrator.call.report import (
    CallMode,
    CallReport,
    CallStats,
    ErrorEntry,
    IcePolicy,
    Outcome,
    SelectedPair,
)
from callops.orchestrator.call.signalling import Answer, Offer, parse_signal, signal_data
from callops.orchestrator.call.timeline import Timeline
from callops.orchestrator.emulator.channel import ChannelRefused, CoBrowseChannel
from callops.orchestrator.emulator.control import ControlClient
from callops.secret import Secret

log = logging.getLogger(__name__)

EventT = TypeVar("EventT", CallInvited, CallAccepted, CallClosed)

#: what each scenario must end with for the call to count as ``ok``
EXPECTED_OUTCOME: dict[str, Outcome] = {
    "accept": "connected",
    "decline": "declined",
    "cancel": "cancelled",
    "expire": "expired",
    "hangup-consumer": "connected",
    "hangup-agent": "connected",
    "agent-disconnect": "connected",
    "ice-fail": "failed",
    "resume": "connected",
}

#: bound of the Allocate that explains an UNABLE_TO_CONNECT (rejected credentials, no answer, ...)
DIAGNOSE_TIMEOUT_S = 3.0

#: the consumer must raise AGENT_DISCONNECTED within this many seconds of the agent vanishing
AGENT_DISCONNECT_BOUND_S = 10.0

#: after a drop: bound of the agent's hang-up and of the consumer's CLOSED (the report must follow
#: the fault within 5 s: docs/call.md)
DROP_HANGUP_S = 0.5
#: after a drop: bound of each resource's release (a dead relay never answers the deallocation)
DROP_CLOSE_S = 0.5
#: bound of each resource's release otherwise
CLOSE_S = 5.0


@dataclass
class CallSettings:
    """What kind of call to make and how long to wait for each step."""

    mode: CallMode = "VOICE_CALL"
    policy: IcePolicy = "all"
    scenario: str = "accept"
    #: seconds of media after both sides decoded their first frames
    duration_s: float = 2.0
    #: seconds from the answer to a DTLS-connected pair before UNABLE_TO_CONNECT
    ice_timeout_s: float = 10.0
    #: seconds from DTLS to decoded media on both sides
    media_timeout_s: float = 10.0
    #: bound of every signalling step (an answer, an event)
    step_timeout_s: float = 10.0
    #: the emulator's invitation expiry (bounds the ``expire`` scenario)
    invite_expiry_s: float = 120.0
    account: str = "callops"
    visitor_name: str = "callops visitor"
    host_addresses: tuple[str, ...] | None = ("127.0.0.1",)
    video_size: tuple[int, int] = (320, 240)
    #: early resends of unanswered ICE checks (see PeerConfig); () for RFC 5389 timing only
    check_retransmits: tuple[float, ...] = (0.03, 0.06, 0.1, 0.2)
    #: send a pre-encoded Opus tone (see PeerConfig.pre_encoded_audio)
    pre_encoded_audio: bool = False


@dataclass
class CallEnvironment:
    """Where the call runs: the emulator's URLs and the ICE servers both peers get."""

    base_url: str
    ice_servers: list[IceServer] = field(default_factory=list)
    jwt_secret: Secret | None = None
    agent_token: Secret | None = None
    #: a TURN URL whose credentials can be spoiled by the ``ice-fail`` scenario
    turn_url: str | None = None
    notes: list[str] = field(default_factory=list)

    def cobrowse_url(self, account: str) -> str:
        return f"ws{self.base_url[4:]}/cobrowse/account/{account}?v=1"


class _Inbox:
    """Pushed CoBrowse messages of one channel, sorted by ``type`` (signal, presence, state, ...)."""

    def __init__(self, channel: Any, name: str, notes: list[str]) -> None:
        self.channel = channel
        self.name = name
        self.notes = notes
        self.queues: defaultdict[str, asyncio.Queue[dict[str, Any] | None]] = defaultdict(asyncio.Queue)
        self.closed = False
        #: monotonic time the channel closed under us (the emulator went away), if it did
        self.closed_at: float | None = None
        self._task = asyncio.create_task(self._run(), name=f"inbox-{name}")

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.channel.receive()
                kind = str(frame.get("type"))
                log.debug("%s channel <- %s", self.name, kind)
                self.queues[kind].put_nowait(frame)
        except NetworkError:
            self.closed_at = time.monotonic()
        finally:
            self.closed = True
            for queue in list(self.queues.values()):
                queue.put_nowait(None)

    async def next(self, kind: str, within: float) -> dict[str, Any]:
        queue = self.queues[kind]
        if self.closed and queue.empty():
            raise NetworkError(f"{self.name} CoBrowse channel closed while waiting for {kind!r}")
        try:
            frame = await asyncio.wait_for(queue.get(), within)
        except TimeoutError:
            raise DeadlineExceeded(f"{self.name}: no {kind!r} message within {within:g} s") from None
        if frame is None:
            queue.put_nowait(None)
            raise NetworkError(f"{self.name} CoBrowse channel closed while waiting for {kind!r}")
        return frame

    async def next_signal(
        self, want: type[Offer] | type[Answer], epoch: int, within: float
    ) -> Offer | Answer:
        """The next valid signal of type ``want`` and ``epoch``; malformed ones are noted and skipped."""
        deadline = time.monotonic() + within
        while True:
            frame = await self.next("signal", max(0.0, deadline - time.monotonic()))
            try:
                message = parse_signal(frame.get("data"))
            except RemoteProtocolError as exc:
                self.notes.append(f"{self.name}: ignored {exc.message}")
                log.warning("%s: %s", self.name, exc.message)
                continue
            if isinstance(message, want) and message.epoch == epoch:
                return message
            log.debug("%s: skipped signal %s (epoch %d)", self.name, message.kind, message.epoch)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class CallRun:
    """The state of one call while it runs; :meth:`run` returns its :class:`CallReport`."""

    def __init__(self, settings: CallSettings, env: CallEnvironment) -> None:
        self.settings = settings
        self.env = env
        self.scenario = settings.scenario
        self.timeline = Timeline(time.monotonic(), name=f"call/{settings.scenario}")
        self.errors: list[ErrorEntry] = []
        self.notes: list[str] = list(env.notes)
        self.outcome: Outcome = "failed"
        self.failure: str | None = None
        self.service_id: str | None = None
        self.dialog_id: str | None = None
        self.conversation_id: str | None = None
        self.consumer_id = f"callops-{uuid.uuid4().hex[:12]}"
        self.leg: CallLeg | None = None
        self._cleanup: list[Callable[[], Awaitable[None]]] = []
        self.resume_to_media_ms: float | None = None
        self.stats = CallStats()
        self.selected_pair: SelectedPair | None = None
        self.agent_selected_pair: SelectedPair | None = None
        #: the media phase's health (None before it starts)
        self.health: HealthWatcher | None = None
        self._close_bound_s = CLOSE_S
        # set while the call runs
        self.jwt: Secret | None = None
        self.client: ConsumerClient | None = None
        self.control: ControlClient | None = None
        self.invite: CallInvited | None = None
        self.agent_channel: CoBrowseChannel | None = None
        self.consumer_channel: CoBrowseChannel | None = None
        self.agent_inbox: _Inbox | None = None
        self.consumer_inbox: _Inbox | None = None
        if self.scenario not in EXPECTED_OUTCOME:
            raise UsageError(
                f"unknown scenario {self.scenario!r}", hint=f"one of: {', '.join(EXPECTED_OUTCOME)}"
            )
        self.ice_servers = list(env.ice_servers)
        self.policy: IcePolicy = settings.policy
        if self.scenario == "ice-fail":
            self._spoil_ice()

    # -- the resources of a running call ------------------------------------------------------

    @property
    def _client(self) -> ConsumerClient:
        assert self.client is not None, "the consumer client is not connected"
        return self.client

    @property
    def _agent_channel(self) -> CoBrowseChannel:
        assert self.agent_channel is not None, "the agent channel is not connected"
        return self.agent_channel

    @property
    def _consumer_channel(self) -> CoBrowseChannel:
        assert self.consumer_channel is not None, "the consumer channel is not connected"
        return self.consumer_channel

    @property
    def _agent_inbox(self) -> _Inbox:
        assert self.agent_inbox is not None, "the agent channel is not connected"
        return self.agent_inbox

    @property
    def _consumer_inbox(self) -> _Inbox:
        assert self.consumer_inbox is not None, "the consumer channel is not connected"
        return self.consumer_inbox

    @property
    def _jwt(self) -> Secret:
        assert self.jwt is not None, "no consumer JWT yet"
        return self.jwt

    @property
    def _control(self) -> ControlClient:
        assert self.control is not None, "no control client yet"
        return self.control

    @property
    def _invite(self) -> CallInvited:
        assert self.invite is not None, "no invitation yet"
        return self.invite

    # -- helpers ----------------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic()

    def _mark(self, phase: str) -> None:
        self.timeline.mark(phase, self._now())

    def _set_outcome(self, outcome: Outcome, why: str) -> None:
        """The one place the call's outcome changes (logged)."""
        if outcome != self.outcome:
            log.info("call %s: outcome %s -> %s (%s)", self.service_id, self.outcome, outcome, why)
            self.outcome = outcome

    def _session_error(self, error_id: str, msg: str) -> None:
        """The consumer raises a ``sessionError`` (as the call app would on the page)."""
        from callops.consumer.lptag import build_session_error

        payload = build_session_error(error_id, msg)
        self.errors.append(ErrorEntry(id=payload.id, msg=payload.msg))
        log.info("consumer sessionError %s: %s", payload.id, payload.msg)

    def _spoil_ice(self) -> None:
        """``ice-fail``: relay-only with credentials the TURN server must reject (or no TURN at all)."""
        from callops.turn.coturn import free_port

        self.policy = "relay"
        if self.env.turn_url is not None:
            # a REST user name that has not expired: the server must reject the credential itself
            user = f"{int(time.time()) + 3600}:callops"
            self.ice_servers = [IceServer(self.env.turn_url, user, Secret("wrong-credential", "ice-fail"))]
            self.notes.append(f"ice-fail: TURN {self.env.turn_url} with a wrong credential, policy relay")
        else:
            # TCP: the refusal is immediate (a UDP TURN that never answers costs aioice 5 s)
            url = f"turn:127.0.0.1:{free_port()}?transport=tcp"
            self.ice_servers = [IceServer(url, "0:callops", Secret("unused", "ice-fail"))]
            self.notes.append(f"ice-fail: unreachable TURN {url}, policy relay")

    def _peer_config(self) -> PeerConfig:
        return PeerConfig(
            ice_servers=self.ice_servers,
            policy=self.policy,
            host_addresses=self.settings.host_addresses,
            video_size=self.settings.video_size,
            check_retransmits=self.settings.check_retransmits,
            pre_encoded_audio=self.settings.pre_encoded_audio,
        )

    # -- the run ----------------------------------------------------------------------------------

    async def run(self) -> CallReport:
        try:
            await self._run()
        except CallopsError as exc:
            self.failure = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
            log.info("call failed: %s", self.failure)
        except Exception as exc:  # a bug or an untranslated library error: report it, do not crash
            log.exception("call crashed")
            self.failure = f"internal error: {exc.__class__.__name__}: {exc}"
        except asyncio.CancelledError:
            # stopped (a signal, a smoke deadline): keep what is known for :meth:`report`
            self.failure = self.failure or "stopped before the call ended"
            if self.leg is not None and self.leg.media_started is not None and not self.stats.media:
                with contextlib.suppress(Exception):
                    self.stats = await asyncio.shield(self.leg.stats())
            raise
        finally:
            closing = asyncio.ensure_future(self._close())
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                await closing  # finish releasing peers and sockets, then let the cancellation through
                raise
        return self._report()

    async def _close(self) -> None:
        for closer in reversed(self._cleanup):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closer(), self._close_bound_s)
        self._cleanup.clear()

    def report(self, stopped_by: str | None = None) -> CallReport:
        """The report of what is known now; ``stopped_by`` (a signal name) when the run was stopped."""
        if stopped_by is not None:
            phase = next(reversed(self.timeline.as_ms()), "start")
            self.failure = f"stopped by {stopped_by} (last phase: {phase})"
        return self._report()

    def _report(self) -> CallReport:
        expected = EXPECTED_OUTCOME.get(self.scenario, "connected")
        ok = self.failure is None and self.outcome == expected
        if ok and self.scenario == "ice-fail" and not any(e.id == "UNABLE_TO_CONNECT" for e in self.errors):
            ok, self.failure = False, "ICE failed without UNABLE_TO_CONNECT"
        return CallReport(
            ok=ok,
            scenario=self.scenario,
            mode=self.settings.mode,
            policy=self.policy,
            outcome=self.outcome,
            service_id=self.service_id,
            timeline_ms=self.timeline.as_ms(),
            selected_pair=self.selected_pair,
            agent_selected_pair=self.agent_selected_pair,
            interruptions=self.health.interruption_entries() if self.health else [],
            transport_events=self.health.transport_entries() if self.health else [],
            errors=self.errors,
            stats=self.stats,
            resume_to_media_ms=self.resume_to_media_ms,
            ice_servers=[s.url for s in self.ice_servers],
            notes=self.notes,
            expected_outcome=expected,
            failure=self.failure if (self.failure or ok) else f"outcome {self.outcome}, expected {expected}",
        )

    async def _run(self) -> None:
        from callops.consumer.identity import prepare_consumer

        s = self.settings
        # the consumer starts as a web page does: CSDS (the emulator's) and an IDP signup
        prepared = await prepare_consumer(s.account, csds=self.env.base_url, timeout=s.step_timeout_s)
        jwt = self.jwt = prepared.jwt
        self.consumer_id = jwt_subject(jwt.reveal()) or self.consumer_id
        client = ConsumerClient(
            prepared.url,
            s.account,
            jwt,
            reconnect=False,
            request_timeout=s.step_timeout_s,
            identity=prepared.identity,
        )
        await client.connect()
        self._cleanup.append(client.close)
        self.client = client
        self.conversation_id = await client.request_conversation()
        await client.subscribe()
        control = ControlClient(self.env.base_url, timeout=s.step_timeout_s)
        self.control = control

        leg = CallLeg(s.mode, self._peer_config(), self.timeline)
        self.leg = leg
        self._cleanup.append(leg.close)
        # The invitation: t=0 of the timeline.
        self.timeline.origin = self._now()
        invitation = await control.invite(s.account, self.conversation_id, s.mode)
        self.service_id, self.dialog_id = invitation.serviceId, invitation.dialogId
        # Meanwhile the agent's channel joins and its peer gathers (the agent's UI prepares).
        agent_task = asyncio.create_task(self._agent_connect())
        offer_task = asyncio.create_task(leg.agent.create_offer())
        self._cleanup.append(lambda: _cancel(agent_task))
        # Gathering is never cancelled half-way: aioice would leak a TURN allocation that completes
        # after the cancellation (its socket is then never closed). Let it finish, bounded.
        self._cleanup.append(lambda: _settle(offer_task, s.step_timeout_s))
        invited = await self._consumer_event(CallInvited, s.step_timeout_s)
        self._mark("invited")
        self.invite = invited
        consumer = await self._open_consumer_channel(join=False)
        await agent_task
        from callops.consumer.lptag import build_accepted, build_declined, build_offered

        ids = {"ssid": uuid.uuid4().hex, "svid": uuid.uuid4().hex}
        await consumer.publish("cobrowseOffered", build_offered(invited, s.visitor_name, **ids).payload())
        self._mark("offered")

        if self.scenario in ("decline", "cancel", "expire"):
            await _settle(offer_task, s.step_timeout_s)
            await self._unanswered(consumer, build_declined, build_accepted, ids)
            return

        client.accepted(invited.dialogId)
        await consumer.publish("cobrowseAccepted", build_accepted(invited, s.visitor_name, **ids).payload())
        await self._consumer_event(CallAccepted, s.step_timeout_s)
        self._mark("accepted")

        offer = await asyncio.wait_for(offer_task, s.step_timeout_s)
        connected = await self._negotiate(offer, epoch=0)
        if not connected:
            await self._fail_ice()
            return
        if not await leg.wait_media(s.media_timeout_s):
            self._set_outcome("connected", "DTLS connected")
            missing = [k for k in leg.kinds if not self.timeline.has(f"first_{k}")]
            raise DeadlineExceeded(
                f"no decoded {'/'.join(missing)} on both sides within {s.media_timeout_s:g} s"
            )
        self._set_outcome("connected", "media decoded both ways")
        self.selected_pair = leg.selected_pair()
        self.agent_selected_pair = leg.agent_selected_pair()

        if self.scenario == "resume":
            await self._resume()
        if not await self._media_phase(s.duration_s):
            await self._after_drop()
            return
        try:
            if self.scenario == "agent-disconnect":
                await self._agent_vanishes()
                await self._consumer_channel.hangup()
            elif self.scenario == "hangup-consumer":
                await self._consumer_channel.hangup()
            else:
                await self._agent_channel.hangup()
            await self._consumer_event(CallClosed, s.step_timeout_s)
        except CallopsError as exc:
            raise self._emulator_gone(exc) from None
        self._mark("closed")

    # -- the media phase ---------------------------------------------------------------------------

    async def _media_phase(self, duration_s: float) -> bool:
        """``duration_s`` of media, watched (docs/call.md "Mid-call health"); False: dropped."""
        assert self.leg is not None
        start = self._now()
        watcher = self.leg.health_watcher(start)
        self.health = watcher
        await self.leg.watch(watcher, until=start + duration_s)
        now = self._now()
        watcher.finish(now)
        gaps = {flow: watcher.interrupted_s(*flow, now) for flow in watcher.flows}
        self.stats = await self.leg.stats(gaps)
        if watcher.dropped is None:
            return True
        self.timeline.mark("dropped", watcher.dropped.at_s)
        self._set_outcome("dropped", "media stopped for good")
        self.failure = watcher.failure()
        return False

    async def _after_drop(self) -> None:
        """The agent hangs up a dropped call; CLOSED is noted if it comes quickly (never waited long)."""
        self._close_bound_s = DROP_CLOSE_S
        try:
            await asyncio.wait_for(self._agent_channel.hangup(), DROP_HANGUP_S)
            await self._consumer_event(CallClosed, DROP_HANGUP_S)
        except (CallopsError, TimeoutError) as exc:
            why = exc.message if isinstance(exc, CallopsError) else f"not within {DROP_HANGUP_S:g} s"
            self.notes.append(f"after the drop: CLOSED not observed ({why})")
        else:
            self._mark("closed")

    def _emulator_gone(self, exc: CallopsError) -> CallopsError:
        """The hang-up failed: say whether the emulator went away mid-call (CLOSED never arrives)."""
        lost = [
            inbox.closed_at
            for inbox in (self.agent_inbox, self.consumer_inbox)
            if inbox is not None and inbox.closed_at is not None
        ]
        if not lost:
            return exc
        at = (min(lost) - self.timeline.origin) if lost else 0.0
        gaps = len(self.health.interruptions) if self.health is not None else 0
        flow = "media kept flowing until the hang-up" if gaps == 0 else f"media had {gaps} interruption(s)"
        return NetworkError(
            f"the connection to the emulator was lost at {at:.1f} s, so the hang-up could not be "
            f"signalled and CLOSED never arrived ({flow}; {exc.message})",
            hint="check that the emulator (Messaging Window API) stays up for the whole call",
        )

    # -- steps -----------------------------------------------------------------------------------

    async def _consumer_event(self, kind: type[EventT], within: float) -> EventT:
        """The next tracker event of class ``kind`` for this call (others are skipped)."""
        deadline = self._now() + within
        while True:
            left = deadline - self._now()
            if left <= 0:
                raise DeadlineExceeded(
                    f"consumer: no {kind.__name__} for dialog {self.dialog_id} within {within:g} s"
                )
            event = await self._client.next_event(within=left)
            if event.dialogId != self.dialog_id:
                continue
            if isinstance(event, kind):
                return event
            if isinstance(event, CallClosed):
                raise RemoteProtocolError(f"call closed ({event.reason}) while waiting for {kind.__name__}")

    async def _agent_connect(self) -> None:
        assert self.service_id is not None
        token = self.env.agent_token.reveal() if self.env.agent_token else None
        channel = await CoBrowseChannel.connect(
            self.env.cobrowse_url(self.settings.account),
            role="agent",
            service_id=self.service_id,
            token=token,
            timeout=self.settings.step_timeout_s,
        )
        self.agent_channel = channel
        self._cleanup.append(channel.close)
        self.agent_inbox = _Inbox(channel, "agent", self.notes)
        self._cleanup.append(self._agent_inbox.close)

    async def _open_consumer_channel(self, *, join: bool) -> Any:
        assert self.service_id is not None
        channel = await CoBrowseChannel.connect(
            self.env.cobrowse_url(self.settings.account),
            role="consumer",
            service_id=self.service_id,
            jwt=self._jwt.reveal(),
            join=join,
            timeout=self.settings.step_timeout_s,
        )
        self.consumer_channel = channel
        self._cleanup.append(channel.close)
        self.consumer_inbox = _Inbox(channel, "consumer", self.notes)
        self._cleanup.append(self._consumer_inbox.close)
        return channel

    async def _negotiate(self, offer_sdp: str, *, epoch: int) -> bool:
        """Offer (agent) -> answer (consumer) over the channel, then wait for ICE+DTLS."""
        assert self.leg is not None
        s = self.settings
        await self._agent_channel.send_signal(signal_data(Offer(kind="offer", sdp=offer_sdp, epoch=epoch)))
        if epoch == 0:
            self._mark("offer_sent")
        offer = await self._consumer_inbox.next_signal(Offer, epoch, s.step_timeout_s)
        answer_sdp = await self.leg.consumer.accept_offer(offer.sdp)
        await self._consumer_channel.send_signal(
            signal_data(Answer(kind="answer", sdp=answer_sdp, epoch=epoch))
        )
        answer = await self._agent_inbox.next_signal(Answer, epoch, s.step_timeout_s)
        await self.leg.agent.accept_answer(answer.sdp)
        if epoch == 0:
            self._mark("answer_received")
        return await self.leg.wait_connected(s.ice_timeout_s)

    async def _fail_ice(self) -> None:
        """ICE/DTLS did not connect in time: UNABLE_TO_CONNECT, then the consumer hangs up."""
        assert self.leg is not None
        types = self.leg.consumer.local_candidate_types()
        why = ""
        turns = [server for server in self.ice_servers if server.url.startswith("turn")]
        if turns and "relay" not in types:
            why = f"; no relay candidate from {turns[0].url}: {await self._diagnose_turn(turns[0])}"
        self._session_error(
            "UNABLE_TO_CONNECT",
            f"no working candidate pair within {self.settings.ice_timeout_s:g} s "
            f"(policy {self.policy}, local candidates: {', '.join(types) or 'none'}){why}",
        )
        self._set_outcome("failed", "ICE did not connect")
        await self._consumer_channel.hangup()
        await self._consumer_event(CallClosed, self.settings.step_timeout_s)
        self._mark("closed")

    async def _diagnose_turn(self, server: IceServer) -> str:
        """Why a TURN server gave no relay candidate: one bounded Allocate, its error in words."""
        from callops.secret import redact
        from callops.turn.probes import ProbeStatus, turn_allocation

        credential = server.credential.reveal() if server.credential is not None else None
        try:
            result = await turn_allocation(server.url, server.username, credential, DIAGNOSE_TIMEOUT_S)
        except CallopsError as exc:  # e.g. a URL the probe cannot parse
            return redact(exc.message, [server.credential])
        if result.status is ProbeStatus.OK:
            return f"a fresh Allocate works ({result.detail}): the peers' gathering was cut short"
        if result.error is None:
            return "its Allocate was not tried (no credentials)"
        why = redact(result.error, [server.credential])
        if result.kind == "turn-tls" and "certificate" in why:
            why += "; `callops call` trusts the system CAs only: try a private CA with `callops turn probe`"
        return why

    async def _unanswered(
        self, consumer: Any, build_declined: Any, build_accepted: Any, ids: dict[str, str]
    ) -> None:
        """decline / cancel / expire: no media; CLOSED observed; a late accept is refused."""
        s = self.settings
        if self.scenario == "decline":
            self._client.declined(self._invite.dialogId)
            await consumer.publish(
                "cobrowseDeclined", build_declined(self._invite, s.visitor_name, **ids).payload()
            )
            within = s.step_timeout_s
        elif self.scenario == "cancel":
            await self._control.end_call(s.account, self.conversation_id or "")
            within = s.step_timeout_s
        else:
            left = self._invite.expires - time.time()
            within = max(0.0, left) + s.step_timeout_s
        closed = await self._closed_event(within)
        self._mark("closed")
        reason = str(closed.reason)
        outcomes: dict[str, Outcome] = {
            "declined": "declined",
            "cancelled": "cancelled",
            "expired": "expired",
        }
        self._set_outcome(outcomes.get(reason, "failed"), f"CLOSED ({reason})")
        if self.outcome == "failed":
            self.notes.append(f"CLOSED with reason {reason!r}")
        if self.scenario in ("cancel", "expire"):
            # The consumer's tracker closes an expired invitation on its own clock; the late accept
            # is only meaningful once the emulator has closed the call too.
            await self._server_closed(s.step_timeout_s)
            try:
                await consumer.publish(
                    "cobrowseAccepted", build_accepted(self._invite, s.visitor_name, **ids).payload()
                )
            except ChannelRefused as exc:
                self.notes.append(f"accept after {self.scenario} refused: {exc.code} {exc.title}")
            else:
                self.failure = f"an accept after {self.scenario} was not refused"

    async def _server_closed(self, within: float) -> None:
        """Poll the control API (bounded) until the emulator shows this call CLOSED."""
        deadline = self._now() + within
        while self._now() < deadline:
            for conv in await self._control.conversations(self.settings.account):
                for call in conv.calls:
                    if call.serviceId == self.service_id and call.sessionState == "CLOSED":
                        return
            await asyncio.sleep(0.05)
        raise DeadlineExceeded(f"the emulator did not close call {self.service_id} within {within:g} s")

    async def _closed_event(self, within: float) -> Any:
        deadline = self._now() + within
        while True:
            left = deadline - self._now()
            if left <= 0:
                raise DeadlineExceeded(f"consumer: no CLOSED for dialog {self.dialog_id} within {within:g} s")
            event = await self._client.next_event(within=left)
            if isinstance(event, CallClosed) and event.dialogId == self.dialog_id:
                return event

    async def _agent_vanishes(self) -> None:
        """The agent disappears mid-call (socket and media gone); the consumer must notice."""
        assert self.leg is not None
        vanished = self._now()
        await self._agent_channel.close()
        await self.leg.agent.close()
        deadline = vanished + AGENT_DISCONNECT_BOUND_S
        while True:
            frame = await self._consumer_inbox.next("presence", max(0.0, deadline - self._now()))
            if frame.get("role") == "agent" and frame.get("event") == "left":
                break
        after = self._now() - vanished
        self._session_error(
            "AGENT_DISCONNECTED", f"the agent left the call ({after * 1000:.0f} ms after it vanished)"
        )
        self.notes.append(f"agent disconnect noticed after {after * 1000:.0f} ms")

    async def _resume(self) -> None:
        """The consumer reloads the page mid-call and the call is re-established."""
        from callops.consumer.lptag import build_slider_opened

        assert self.leg is not None
        s = self.settings
        persisted = {"serviceId": self.service_id, "dialogId": self.dialog_id}  # "browser storage"
        # The page goes away: websocket, CoBrowse channel and the consumer's peer.
        await self._client.close()
        await self._consumer_inbox.close()
        await self._consumer_channel.close()
        await self.leg.replace_consumer()
        # The reloaded page: a new consumer session finds the active call.
        client = ConsumerClient(
            self.env.base_url, s.account, self._jwt, reconnect=False, request_timeout=s.step_timeout_s
        )
        await client.connect()
        self._cleanup.append(client.close)
        self.client = client
        await client.subscribe()
        deadline = self._now() + s.step_timeout_s
        while client.tracker.call(persisted["dialogId"] or "") is None:
            left = deadline - self._now()
            if left <= 0:
                raise DeadlineExceeded(f"resume: the new session did not find call {self.service_id}")
            with contextlib.suppress(DeadlineExceeded):
                await client.next_event(within=min(left, 0.5))
        active = client.tracker.call(persisted["dialogId"] or "")
        assert active is not None
        if active.sessionState != "ACCEPTED":
            raise RemoteProtocolError(
                f"resume: call {self.service_id} is {active.sessionState}, not ACCEPTED"
            )
        self._mark("resumed")  # sessionResume raised by the call app
        channel = await self._open_consumer_channel(join=False)
        await channel.join()
        await channel.publish("sliderOpened", build_slider_opened().payload() or None)
        # The agent learns the consumer is back and offers again (a new WebRTC session, epoch 1).
        await self._agent_sees_slider_opened()
        offer_sdp = await self.leg.agent.create_offer()
        if not await self._negotiate(offer_sdp, epoch=1):
            await self._fail_ice()
            raise NetworkError("resume: ICE did not connect again")
        if not await self.leg.wait_media(s.media_timeout_s):
            raise DeadlineExceeded(f"resume: no media again within {s.media_timeout_s:g} s")
        self.resume_to_media_ms = self.timeline.between("resumed", "media_again")
        self.selected_pair = self.leg.selected_pair()
        self.agent_selected_pair = self.leg.agent_selected_pair()

    async def _agent_sees_slider_opened(self) -> None:
        deadline = self._now() + self.settings.step_timeout_s
        while True:
            frame = await self._agent_inbox.next("lptag", max(0.0, deadline - self._now()))
            if frame.get("event") == "sliderOpened":
                return


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` that are still running and wait for them (their errors are moot)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _settle(task: asyncio.Task[Any], within: float) -> None:
    """Let ``task`` finish (its result or error is moot); cancel it only after ``within`` seconds."""
    await asyncio.wait({task}, timeout=within)
    await _cancel(task)


async def run_call(settings: CallSettings, env: CallEnvironment) -> CallReport:
    """Make one call and report it (never raises for a failed call: ``ok`` says)."""
    return await CallRun(settings, env).run()


__all__ = ["EXPECTED_OUTCOME", "CallEnvironment", "CallRun", "CallSettings", "run_call"]
