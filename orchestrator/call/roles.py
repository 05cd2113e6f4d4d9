"""A call's two roles -- the agent and the consumer -- each played by a leg, along one invitation path.

The path (docs/call.md): the consumer's page connects (Messaging Window API) and opens a
conversation; the agent asks for a call (control API) -> the consumer sees ``INVITED`` ->
``cobrowseOffered`` then ``cobrowseAccepted`` -> the consumer observes ``ACCEPTED`` -> the agent
offers over the CoBrowse channel, the consumer answers (trickled candidates) -> ICE -> DTLS ->
media both ways, verified by decoded frames -> the scenario's ending -> the consumer observes
``CLOSED``.

:class:`ConsumerRole` and :class:`AgentRole` run their side of that path with any leg
(:mod:`callops.orchestrator.call.legs`); the scenario (:mod:`callops.orchestrator.call.scenarios`)
is data they read. ``callops call`` runs both roles in one process and one :class:`CallState`
(:class:`~callops.orchestrator.call.runs.CallRun`); ``callops call-site`` runs one
(:class:`~callops.orchestrator.call.runs.SiteRun`). The two roles only meet through the emulator.

Every wait is bounded; errors raise :class:`callops.errors.CallopsError` (the runs turn them into
the report's ``failure``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, ClassVar

from callops.errors import CallopsError, DeadlineExceeded, NetworkError, RemoteProtocolError
from callops.orchestrator.call.health import HealthWatcher
from callops.orchestrator.call.legs import (
    AgentLeg,
    CallChannel,
    ConsumerLeg,
    LegSettings,
    MediaLeg,
    Role,
)
from callops.orchestrator.call.report import CallStats, ErrorEntry, Outcome, SelectedPair
from callops.orchestrator.call.scenarios import Scenario
from callops.orchestrator.call.timeline import Timeline

if TYPE_CHECKING:
    from callops.orchestrator.emulator.control import ControlClient

log = logging.getLogger(__name__)

#: how often the health poller samples the legs (seconds)
HEALTH_POLL_S = 0.1
#: bound of the Allocate that explains an UNABLE_TO_CONNECT (rejected credentials, no answer, ...)
DIAGNOSE_TIMEOUT_S = 3.0
#: the consumer must raise AGENT_DISCONNECTED within this many seconds of the agent vanishing
AGENT_DISCONNECT_BOUND_S = 10.0
#: after a drop: bound of the hang-up and of the consumer's CLOSED (the report must follow the
#: fault within 5 s: docs/call.md)
DROP_HANGUP_S = 0.5
#: after a drop: bound of each resource's release (a dead relay never answers the deallocation)
DROP_CLOSE_S = 0.5
#: bound of each resource's release otherwise
CLOSE_S = 5.0
#: the poll interval of the agent's bounded wait for the consumer's conversation (control API)
CONVERSATION_POLL_S = 0.1

#: the phases each role puts on a shared timeline (``callops call``); alone, a role marks them all
AGENT_PHASES = frozenset({"offer_sent", "answer_received"})


@dataclass
class Bounds:
    """How long each role waits for each step."""

    #: seconds of media after both sides decoded their first frames
    duration_s: float = 2.0
    #: bound of every signalling step (an answer, an event)
    step_timeout_s: float = 10.0
    #: seconds from the answer to a DTLS-connected pair before UNABLE_TO_CONNECT
    ice_timeout_s: float = 10.0
    #: seconds from DTLS to decoded media on both sides
    media_timeout_s: float = 10.0
    #: ``call-site``: how long to wait for the other side (agent: the conversation; consumer: the
    #: invitation)
    wait_timeout_s: float = 60.0
    #: the emulator's invitation expiry (bounds the ``expire`` scenario)
    invite_expiry_s: float = 120.0


@dataclass
class CallState:
    """What one report says: shared by both roles in ``callops call``, one per role in ``call-site``."""

    timeline: Timeline
    notes: list[str]
    outcome: Outcome = "failed"
    failure: str | None = None
    service_id: str | None = None
    dialog_id: str | None = None
    conversation_id: str | None = None
    selected_pair: SelectedPair | None = None
    agent_selected_pair: SelectedPair | None = None
    stats: CallStats = field(default_factory=CallStats)
    health: HealthWatcher | None = None
    errors: list[ErrorEntry] = field(default_factory=list)
    #: set when the media stopped for good: resources are then released with short bounds
    dropped: bool = False

    def set_outcome(self, outcome: Outcome, why: str) -> None:
        """The one place the outcome changes (logged). A dropped call stays dropped."""
        if self.outcome not in (outcome, "dropped"):
            log.info("call %s: outcome %s -> %s (%s)", self.service_id, self.outcome, outcome, why)
            self.outcome = outcome

    def mark(self, phase: str, now: float | None = None) -> None:
        self.timeline.mark(phase, time.monotonic() if now is None else now)


class MediaMarks:
    """Leg phases onto the timeline: ICE/DTLS as the consumer sees them (alone: as this role does);
    ``first_<kind>`` once every role here decoded that kind; after a resume, ``media_again``."""

    def __init__(self, state: CallState, roles: Sequence[Role], kinds: Sequence[str]) -> None:
        self.state = state
        self.roles = tuple(roles)
        self.kinds = tuple(kinds)
        self._first: dict[tuple[Role, str], float] = {}
        self.resumed = False
        #: set once media is verified (every role here decoded a kind)
        self.verified = asyncio.Event()
        #: when media was first verified (both roles here decoded a kind)
        self.started: float | None = None

    def callback(self, role: Role) -> Callable[[str, float], None]:
        return lambda phase, now: self.phase(role, phase, now)

    def phase(self, role: Role, phase: str, now: float) -> None:
        if not phase.startswith("first_"):
            if (role == "consumer" or len(self.roles) == 1) and not self.resumed:
                self.state.mark(phase, now)
            return
        kind = phase.removeprefix("first_")
        self._first.setdefault((role, kind), now)
        if not all((r, kind) in self._first for r in self.roles):
            return
        if not self.resumed:
            self.state.mark(phase, now)
            if self.started is None:
                self.started = now
                self.verified.set()
                both = (
                    "media decoded both ways" if len(self.roles) == 2 else "media decoded from the other side"
                )
                log.info("call %s: %s (%s)", self.state.service_id, both, kind)
        elif all((r, k) in self._first for r in self.roles for k in self.kinds):
            self.state.mark("media_again", now)

    def resume(self) -> None:
        self.resumed = True
        self._first.clear()


class MediaPhase:
    """``duration_s`` of watched media (docs/call.md "Mid-call health") over the legs given, then the
    statistics. Shared by both roles in one process: the first to arrive starts it, both await it."""

    def __init__(
        self, state: CallState, legs: dict[Role, MediaLeg], kinds: Sequence[str], marks: MediaMarks
    ) -> None:
        self.state = state
        self.legs = legs
        self.kinds = list(kinds)
        self.marks = marks
        self._task: asyncio.Task[bool] | None = None

    def _flows(self) -> tuple[tuple[str, str], ...]:
        if len(self.legs) == 2:
            directions: tuple[str, ...] = ("agent->consumer", "consumer->agent")
        else:
            (role,) = self.legs
            directions = (f"{'consumer' if role == 'agent' else 'agent'}->{role}",)
        return tuple((kind, direction) for kind in self.kinds for direction in directions)

    async def run(self, duration_s: float) -> bool:
        """True: the media lasted; False: the call dropped (``state.outcome``/``failure`` say why)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(duration_s), name="media-phase")
        return await asyncio.shield(self._task)

    async def _sample(self, watcher: HealthWatcher, now: float) -> None:
        for role, leg in self.legs.items():
            frames, ice_state, connection_state = await leg.health_sample()
            sender = "consumer" if role == "agent" else "agent"
            for kind, count in frames.items():
                watcher.observe_frames(kind, f"{sender}->{role}", count, now)
            watcher.observe_transport(role, "ice", ice_state, now)
            watcher.observe_transport(role, "dtls", connection_state, now)

    async def _run(self, duration_s: float) -> bool:

        start = time.monotonic()
        watcher = HealthWatcher(flows=self._flows(), start_s=start, origin_s=self.state.timeline.origin)
        self.state.health = watcher
        until = start + duration_s
        while True:
            now = time.monotonic()
            await self._sample(watcher, now)
            watcher.tick(now)
            if watcher.dropped is not None or now >= until:
                break
            await asyncio.sleep(min(HEALTH_POLL_S, max(0.0, until - now)))  # the poll period, not a sync
        now = time.monotonic()
        watcher.finish(now)
        gaps = {flow: watcher.interrupted_s(*flow, now) for flow in watcher.flows}
        await self.take_stats(gaps)
        if watcher.dropped is None:
            return True
        self.state.mark("dropped", watcher.dropped.at_s)
        self.state.set_outcome("dropped", "media stopped for good")
        self.state.dropped = True
        self.state.failure = watcher.failure()
        return False

    async def take_stats(self, gaps: dict[tuple[str, str], float] | None = None) -> None:
        from callops.orchestrator.call.stats import call_stats

        now = time.monotonic()
        started = self.marks.started or self.state.timeline.at("dtls_connected") or now
        figures = dict(
            zip(
                self.legs,
                await asyncio.gather(*(leg.kind_stats() for leg in self.legs.values())),
                strict=True,
            )
        )
        self.state.stats = call_stats(
            figures.get("agent", {}),
            figures.get("consumer", {}),
            self.kinds,
            now - started,
            interrupted_s=gaps,
            two_site=len(self.legs) == 1,
        )


