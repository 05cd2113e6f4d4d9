"""One side of a headless call -- the agent or the consumer -- for calls between two networks.

``callops call`` runs both sides in one process; a call across two NATed networks needs each side
in its own network, sharing one emulator (``callops emulator serve``) that both can reach. This
module runs the *same* path as ``callops call`` (scenario ``accept``, docs/call.md), split by role:

* **consumer**: ``InitConnection`` (``CO_BROWSE``), ``ConsumerRequestConversation``, subscribe,
  announce the conversation id (``on_ready``), tracker sees ``INVITED``, publish
  ``cobrowseOffered`` + ``cobrowseAccepted``, observe ``ACCEPTED``, answer the agent's offer over
  the CoBrowse channel, ICE + DTLS, decoded media both ways, observe ``CLOSED`` once the agent
  hangs up.
* **agent**: wait (bounded) for the consumer's conversation (given, or the account's first open
  conversation without a live call), invite via the control API, join the CoBrowse channel of the
  ``serviceId``, wait for the channel's ``ACCEPTED`` state, send the offer, ICE + DTLS, decoded
  media both ways, hang up after ``duration_s`` (control API ``DELETE .../call``).

Each side reports a :class:`~callops.orchestrator.call.report.CallReport` of what *it* saw. Its
timeline's origin is the invitation as that side knows it (agent: the control API request;
consumer: the moment its tracker saw ``INVITED``). Its statistics hold the figures of its own
peer only: the sent side of the remote direction and the received side of the local one are 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from callops.errors import CallopsError, DeadlineExceeded, RemoteProtocolError
from callops.orchestrator.call.environment import AGENT_ID
from callops.orchestrator.call.health import HealthWatcher
from callops.orchestrator.call.peer import IceServer, KindStats, PeerConfig
from callops.orchestrator.call.report import (
    CallMode,
    CallReport,
    CallStats,
    IcePolicy,
    Outcome,
    SelectedPair,
)
from callops.orchestrator.call.session import CLOSE_S, DROP_CLOSE_S
from callops.orchestrator.call.timeline import Timeline
from callops.secret import Secret

log = logging.getLogger(__name__)

SiteRole = Literal["agent", "consumer"]

#: the poll interval of the agent's bounded wait for the consumer's conversation (control API)
CONVERSATION_POLL_S = 0.1


@dataclass
class SiteSettings:
    """What one side of the call does, and how long it waits for each step."""

    role: SiteRole
    base_url: str
    account: str = "callops"
    #: agent: the consumer's conversation (None: the account's first open one without a call)
    conversation_id: str | None = None
    mode: CallMode = "VOICE_CALL"
    policy: IcePolicy = "all"
    ice_servers: Sequence[IceServer] = ()
    #: verifies ``turns:`` servers (``--ca-file``); None: the system CAs
    ssl_context: ssl.SSLContext | None = None
    #: host candidate addresses; None gathers on every interface (browser-like, needed in the lab)
    host_addresses: Sequence[str] | None = ("127.0.0.1",)
    #: seconds of media once this side decoded the other's frames (the agent then hangs up)
    duration_s: float = 2.0
    #: how long to wait for the other side (agent: the conversation; consumer: the invitation)
    wait_timeout_s: float = 60.0
    step_timeout_s: float = 10.0
    ice_timeout_s: float = 10.0
    media_timeout_s: float = 10.0
    jwt_secret: Secret | None = None
    visitor_name: str = "callops visitor"
    notes: list[str] = field(default_factory=list)

    @property
    def cobrowse_url(self) -> str:
        return f"ws{self.base_url[4:]}/cobrowse/account/{self.account}?v=1"


class SiteRun:
    """The state of one side while the call runs; :meth:`run` returns its :class:`CallReport`."""

    def __init__(self, settings: SiteSettings, *, on_ready: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.on_ready = on_ready
        self.timeline = Timeline(time.monotonic(), name=f"call-site/{settings.role}")
        self.notes: list[str] = list(settings.notes)
        self.outcome: Outcome = "failed"
        self.failure: str | None = None
        self.service_id: str | None = None
        self.dialog_id: str | None = None
        self.conversation_id: str | None = settings.conversation_id
        self.selected_pair: SelectedPair | None = None
        self.stats = CallStats()
        self.peer: Any = None
        self.health: HealthWatcher | None = None
        self._first_media: float | None = None
        self._cleanup: list[Callable[[], Awaitable[None]]] = []
        self._close_bound_s = CLOSE_S

    # -- helpers ----------------------------------------------------------------------------------

    def _mark(self, phase: str, now: float | None = None) -> None:
        self.timeline.mark(phase, time.monotonic() if now is None else now)

    def _set_outcome(self, outcome: Outcome, why: str) -> None:
        """The one place this side's outcome changes (logged)."""
        if outcome != self.outcome:
            log.info("%s side: outcome %s -> %s (%s)", self.settings.role, self.outcome, outcome, why)
            self.outcome = outcome

    def _peer_phase(self, phase: str, now: float) -> None:
        if phase in ("ice_checking", "ice_connected", "dtls_connected"):
            self._mark(phase, now)
        elif "_first_" in phase:
            self._mark(f"first_{phase.partition('_first_')[2]}", now)
            if self._first_media is None:
                self._first_media = now

    def _make_peer(self) -> Any:
        """This side's headless peer; ``turns:`` verified with ``ssl_context`` (as the probe does)."""
        from callops.orchestrator.call.pair import ice_connection
        from callops.orchestrator.call.peer import HeadlessPeer

        s = self.settings
        config = PeerConfig(ice_servers=list(s.ice_servers), policy=s.policy, host_addresses=s.host_addresses)
        peer = HeadlessPeer(s.role, s.mode, config, on_phase=self._peer_phase)
        connection = ice_connection(peer.pc)
        # aioice takes an SSLContext where aiortc passes True (aioice >= 0.9); set before gathering.
        if s.ssl_context is not None and connection is not None and connection.turn_ssl is True:
            connection.turn_ssl = s.ssl_context
        self.peer = peer
        self._cleanup.append(peer.close)
        return peer

    async def _connected_and_media(self) -> None:
        """ICE+DTLS within ``ice_timeout_s``, then decoded media from the other side."""
        s = self.settings
        if not await self.peer.wait_connected(s.ice_timeout_s):
            from callops.orchestrator.call.peer import ice_failure_reason

            message, hint = ice_failure_reason(self.peer, s.ice_timeout_s)
            raise DeadlineExceeded(message, hint=hint)
        self._set_outcome("connected", "DTLS connected")
        try:
            await asyncio.wait_for(self.peer.wait_media(), s.media_timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(
                f"{s.role}: no decoded media from the other side within {s.media_timeout_s:g} s"
            ) from None
        log.info("%s side: media decoded from the other side", s.role)
        self.selected_pair = self.peer.selected_pair()

    async def _media_time_and_stats(self) -> bool:
        """``duration_s`` of media, watched (what this side decodes, its ICE/DTLS); False: dropped."""
        from callops.orchestrator.call.health import HealthWatcher
        from callops.orchestrator.call.leg import poll_health
        from callops.orchestrator.call.stats import call_stats

        s = self.settings
        other = "consumer" if s.role == "agent" else "agent"
        start = time.monotonic()
        watcher = HealthWatcher(
            flows=tuple((kind, f"{other}->{s.role}") for kind in self.peer.kinds),
            start_s=start,
            origin_s=self.timeline.origin,
        )
        self.health = watcher
        await poll_health(watcher, [self.peer], until=start + s.duration_s)
        now = time.monotonic()
        watcher.finish(now)
        started = self._first_media or now
        mine: dict[str, KindStats] = await self.peer.kind_stats()
        agent, consumer = (mine, {}) if s.role == "agent" else ({}, mine)
        gaps = {flow: watcher.interrupted_s(*flow, now) for flow in watcher.flows}
        self.stats = call_stats(
            agent, consumer, self.peer.kinds, now - started, interrupted_s=gaps, two_site=True
        )
        if watcher.dropped is None:
            return True
        self._mark("dropped", watcher.dropped.at_s)
        self._set_outcome("dropped", "media stopped for good")
        self._close_bound_s = DROP_CLOSE_S  # a dead relay never answers the deallocation
        self.failure = watcher.failure()
        return False

    # -- the run ----------------------------------------------------------------------------------

    async def run(self) -> CallReport:
        """Run this side; never raises for a failed call (``ok`` and ``failure`` say)."""
        try:
            if self.settings.role == "agent":
                await self._agent()
            else:
                await self._consumer()
        except CallopsError as exc:
            self.failure = exc.message if not exc.hint else f"{exc.message} ({exc.hint})"
            log.info("%s side failed: %s", self.settings.role, self.failure)
        except Exception as exc:  # a bug or an untranslated library error: report it, do not crash
            log.exception("%s side crashed", self.settings.role)
            self.failure = f"internal error: {exc.__class__.__name__}: {exc}"
        except asyncio.CancelledError:
            self.failure = self.failure or "stopped before the call ended"  # see report()
            raise
        finally:
            closing = asyncio.ensure_future(self._close())
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                await closing
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
        from callops.orchestrator.call.peer import aiortc_leg

        ok = self.failure is None and self.outcome == "connected"
        return CallReport(
            ok=ok,
            scenario="accept",
            mode=self.settings.mode,
            policy=self.settings.policy,
            outcome=self.outcome,
            service_id=self.service_id,
            timeline_ms=self.timeline.as_ms(),
            selected_pair=self.selected_pair if self.settings.role == "consumer" else None,
            agent_selected_pair=self.selected_pair if self.settings.role == "agent" else None,
            interruptions=self.health.interruption_entries() if self.health else [],
            transport_events=self.health.transport_entries() if self.health else [],
            stats=self.stats,
            ice_servers=[server.url for server in self.settings.ice_servers],
            notes=self.notes,
            expected_outcome="connected",
            failure=self.failure if (self.failure or ok) else f"outcome {self.outcome}, expected connected",
            legs={self.settings.role: aiortc_leg()},
        )

    # -- consumer ---------------------------------------------------------------------------------

    async def _consumer(self) -> None:
        from callops.consumer.client import ConsumerClient
        from callops.consumer.identity import prepare_consumer
        from callops.consumer.lptag import build_accepted, build_offered
        from callops.consumer.tracker import CallAccepted, CallClosed, CallInvited
        from callops.orchestrator.call.session import _Inbox
        from callops.orchestrator.call.signalling import Answer, Offer, signal_data
        from callops.orchestrator.emulator.channel import CoBrowseChannel

        s = self.settings
        # as a web page starts: the emulator's CSDS gives the websocket domain and the IDP, the IDP
        # an unauthenticated identity (renewed once on 4401/4407)
        prepared = await prepare_consumer(s.account, csds=s.base_url, timeout=s.step_timeout_s)
        jwt = prepared.jwt
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
        self.conversation_id = await client.request_conversation()
        await client.subscribe()
        log.info("consumer: conversation %s open, waiting for an invitation", self.conversation_id)
        if self.on_ready is not None:
            self.on_ready(self.conversation_id)

        async def event(kind: type[Any], within: float) -> Any:
            deadline = time.monotonic() + within
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeadlineExceeded(f"consumer: no {kind.__name__} within {within:g} s")
                got = await client.next_event(within=left)
                if self.dialog_id is not None and got.dialogId != self.dialog_id:
                    continue
                if isinstance(got, kind):
                    return got
                if isinstance(got, CallClosed):
                    raise RemoteProtocolError(f"call closed ({got.reason}) while waiting for {kind.__name__}")

        invited = await event(CallInvited, s.wait_timeout_s)
        self.timeline.origin = time.monotonic()
        self._mark("invited")
        self.dialog_id, self.service_id = invited.dialogId, invited.serviceId
        channel = await CoBrowseChannel.connect(
            s.cobrowse_url,
            role="consumer",
            service_id=invited.serviceId,
            jwt=jwt.reveal(),
            join=False,
            timeout=s.step_timeout_s,
        )
        self._cleanup.append(channel.close)
        inbox = _Inbox(channel, "consumer", self.notes)
        self._cleanup.append(inbox.close)
        ids = {"ssid": uuid.uuid4().hex, "svid": uuid.uuid4().hex}
        await channel.publish("cobrowseOffered", build_offered(invited, s.visitor_name, **ids).payload())
        self._mark("offered")
        client.accepted(invited.dialogId)
        await channel.publish("cobrowseAccepted", build_accepted(invited, s.visitor_name, **ids).payload())
        await event(CallAccepted, s.step_timeout_s)
        self._mark("accepted")

        peer = self._make_peer()
        offer = await inbox.next_signal(Offer, 0, s.step_timeout_s)
        answer_sdp = await peer.accept_offer(offer.sdp)
        await channel.send_signal(signal_data(Answer(kind="answer", sdp=answer_sdp, epoch=0)))
        await self._connected_and_media()
        self._set_outcome("connected", "media decoded")
        if not await self._media_time_and_stats():
            return  # dropped: the agent ends the call; this side does not wait for its CLOSED
        # The agent hangs up; the consumer observes CLOSED.
        await event(CallClosed, s.step_timeout_s + s.duration_s)
        self._mark("closed")

    # -- agent ------------------------------------------------------------------------------------

    async def _find_conversation(self, control: Any) -> str:
        """The consumer's conversation: the given one or the first open one without a live call."""
        s = self.settings
        deadline = time.monotonic() + s.wait_timeout_s
        while True:
            for conv in await control.conversations(s.account):
                if conv.state != "OPEN" or conv.call is not None:
                    continue
                if s.conversation_id is None or conv.conversationId == s.conversation_id:
                    return str(conv.conversationId)
            if time.monotonic() >= deadline:
                which = s.conversation_id or "an open conversation"
                raise DeadlineExceeded(
                    f"agent: {which} did not appear on account {s.account} within {s.wait_timeout_s:g} s",
                    hint="start the consumer side (callops call-site --role consumer) first",
                )
            await asyncio.sleep(CONVERSATION_POLL_S)  # bounded poll of the control API

    async def _accepted(self, control: Any) -> bool:
        for conv in await control.conversations(self.settings.account):
            for call in conv.calls:
                if call.serviceId == self.service_id and call.sessionState == "ACCEPTED":
                    return True
        return False

    async def _agent(self) -> None:
        from callops.orchestrator.call.session import _Inbox
        from callops.orchestrator.call.signalling import Answer, Offer, signal_data
        from callops.orchestrator.emulator.auth import mint_jwt
        from callops.orchestrator.emulator.channel import CoBrowseChannel
        from callops.orchestrator.emulator.control import ControlClient

        s = self.settings
        control = ControlClient(s.base_url, timeout=s.step_timeout_s)
        self.conversation_id = await self._find_conversation(control)
        peer = self._make_peer()
        self.timeline.origin = time.monotonic()
        invitation = await control.invite(s.account, self.conversation_id, s.mode)
        self.service_id, self.dialog_id = invitation.serviceId, invitation.dialogId
        conversation = self.conversation_id

        async def hang_up() -> None:
            with contextlib.suppress(CallopsError):
                await control.end_call(s.account, conversation)

        self._cleanup.append(hang_up)
        offering = asyncio.create_task(peer.create_offer())

        async def settle() -> None:
            # gathering is never cancelled half-way (aioice would leak a TURN allocation)
            await asyncio.wait({offering}, timeout=s.step_timeout_s)
            offering.cancel()
            await asyncio.gather(offering, return_exceptions=True)

        self._cleanup.append(settle)
        token = None
        if s.jwt_secret is not None:
            token = mint_jwt(AGENT_ID, s.jwt_secret, now=time.time())
        channel = await CoBrowseChannel.connect(
            s.cobrowse_url,
            role="agent",
            service_id=invitation.serviceId,
            token=token,
            timeout=s.step_timeout_s,
        )
        self._cleanup.append(channel.close)
        inbox = _Inbox(channel, "agent", self.notes)
        self._cleanup.append(inbox.close)
        # The consumer accepts (its page answers the invitation): the channel's state says ACCEPTED.
        # An acceptance before the channel joined is seen by the control API instead.
        deadline = time.monotonic() + s.step_timeout_s
        while not await self._accepted(control):
            frame = await inbox.next("state", max(0.0, deadline - time.monotonic()))
            state = frame.get("sessionState")
            if state == "ACCEPTED":
                break
            if state == "CLOSED":
                raise RemoteProtocolError(f"agent: the call closed ({frame.get('reason')}) before acceptance")
        self._mark("accepted")
        try:
            offer_sdp = await asyncio.wait_for(asyncio.shield(offering), s.step_timeout_s)
        except TimeoutError:
            raise DeadlineExceeded(f"agent: no offer gathered within {s.step_timeout_s:g} s") from None
        await channel.send_signal(signal_data(Offer(kind="offer", sdp=offer_sdp, epoch=0)))
        self._mark("offer_sent")
        answer = await inbox.next_signal(Answer, 0, s.step_timeout_s)
        await peer.accept_answer(answer.sdp)
        self._mark("answer_received")
        from callops.orchestrator.call.trickle import TrickleFollower  # browsers trickle their candidates

        self._cleanup.append(TrickleFollower(inbox, peer, epoch=0, notes=self.notes).start().close)
        await self._connected_and_media()
        self._set_outcome("connected", "media decoded")
        if not await self._media_time_and_stats():
            return  # dropped: hang_up (cleanup) ends the call at the emulator
        await control.end_call(s.account, conversation)
        self._cleanup.remove(hang_up)
        self._mark("closed")


async def run_site(settings: SiteSettings, *, on_ready: Callable[[str], None] | None = None) -> CallReport:
    """Run one side of a call and report it (never raises for a failed call: ``ok`` says)."""
    return await SiteRun(settings, on_ready=on_ready).run()


__all__ = ["CONVERSATION_POLL_S", "SiteRole", "SiteRun", "SiteSettings", "run_site"]
