"""A call run and its report: both roles in one process (``callops call``), or one (``call-site``).

:class:`CallRun` plays the agent and the consumer roles of :mod:`callops.orchestrator.call.roles`
at the same time, each with its leg (``aiortc`` or ``chromium`` for the consumer), sharing one
timeline and one report; they meet only through the emulator. :class:`SiteRun` plays one role, for
a call between two networks (each side in its own network, one emulator that both can reach).
Its report holds what *that* side saw: its timeline's origin is the invitation as it knows it,
its statistics are its own peer's (the sent side of the remote direction and the received side of
the local one are 0).

A run never raises for a failed call: the report's ``ok`` and ``failure`` say. Stopped (a signal,
a smoke deadline), it keeps what is known for :meth:`_Run.report`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from callops.errors import CallopsError
from callops.orchestrator.call.legs import (
    AgentLeg,
    AiortcAgent,
    AiortcConsumer,
    ConsumerLeg,
    LegSettings,
    MediaLeg,
    PhaseCallback,
    Role,
)
from callops.orchestrator.call.peer import IceServer
from callops.orchestrator.call.report import CallMode, CallReport, IcePolicy, LegInfo, Outcome
from callops.orchestrator.call.roles import (
    CLOSE_S,
    AgentRole,
    Bounds,
    CallState,
    ConsumerRole,
    MediaMarks,
    MediaPhase,
)
from callops.orchestrator.call.scenarios import EXPECTED_OUTCOME, Scenario, scenario
from callops.orchestrator.call.timeline import Timeline
from callops.secret import Secret

log = logging.getLogger(__name__)

LegKind = Literal["aiortc", "chromium"]
#: the legs a role can be played by
LEG_KINDS: tuple[LegKind, ...] = ("aiortc", "chromium")


@dataclass
class CallSettings(Bounds):
    """What kind of call to make, and (its :class:`Bounds`) how long to wait for each step."""

    mode: CallMode = "VOICE_CALL"
    policy: IcePolicy = "all"
    scenario: str = "accept"
    account: str = "callops"
    visitor_name: str = "callops visitor"
    host_addresses: tuple[str, ...] | None = ("127.0.0.1",)
    video_size: tuple[int, int] = (320, 240)
    #: early resends of unanswered ICE checks (see PeerConfig); () for RFC 5389 timing only
    check_retransmits: tuple[float, ...] = (0.03, 0.06, 0.1, 0.2)
    #: send a pre-encoded Opus tone (see PeerConfig.pre_encoded_audio)
    pre_encoded_audio: bool = False
    #: seconds the visitor reads the invitation (``cobrowseOffered``) before answering
    answer_after_s: float = 0.0


@dataclass
class CallEnvironment:
    """Where the call runs: the emulator's URL and the ICE servers both legs get."""

    base_url: str
    ice_servers: list[IceServer] = field(default_factory=list)
    jwt_secret: Secret | None = None
    agent_token: Secret | None = None
    #: a TURN URL whose credentials can be spoiled by the ``ice-fail`` scenario
    turn_url: str | None = None
    notes: list[str] = field(default_factory=list)
    #: verifies ``turns:`` servers (``--ca-file``); None: the system CAs
    ssl_context: ssl.SSLContext | None = None

    def cobrowse_url(self, account: str) -> str:
        return f"ws{self.base_url[4:]}/cobrowse/account/{account}?v=1"


def spoiled_ice(env: CallEnvironment, notes: list[str]) -> list[IceServer]:
    """``ice-fail``: credentials the TURN server must reject (or an unreachable TURN server)."""
    from callops.turn.coturn import free_port

    if env.turn_url is not None:
        # a REST user name that has not expired: the server must reject the credential itself
        user = f"{int(time.time()) + 3600}:callops"
        notes.append(f"ice-fail: TURN {env.turn_url} with a wrong credential, policy relay")
        return [IceServer(env.turn_url, user, Secret("wrong-credential", "ice-fail"))]
    # TCP: the refusal is immediate (a UDP TURN that never answers costs aioice 5 s)
    url = f"turn:127.0.0.1:{free_port()}?transport=tcp"
    notes.append(f"ice-fail: unreachable TURN {url}, policy relay")
    return [IceServer(url, "0:callops", Secret("unused", "ice-fail"))]


#: what a leg takes over unchanged from the call's settings, and from the call's environment
LEG_FROM_SETTINGS = (
    "account",
    "mode",
    "host_addresses",
    "video_size",
    "check_retransmits",
    "pre_encoded_audio",
    "answer_after_s",
    "step_timeout_s",
    "ice_timeout_s",
    "visitor_name",
)
LEG_FROM_ENVIRONMENT = ("base_url", "ssl_context", "jwt_secret", "agent_token")