@dataclass(eq=False)
class _RoleBase:
    """What both roles share: the state, the bounds, a clean-up stack."""

    role: ClassVar[Role]

    state: CallState
    settings: LegSettings
    bounds: Bounds
    scenario: Scenario
    _: KW_ONLY
    #: the only role in this process (``call-site``): it marks every phase and reports ICE itself
    alone: bool
    cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list, init=False)
    media_phase: MediaPhase | None = field(default=None, init=False)

    def mark(self, phase: str) -> None:
        if self.alone or (phase in AGENT_PHASES) == (self.role == "agent"):
            self.state.mark(phase)

    async def _resume(self) -> None:
        """Scenario ``resume``: this role's part of the page reload mid-call."""
        raise NotImplementedError

    async def _after_drop(self) -> None:
        """This role's part of a call whose media dropped."""
        raise NotImplementedError

    async def _hold(self) -> bool:
        """The resume (if the scenario reloads), then the call's media for its duration; False
        when the media dropped (this role then did its part of the drop)."""
        if self.scenario.reload:
            await self._resume()
        assert self.media_phase is not None
        if await self.media_phase.run(self.bounds.duration_s):
            return True
        await self._after_drop()
        return False

    async def close(self) -> None:
        bound = DROP_CLOSE_S if self.state.dropped else CLOSE_S
        for closer in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(bound):
                    await closer()
        self.cleanup.clear()


class ConsumerRole(_RoleBase):
    """The consumer's side of the path, played by ``leg``."""

    role: ClassVar[Role] = "consumer"

    def __init__(
        self,
        leg: ConsumerLeg,
        state: CallState,
        settings: LegSettings,
        bounds: Bounds,
        scenario: Scenario,
        *,
        marks: MediaMarks,
        alone: bool,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(state, settings, bounds, scenario, alone=alone)
        self.leg = leg
        self.marks = marks
        self.on_ready = on_ready
        self.ready = asyncio.Event()
        self.offered = asyncio.Event()
        self.cleanup.append(leg.close)

    async def run(self) -> None:
        s, b, leg = self.state, self.bounds, self.leg
        s.conversation_id = await leg.join()
        log.info("consumer (%s): conversation %s open", leg.kind, s.conversation_id)
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready(s.conversation_id)
        invited = await leg.invited(b.wait_timeout_s if self.alone else b.step_timeout_s)
        if self.alone:
            self.state.timeline.origin = invited.at or time.monotonic()
        s.service_id, s.dialog_id = invited.service_id, invited.dialog_id
        self.mark("invited")
        await leg.respond(self.scenario.decision)
        self.mark("offered")
        self.offered.set()
        if not self.scenario.answered:
            await self._unanswered()
            return
        await leg.accepted(b.step_timeout_s)
        self.mark("accepted")
        if not await leg.connect(epoch=0):
            await self._ice_failed()
            return
        await self._media(within=b.media_timeout_s, what="")
        if not await self._hold():
            return
        await self._end()

    async def _media(self, within: float, what: str) -> None:
        if not await self.leg.media(within):
            self.state.set_outcome("connected", "DTLS connected")
            raise DeadlineExceeded(f"{what}no decoded media on the consumer's side within {within:g} s")
        self.state.set_outcome("connected", "media decoded")
        self.state.selected_pair = await self.leg.selected_pair()

    async def _end(self) -> None:
        ending, b = self.scenario.ending, self.bounds
        try:
            if ending == "agent-vanishes":
                vanished = time.monotonic()
                await self.leg.agent_left(AGENT_DISCONNECT_BOUND_S)
                after = time.monotonic() - vanished
                self.leg.session_error(
                    "AGENT_DISCONNECTED", f"the agent left the call ({after * 1000:.0f} ms after it vanished)"
                )
                self.state.notes.append(f"agent disconnect noticed after {after * 1000:.0f} ms")
                await self.leg.hang_up()
            elif ending == "consumer":
                await self.leg.hang_up()
            await self.leg.closed(
                b.step_timeout_s + (0 if ending != "agent" or not self.alone else b.duration_s)
            )
        except CallopsError as exc:
            raise self._emulator_gone(exc) from None
        self.mark("closed")

    async def _after_drop(self) -> None:
        """A dropped call: CLOSED is noted if it comes quickly (never waited long)."""
        if self.alone:
            return  # the agent ends a dropped call; this side does not wait for its CLOSED
        try:
            await self.leg.closed(DROP_HANGUP_S)
        except CallopsError as exc:
            self.state.notes.append(f"after the drop: CLOSED not observed ({exc.message})")
        else:
            self.mark("closed")

    def _emulator_gone(self, exc: CallopsError) -> CallopsError:
        """The end failed: say whether the emulator went away mid-call (CLOSED never arrives)."""
        cobrowse = getattr(self.leg, "cobrowse", None)
        lost = cobrowse.closed_at if isinstance(cobrowse, CallChannel) else None
        if lost is None:
            return exc
        at = lost - self.state.timeline.origin
        health = self.state.health
        gaps = len(health.interruptions) if health is not None else 0
        flow = "media kept flowing until the hang-up" if gaps == 0 else f"media had {gaps} interruption(s)"
        return NetworkError(
            f"the connection to the emulator was lost at {at:.1f} s, so the hang-up could not be "
            f"signalled and CLOSED never arrived ({flow}; {exc.message})",
            hint="check that the emulator (Messaging Window API) stays up for the whole call",
        )

    async def _unanswered(self) -> None:
        """decline / cancel / expire: no media; CLOSED observed; a late accept is refused."""
        b = self.bounds
        within = b.step_timeout_s + (b.invite_expiry_s if self.scenario.ending == "expiry" else 0.0)
        reason = await self.leg.closed(within)
        self.mark("closed")
        outcomes: dict[str, Outcome] = {
            "declined": "declined",
            "cancelled": "cancelled",
            "expired": "expired",
        }
        self.state.set_outcome(outcomes.get(reason, "failed"), f"CLOSED ({reason})")
        if reason not in outcomes:
            self.state.notes.append(f"CLOSED with reason {reason!r}")
        if self.scenario.late_accept_refused:
            await self._late_accept()

    async def _late_accept(self) -> None:
        name = self.scenario.name
        # The consumer's tracker closes an expired invitation on its own clock; the late accept is
        # only meaningful once the emulator has closed the call too.
        await self._server_closed(self.bounds.step_timeout_s)
        refused = await self.leg.late_accept()
        if refused is None:
            self.state.failure = f"an accept after {name} was not refused"
        else:
            self.state.notes.append(f"accept after {name} refused: {refused}")

    async def _server_closed(self, within: float) -> None:
        """Poll the emulator's control API (bounded) until it shows this call CLOSED."""
        from callops.orchestrator.emulator.control import ControlClient

        control = ControlClient(self.settings.base_url, timeout=within)
        try:
            async with asyncio.timeout(within):
                while await call_state(control, self.settings.account, self.state.service_id) != "CLOSED":  # noqa: ASYNC110 -- polls another process's state over HTTP
                    await asyncio.sleep(CONVERSATION_POLL_S)  # bounded poll of the control API
        except TimeoutError:
            raise DeadlineExceeded(
                f"the emulator did not close call {self.state.service_id} within {within:g} s"
            ) from None

    async def _ice_failed(self) -> None:
        """ICE/DTLS did not connect in time: UNABLE_TO_CONNECT, then the consumer hangs up."""
        types = self.leg.local_candidate_types()
        why = ""
        turns = [server for server in self.settings.ice_servers if server.url.startswith("turn")]
        if turns and "relay" not in types and self.leg.kind == "aiortc":
            why = f"; no relay candidate from {turns[0].url}: {await diagnose_turn(turns[0])}"
        self.leg.session_error(
            "UNABLE_TO_CONNECT",
            f"no working candidate pair within {self.bounds.ice_timeout_s:g} s "
            f"(policy {self.settings.policy}, local candidates: {', '.join(types) or 'none'}){why}",
        )
        self.state.set_outcome("failed", "ICE did not connect")
        await self.leg.hang_up()
        await self.leg.closed(self.bounds.step_timeout_s)
        self.mark("closed")

    async def _resume(self) -> None:
        """The consumer reloads the page mid-call and the call is re-established (epoch 1)."""
        b = self.bounds
        try:  # the page reloads once media flows both ways, not before the agent decoded it
            async with asyncio.timeout(b.media_timeout_s):
                await self.marks.verified.wait()
        except TimeoutError:
            raise DeadlineExceeded(f"no media both ways within {b.media_timeout_s:g} s") from None
        self.marks.resume()
        await self.leg.reload(on_resumed=lambda: self.mark("resumed"))
        if not await self.leg.connect(epoch=1):
            await self._ice_failed()
            raise NetworkError("resume: ICE did not connect again")
        await self._media(within=b.media_timeout_s, what="resume: ")


class AgentRole(_RoleBase):
    """The agent's side of the path: the Agent Workspace's backend (control API, CoBrowse channel)
    around the agent's leg."""

    role: ClassVar[Role] = "agent"

    def __init__(
        self,
        leg: AgentLeg,
        state: CallState,
        settings: LegSettings,
        bounds: Bounds,
        scenario: Scenario,
        *,
        alone: bool,
        conversation_id: str | None = None,
        consumer_offered: asyncio.Event | None = None,
    ) -> None:
        super().__init__(state, settings, bounds, scenario, alone=alone)
        self.leg = leg
        self.conversation_id = conversation_id
        #: in one process: the consumer published ``cobrowseOffered`` (when an agent cancels)
        self.consumer_offered = consumer_offered
        self.cobrowse = CallChannel("agent")
        self.cleanup.append(leg.close)

    async def run(self) -> None:
        from callops.orchestrator.emulator.control import ControlClient

        s, b = self.state, self.bounds
        control = ControlClient(self.settings.base_url, timeout=b.step_timeout_s)
        conversation = await self._find_conversation(control)
        s.conversation_id = conversation
        self.leg.prepare(epoch=0)  # the agent's UI prepares while the invitation goes out
        s.timeline.origin = time.monotonic()  # the invitation: t=0 of the timeline
        invitation = await control.invite(self.settings.account, conversation, self.settings.mode)
        s.service_id, s.dialog_id = invitation.serviceId, invitation.dialogId

        async def hang_up() -> None:
            with contextlib.suppress(CallopsError):
                await control.end_call(self.settings.account, conversation)

        self.cleanup.append(hang_up)
        if not await self._join_channel(invitation.serviceId):
            return  # closed unanswered before the agent's channel joined: the consumer reports it
        if self.scenario.ending == "cancel":
            await self._cancel(control, conversation)
            return
        if not await self._wait_accepted(control):
            return  # declined or expired: the consumer reports it
        self.mark("accepted")
        if not await self.leg.connect(self.cobrowse.inbox, 0, self.mark):
            await self._not_connected()
            return
        await self._media("")
        if not await self._hold():
            return
        await self._end(control, conversation)
        self.cleanup.remove(hang_up)

    async def _find_conversation(self, control: ControlClient) -> str:
        """The consumer's conversation: the given one or the first open one without a live call."""
        if self.conversation_id is not None and not self.alone:
            return self.conversation_id
        b = self.bounds
        account = self.settings.account
        try:
            async with asyncio.timeout(b.wait_timeout_s):
                while True:
                    for conv in await control.conversations(account):
                        if conv.state != "OPEN" or conv.call is not None:
                            continue
                        if self.conversation_id is None or conv.conversationId == self.conversation_id:
                            return str(conv.conversationId)
                    await asyncio.sleep(CONVERSATION_POLL_S)  # bounded poll of the control API
        except TimeoutError:
            which = self.conversation_id or "an open conversation"
            raise DeadlineExceeded(
                f"agent: {which} did not appear on account {account} within {b.wait_timeout_s:g} s",
                hint="start the consumer side (callops call-site --role consumer) first",
            ) from None

    async def _join_channel(self, service_id: str) -> bool:
        """The agent's CoBrowse channel joins the call. False: a call that the consumer left
        unanswered closed before that (a page declines at once); raised when the agent is alone."""
        from callops.orchestrator.call.environment import AGENT_ID
        from callops.orchestrator.emulator.auth import mint_jwt
        from callops.orchestrator.emulator.channel import ChannelRefused

        token = None
        if self.settings.agent_token is not None:
            token = self.settings.agent_token.reveal()
        elif self.settings.jwt_secret is not None:
            token = mint_jwt(AGENT_ID, self.settings.jwt_secret, now=time.time())
        try:
            channel = await self.cobrowse.open(self.settings, service_id, token)
        except ChannelRefused as exc:
            if exc.code == 409 and not self.scenario.answered and not self.alone:
                return False
            raise
        self.cleanup.append(channel.close)
        self.cleanup.append(self.cobrowse.inbox.close)
        return True

    async def _accepted_at_control(self, control: ControlClient) -> bool:
        return await call_state(control, self.settings.account, self.state.service_id) == "ACCEPTED"

    async def _wait_accepted(self, control: ControlClient) -> bool:
        """The consumer accepts: the channel's state says ACCEPTED (or the control API, when the
        acceptance came before the channel joined). False: the call closed unanswered."""
        b = self.bounds
        within = b.step_timeout_s + (b.invite_expiry_s if not self.scenario.answered else 0.0)
        try:
            async with asyncio.timeout(within):
                while not await self._accepted_at_control(control):
                    frame = await self.cobrowse.inbox.next("state", within)
                    state = frame.get("sessionState")
                    if state == "ACCEPTED":
                        return True
                    if state == "CLOSED":
                        if not self.scenario.answered and not self.alone:
                            return False
                        raise RemoteProtocolError(
                            f"agent: the call closed ({frame.get('reason')}) before acceptance"
                        )
        except TimeoutError:
            raise DeadlineExceeded(f"agent: the call was not accepted within {within:g} s") from None
        return True

    async def _cancel(self, control: ControlClient, conversation: str) -> None:
        """The agent withdraws the invitation once the consumer has seen it."""
        if self.consumer_offered is not None:
            async with asyncio.timeout(self.bounds.step_timeout_s):
                await self.consumer_offered.wait()
        await control.end_call(self.settings.account, conversation)

    async def _media(self, what: str) -> None:
        within = self.bounds.media_timeout_s
        if not await self.leg.media(within):
            raise DeadlineExceeded(f"{what}agent: no decoded media from the other side within {within:g} s")
        if self.alone:
            self.state.set_outcome("connected", "media decoded")
        self.state.agent_selected_pair = await self.leg.selected_pair()

    async def _not_connected(self) -> None:
        """ICE/DTLS did not come up. Alone, that is this side's failure; with the consumer in the
        same process, the consumer raises UNABLE_TO_CONNECT and hangs up: wait for that CLOSED."""
        if self.alone:
            message, hint = self.leg.failure_reason()
            raise DeadlineExceeded(message, hint=hint)
        with contextlib.suppress(CallopsError):
            await self._closed(self.bounds.step_timeout_s + DIAGNOSE_TIMEOUT_S)

    async def _closed(self, within: float) -> None:
        async with asyncio.timeout(within):
            while True:
                frame = await self.cobrowse.inbox.next("state", within)
                if frame.get("sessionState") == "CLOSED":
                    return

    async def _resume(self) -> None:
        """The consumer's page reloaded: sliderOpened reaches the agent, which offers again (epoch 1)."""
        b = self.bounds
        async with asyncio.timeout(b.step_timeout_s + b.media_timeout_s):
            while True:
                frame = await self.cobrowse.inbox.next("lptag", b.step_timeout_s + b.media_timeout_s)
                if frame.get("event") == "sliderOpened":
                    break
        await self.leg.vanish()  # the old WebRTC session ends; a new one starts
        self.leg.prepare(epoch=1)
        if not await self.leg.connect(self.cobrowse.inbox, 1, lambda _phase: None):
            message, hint = self.leg.failure_reason()
            raise DeadlineExceeded(f"resume: {message}", hint=hint)
        await self._media("resume: ")

    async def _after_drop(self) -> None:
        """The agent hangs up a dropped call, bounded (the relay may be dead)."""
        with contextlib.suppress(CallopsError, TimeoutError):
            async with asyncio.timeout(DROP_HANGUP_S):
                await self.cobrowse.channel.hangup()

    async def _end(self, control: ControlClient, conversation: str) -> None:
        ending = self.scenario.ending
        if ending == "agent-vanishes":
            await self.cobrowse.channel.close()
            await self.leg.vanish()
            return
        if ending == "consumer":
            with contextlib.suppress(CallopsError):
                await self._closed(self.bounds.step_timeout_s)
            return
        if self.alone:
            await control.end_call(self.settings.account, conversation)
            self.mark("closed")
        else:
            try:
                await self.cobrowse.channel.hangup()
            except CallopsError as exc:
                self.state.notes.append(f"agent: hang-up not signalled ({exc.message})")


async def call_state(control: ControlClient, account: str, service_id: str | None) -> str | None:
    """The ``sessionState`` of call ``service_id`` as the emulator's control API shows it, or None."""
    for conv in await control.conversations(account):
        for call in conv.calls:
            if call.serviceId == service_id:
                return str(call.sessionState)
    return None


async def diagnose_turn(server: object) -> str:
    """Why a TURN server gave no relay candidate: one bounded Allocate, its error in words."""
    from callops.orchestrator.call.peer import IceServer
    from callops.secret import redact
    from callops.turn.probes import ProbeStatus, turn_allocation

    assert isinstance(server, IceServer)
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


__all__ = [
    "AGENT_DISCONNECT_BOUND_S",
    "CLOSE_S",
    "CONVERSATION_POLL_S",
    "DROP_CLOSE_S",
    "AgentRole",
    "Bounds",
    "CallState",
    "ConsumerRole",
    "MediaMarks",
    "MediaPhase",
    "diagnose_turn",
]