def leg_settings(
    settings: CallSettings, env: CallEnvironment, notes: list[str], row: Scenario
) -> LegSettings:
    """The legs' view of the call (``ice-fail`` spoils the ICE servers and forces relay)."""
    ice = spoiled_ice(env, notes) if row.spoil_ice else list(env.ice_servers)
    return LegSettings(
        **{name: getattr(settings, name) for name in LEG_FROM_SETTINGS},
        **{name: getattr(env, name) for name in LEG_FROM_ENVIRONMENT},
        policy="relay" if row.spoil_ice else settings.policy,
        ice_servers=ice,
        notes=notes,
    )


#: makes the consumer's leg: ``(settings, on_phase) -> leg``
ConsumerLegFactory = Callable[[LegSettings, PhaseCallback], ConsumerLeg]
#: makes the agent's leg: ``(settings, on_phase) -> leg``
AgentLegFactory = Callable[[LegSettings, PhaseCallback], AgentLeg]


def aiortc_consumer(settings: LegSettings, on_phase: PhaseCallback) -> ConsumerLeg:
    return AiortcConsumer(settings, on_phase)


def aiortc_agent(settings: LegSettings, on_phase: PhaseCallback) -> AgentLeg:
    return AiortcAgent(settings, on_phase)


class _Run:
    """What both runs share: the state, the report, the stop path."""

    def __init__(self, settings: CallSettings, env: CallEnvironment, name: str) -> None:
        self.settings = settings
        self.env = env
        self.scenario = scenario(settings.scenario)
        self.notes: list[str] = list(env.notes)
        self.state = CallState(Timeline(time.monotonic(), name=name), self.notes)
        self.legs = leg_settings(settings, env, self.notes, self.scenario)
        self.roles: list[ConsumerRole | AgentRole] = []
        self.consumer: ConsumerRole | None = None
        self.media_phase: MediaPhase | None = None
        self._legs_info: dict[str, LegInfo] = {}

    @property
    def timeline(self) -> Timeline:
        return self.state.timeline

    @property
    def outcome(self) -> str:
        return self.state.outcome

    @property
    def failure(self) -> str | None:
        return self.state.failure

    async def _play(self) -> None:
        raise NotImplementedError

    async def run(self) -> CallReport:
        try:
            await self._play()
        except CallopsError as exc:
            self.state.failure = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
            log.info("call failed: %s", self.state.failure)
        except Exception as exc:  # a bug or an untranslated library error: report it, do not crash
            log.exception("call crashed")
            self.state.failure = f"internal error: {exc.__class__.__name__}: {exc}"
        except asyncio.CancelledError:
            # stopped (a signal, a smoke deadline): keep what is known for :meth:`report`
            self.state.failure = self.state.failure or "stopped before the call ended"
            await asyncio.shield(self._finish(partial=True))
            raise
        await asyncio.shield(self._finish(partial=False))
        return self._report()

    async def _finish(self, *, partial: bool) -> None:
        """What the legs know (errors a page raised, statistics so far), then every resource freed."""
        try:
            async with asyncio.timeout(CLOSE_S):
                if (
                    partial
                    and self.media_phase is not None
                    and self.media_phase.marks.started
                    and not self.state.stats.media
                ):
                    await self.media_phase.take_stats()
                if self.consumer is not None:
                    self.state.errors = await self.consumer.leg.errors()
        except (CallopsError, TimeoutError) as exc:
            self.notes.append(f"the consumer's leg could not be read at the end: {exc}")
        for role in self.roles:
            self._legs_info[role.role] = role.leg.info()
        for role in self.roles:
            await role.close()

    def report(self, stopped_by: str | None = None) -> CallReport:
        """The report of what is known now; ``stopped_by`` (a signal name) when the run was stopped."""
        if stopped_by is not None:
            phase = next(reversed(self.timeline.as_ms()), "start")
            self.state.failure = f"stopped by {stopped_by} (last phase: {phase})"
        return self._report()

    def _report(self) -> CallReport:
        s, row = self.state, self.scenario
        expected = self.expected
        failure = s.failure
        ids = [e.id for e in s.errors]
        if (
            failure is None
            and s.outcome == expected
            and self._checks_errors
            and row.required_error not in (None, *ids)
        ):
            failure = f"{row.name}: no {row.required_error} raised"
        if failure is None and s.outcome != expected:
            failure = f"outcome {s.outcome}, expected {expected}"
            if s.errors:
                failure += ": " + "; ".join(f"{e.id}: {e.msg}" for e in s.errors)
        for role in self.roles:
            self._legs_info.setdefault(role.role, role.leg.info())
        return CallReport(
            ok=failure is None,
            scenario=row.name,
            mode=self.settings.mode,
            policy=self.legs.policy,
            outcome=s.outcome,
            service_id=s.service_id,
            timeline_ms=self.timeline.as_ms(),
            selected_pair=s.selected_pair,
            agent_selected_pair=s.agent_selected_pair,
            interruptions=s.health.interruption_entries() if s.health else [],
            transport_events=s.health.transport_entries() if s.health else [],
            errors=s.errors,
            stats=s.stats,
            resume_to_media_ms=self.timeline.between("resumed", "media_again"),
            ice_servers=[server.url for server in self.legs.ice_servers],
            notes=self.notes,
            expected_outcome=expected,
            failure=failure,
            legs=self._legs_info,
        )

    @property
    def expected(self) -> Outcome:
        return self.scenario.expected

    @property
    def _checks_errors(self) -> bool:
        return self.consumer is not None


class CallRun(_Run):
    """Both roles of one call in this process; :meth:`run` returns its :class:`CallReport`."""

    def __init__(
        self,
        settings: CallSettings,
        env: CallEnvironment,
        *,
        consumer_leg: ConsumerLegFactory = aiortc_consumer,
        agent_leg: AgentLegFactory = aiortc_agent,
    ) -> None:
        super().__init__(settings, env, f"call/{settings.scenario}")
        self.marks = MediaMarks(self.state, ("agent", "consumer"), self.legs.kinds)
        consumer = consumer_leg(self.legs, self.marks.callback("consumer"))
        agent = agent_leg(self.legs, self.marks.callback("agent"))
        self.media_phase = MediaPhase(
            self.state, {"agent": agent, "consumer": consumer}, self.legs.kinds, self.marks
        )
        self.consumer = ConsumerRole(
            consumer, self.state, self.legs, settings, self.scenario, marks=self.marks, alone=False
        )
        self.agent = AgentRole(
            agent,
            self.state,
            self.legs,
            settings,
            self.scenario,
            alone=False,
            consumer_offered=self.consumer.offered,
        )
        self.roles = [self.agent, self.consumer]
        for role in self.roles:
            role.media_phase = self.media_phase

    async def _play(self) -> None:
        assert self.consumer is not None
        consumer = asyncio.create_task(self.consumer.run(), name="consumer-role")
        agent: asyncio.Task[None] | None = None
        try:
            ready = asyncio.create_task(self.consumer.ready.wait())
            await asyncio.wait({consumer, ready}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if consumer.done():
                consumer.result()  # the consumer failed before it was ready: its error
                return
            self.agent.conversation_id = self.state.conversation_id
            agent = asyncio.create_task(self.agent.run(), name="agent-role")
            await _both(consumer, agent)
        finally:
            for task in (consumer, agent):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)


async def _both(first: asyncio.Task[None], second: asyncio.Task[None]) -> None:
    """Both tasks to the end; the first error stops the other and is raised."""
    pending = {first, second}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                for other in pending:
                    other.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                task.result()


class SiteRun(_Run):
    """One role of a call (``call-site``); the other side runs elsewhere against the same emulator."""

    def __init__(
        self,
        role: Role,
        settings: CallSettings,
        env: CallEnvironment,
        *,
        conversation_id: str | None = None,
        consumer_leg: ConsumerLegFactory = aiortc_consumer,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(settings, env, f"call-site/{role}")
        self.role = role
        marks = MediaMarks(self.state, (role,), self.legs.kinds)
        leg: MediaLeg
        if role == "consumer":
            consumer = leg = consumer_leg(self.legs, marks.callback(role))
            self.consumer = ConsumerRole(
                consumer,
                self.state,
                self.legs,
                settings,
                self.scenario,
                marks=marks,
                alone=True,
                on_ready=on_ready,
            )
            self.roles = [self.consumer]
        else:
            agent = leg = AiortcAgent(self.legs, marks.callback(role))
            self.roles = [
                AgentRole(
                    agent,
                    self.state,
                    self.legs,
                    settings,
                    self.scenario,
                    alone=True,
                    conversation_id=conversation_id,
                )
            ]
        self.media_phase = MediaPhase(self.state, {role: leg}, self.legs.kinds, marks)
        self.roles[0].media_phase = self.media_phase

    async def _play(self) -> None:
        await self.roles[0].run()

    @property
    def expected(self) -> Outcome:
        # the agent side of a call the consumer declines still expects a connected call
        return "connected" if self.role == "agent" else self.scenario.expected


async def run_call(settings: CallSettings, env: CallEnvironment) -> CallReport:
    """Make one call and report it (never raises for a failed call: ``ok`` says)."""
    return await CallRun(settings, env).run()


__all__ = [
    "EXPECTED_OUTCOME",
    "LEG_KINDS",
    "AgentLegFactory",
    "CallEnvironment",
    "CallRun",
    "CallSettings",
    "ConsumerLegFactory",
    "LegKind",
    "SiteRun",
    "aiortc_agent",
    "aiortc_consumer",
    "leg_settings",
    "run_call",
    "spoiled_ice",
]
