"""The legs that play a call's two roles, and the small protocols they implement.

A call has two **roles**, the agent and the consumer (:mod:`callops.orchestrator.call.roles`).
Each is played by a **leg**: callops' headless aiortc peer, or a real Chromium
(:mod:`callops.orchestrator.browser.consumer_page`). The roles run the invitation path and the
scenario; the legs do what differs between an aiortc peer and a browser:

* :class:`ConsumerLeg` -- the visitor's side *including* its page: it connects to the Messaging
  Window API, opens a conversation, sees the invitation, publishes ``cobrowseOffered`` /
  ``cobrowseAccepted`` / ``cobrowseDeclined``, answers the agent's offer (trickled candidates),
  raises ``sessionError``\\ s, hangs up, reloads.
* :class:`AgentLeg` -- the agent's media engine: it offers over a :class:`SignalPipe`, applies the
  answer and trickled candidates, and connects. The agent's invitation path (control API, CoBrowse
  channel) is the Agent Workspace's backend and stays in the agent role.

Both report phases through ``on_phase(phase, now)`` (``ice_checking``, ``ice_connected``,
``dtls_connected``, ``first_audio``, ``first_video``: what *this* leg decoded), a health sample
for the mid-call watcher, per-kind statistics and the selected candidate pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from callops.errors import DeadlineExceeded, NetworkError, RemoteProtocolError
from callops.jsontypes import JsonObject
from callops.orchestrator.call.peer import HeadlessPeer, IceServer, KindStats, PeerConfig
from callops.orchestrator.call.report import CallMode, ErrorEntry, IcePolicy, LegInfo, SelectedPair
from callops.orchestrator.call.scenarios import Decision
from callops.orchestrator.call.signalling import Answer, Offer, parse_signal, signal_data
from callops.secret import Secret

if TYPE_CHECKING:
    from callops.consumer.client import ConsumerClient
    from callops.consumer.identity import IdentitySource
    from callops.consumer.tracker import CallInvited
    from callops.orchestrator.call.trickle import TrickleFollower
    from callops.orchestrator.emulator.channel import CoBrowseChannel

#: a consumer tracker event class (CallInvited, CallAccepted, ...)
E = TypeVar("E")
T = TypeVar("T")


def required(value: T | None, what: str) -> T:
    """``value``, which a step before this one set (``what``: the step that did not happen)."""
    assert value is not None, what
    return value


log = logging.getLogger(__name__)

Role = Literal["agent", "consumer"]
PhaseCallback = Callable[[str, float], None]
#: one health observation: decoded frames per kind, ICE state, DTLS/connection state
HealthSample = tuple[dict[str, int], str, str]


@dataclass
class LegSettings:
    """What a leg needs to know of the call: media, ICE, the emulator, and its bounds."""

    base_url: str
    account: str = "callops"
    mode: CallMode = "VOICE_CALL"
    policy: IcePolicy = "all"
    ice_servers: Sequence[IceServer] = ()
    #: verifies ``turns:`` servers; None: the system CAs
    ssl_context: ssl.SSLContext | None = None
    host_addresses: Sequence[str] | None = ("127.0.0.1",)
    video_size: tuple[int, int] = (320, 240)
    check_retransmits: tuple[float, ...] = (0.03, 0.06, 0.1, 0.2)
    pre_encoded_audio: bool = False
    step_timeout_s: float = 10.0
    ice_timeout_s: float = 10.0
    visitor_name: str = "callops visitor"
    #: consumer: seconds between ``cobrowseOffered`` and the answer (the visitor reads)
    answer_after_s: float = 0.0
    jwt_secret: Secret | None = None
    #: the agent's token for the CoBrowse channel (an emulator that checks signed tokens)
    agent_token: Secret | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def cobrowse_url(self) -> str:
        return f"ws{self.base_url[4:]}/cobrowse/account/{self.account}?v=1"

    @property
    def kinds(self) -> list[str]:
        return ["audio"] if self.mode == "VOICE_CALL" else ["audio", "video"]

    def peer_config(self) -> PeerConfig:
        return PeerConfig(
            ice_servers=list(self.ice_servers),
            policy=self.policy,
            host_addresses=self.host_addresses,
            video_size=self.video_size,
            check_retransmits=self.check_retransmits,
            pre_encoded_audio=self.pre_encoded_audio,
        )


@dataclass(frozen=True)
class Invited:
    """The invitation as the consumer's page saw it."""

    service_id: str
    dialog_id: str
    conversation_id: str
    #: when the page saw it (monotonic), if the leg knows
    at: float | None = None


class SignalPipe(Protocol):
    """How offers, answers and trickled candidates travel between the two legs."""

    async def send(self, message: Offer | Answer) -> None: ...

    async def next_signal(
        self, want: type[Offer] | type[Answer], epoch: int, within: float
    ) -> Offer | Answer: ...

    async def next(self, kind: str, within: float) -> JsonObject: ...


class MediaLeg(Protocol):
    """What both kinds of leg share: media, health, statistics, the end."""

    kind: str

    async def health_sample(self) -> HealthSample: ...

    async def kind_stats(self) -> dict[str, KindStats]: ...

    async def selected_pair(self) -> SelectedPair | None: ...

    def info(self) -> LegInfo: ...

    async def close(self) -> None: ...


class AgentLeg(MediaLeg, Protocol):
    """The agent's media engine (see the module docstring)."""

    def prepare(self, epoch: int) -> None:
        """Start gathering for the offer of ``epoch`` (a new WebRTC session after a resume)."""

    async def connect(self, pipe: SignalPipe, epoch: int, on_sent: Callable[[str], None]) -> bool:
        """Offer, take the answer and trickled candidates, and wait for ICE+DTLS (``ice_timeout_s``).
        ``on_sent("offer_sent"/"answer_received")`` marks the signalling steps."""

    async def media(self, within: float) -> bool: ...

    def failure_reason(self) -> tuple[str, str]:
        """``(message, hint)`` of a connection that did not come up."""

    async def vanish(self) -> None:
        """The agent's WebRTC session ends without a hang-up (media stops; prepare() starts anew)."""


class ConsumerLeg(MediaLeg, Protocol):
    """The visitor's browser tab or its headless stand-in (see the module docstring)."""

    async def join(self) -> str:
        """Connect, open a conversation and subscribe; the conversation id."""

    async def invited(self, within: float) -> Invited: ...

    async def respond(self, decision: Decision) -> None:
        """``cobrowseOffered``, then ``cobrowseAccepted``/``cobrowseDeclined`` (``wait``: neither)."""

    async def accepted(self, within: float) -> None: ...

    async def connect(self, epoch: int) -> bool:
        """Answer the agent's offer of ``epoch`` and wait for ICE+DTLS (``ice_timeout_s``)."""

    async def media(self, within: float) -> bool: ...

    def local_candidate_types(self) -> list[str]: ...

    def session_error(self, error_id: str, msg: str) -> None:
        """Raise ``sessionError`` ``error_id`` as the call app would (a browser raises its own)."""

    async def errors(self) -> list[ErrorEntry]: ...

    async def agent_left(self, within: float) -> None:
        """Until the page learns that the agent left the call (AGENT_DISCONNECTED)."""

    async def hang_up(self) -> None: ...

    async def closed(self, within: float) -> str:
        """Until the dialog is CLOSED; its reason."""

    async def late_accept(self) -> str | None:
        """Publish ``cobrowseAccepted`` after the call closed: the refusal, or None if accepted."""

    async def reload(self, on_resumed: Callable[[], None]) -> None:
        """The page reloads mid-call and finds the call again (``sessionResume``, ``sliderOpened``)."""


# -- the CoBrowse channel as a signal pipe ----------------------------------------------------------


class ChannelInbox:
    """Pushed CoBrowse messages of one channel, sorted by ``type`` (signal, presence, state, ...).

    It is the :class:`SignalPipe` of the roles that talk over the emulator's CoBrowse channel.
    """

    def __init__(self, channel: CoBrowseChannel, name: str, notes: list[str]) -> None:
        self.channel = channel
        self.name = name
        self.notes = notes
        self.queues: defaultdict[str, asyncio.Queue[JsonObject | None]] = defaultdict(asyncio.Queue)
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

    async def next(self, kind: str, within: float) -> JsonObject:
        queue = self.queues[kind]
        if self.closed and queue.empty():
            raise NetworkError(f"{self.name} CoBrowse channel closed while waiting for {kind!r}")
        try:
            async with asyncio.timeout(within):
                frame = await queue.get()
        except TimeoutError:
            raise DeadlineExceeded(f"{self.name}: no {kind!r} message within {within:g} s") from None
        if frame is None:
            queue.put_nowait(None)
            raise NetworkError(f"{self.name} CoBrowse channel closed while waiting for {kind!r}")
        return frame

    async def send(self, message: Offer | Answer) -> None:
        await self.channel.send_signal(signal_data(message))

    async def next_signal(
        self, want: type[Offer] | type[Answer], epoch: int, within: float
    ) -> Offer | Answer:
        """The next valid signal of type ``want`` and ``epoch``; malformed ones are noted and skipped."""
        try:
            async with asyncio.timeout(within):
                while True:
                    frame = await self.next("signal", within)
                    try:
                        message = parse_signal(frame.get("data"))
                    except RemoteProtocolError as exc:
                        self.notes.append(f"{self.name}: ignored {exc.message}")
                        log.warning("%s: %s", self.name, exc.message)
                        continue
                    if isinstance(message, want) and message.epoch == epoch:
                        return message
                    log.debug("%s: skipped signal %s (epoch %d)", self.name, message.kind, message.epoch)
        except TimeoutError:
            raise DeadlineExceeded(f"{self.name}: no {want.__name__.lower()} within {within:g} s") from None

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def open_channel(
    settings: LegSettings, role: Role, service_id: str, credential: str | None
) -> tuple[CoBrowseChannel, ChannelInbox]:
    """A CoBrowse channel for ``role`` of call ``service_id`` and its inbox. ``credential``: the
    consumer's JWT, or the agent's token (None: an emulator that checks no token)."""
    from callops.orchestrator.emulator.channel import CoBrowseChannel

    channel = await CoBrowseChannel.connect(
        settings.cobrowse_url,
        role=role,
        service_id=service_id,
        jwt=credential if role == "consumer" else None,
        token=credential if role == "agent" else None,
        timeout=settings.step_timeout_s,
    )
    return channel, ChannelInbox(channel, role, settings.notes)


@dataclass(eq=False)
class CallChannel:
    """One role's CoBrowse channel of a call and its inbox: opened together by :meth:`open`, read by
    the steps after it through :attr:`channel` and :attr:`inbox`."""

    role: Role
    _channel: CoBrowseChannel | None = field(default=None, init=False)
    _inbox: ChannelInbox | None = field(default=None, init=False)

    async def open(self, settings: LegSettings, service_id: str, credential: str | None) -> CoBrowseChannel:
        """Join call ``service_id`` (``credential``: as for :func:`open_channel`)."""
        self._channel, self._inbox = await open_channel(settings, self.role, service_id, credential)
        return self._channel

    @property
    def channel(self) -> CoBrowseChannel:
        return required(self._channel, f"the {self.role} channel is not open")

    @property
    def inbox(self) -> ChannelInbox:
        return required(self._inbox, f"the {self.role} channel is not open")

    @property
    def closed_at(self) -> float | None:
        """Monotonic time the channel closed under us (the emulator went away), if it did."""
        return self._inbox.closed_at if self._inbox is not None else None

    async def close(self) -> None:
        """The inbox, then the channel (whichever is open)."""
        if self._inbox is not None:
            await self._inbox.close()
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()


# -- aiortc ----------------------------------------------------------------------------------------


def make_peer(role: Role, settings: LegSettings, on_phase: PhaseCallback) -> HeadlessPeer:
    """A headless peer whose ``turns:`` are verified with ``settings.ssl_context`` (as the probe does)."""
    from callops.orchestrator.call.pair import ice_connection

    peer = HeadlessPeer(role, settings.mode, settings.peer_config(), on_phase=own_phases(on_phase))
    connection = ice_connection(peer.pc)
    # aioice takes an SSLContext where aiortc passes True (aioice >= 0.9); set before gathering.
    if settings.ssl_context is not None and connection is not None and connection.turn_ssl is True:
        connection.turn_ssl = settings.ssl_context
    return peer


def own_phases(on_phase: PhaseCallback) -> PhaseCallback:
    """HeadlessPeer names first frames ``<role>_first_<kind>``; a leg reports ``first_<kind>``."""

    def phase(name: str, now: float) -> None:
        on_phase(f"first_{name.partition('_first_')[2]}" if "_first_" in name else name, now)

    return phase


class AiortcMedia:
    """What both aiortc legs share: one :class:`HeadlessPeer` at a time. Alone, the media of a call
    without the invitation path (the two-site probe's ``--call``)."""

    kind = "aiortc"

    def __init__(self, role: Role, settings: LegSettings, on_phase: PhaseCallback) -> None:
        self.role: Role = role
        self.settings = settings
        self.on_phase = on_phase
        self.peer: HeadlessPeer | None = None

    def _new_peer(self) -> HeadlessPeer:
        self.peer = make_peer(self.role, self.settings, self.on_phase)
        return self.peer

    @property
    def _peer(self) -> HeadlessPeer:
        return required(self.peer, f"the {self.role} has no peer yet")

    async def wait_connected(self) -> bool:
        return await self._peer.wait_connected(self.settings.ice_timeout_s)

    async def answer(self, pipe: SignalPipe, epoch: int) -> bool:
        """Answer the offer of ``epoch`` from ``pipe`` (a fresh peer) and wait for ICE+DTLS."""
        offer = await pipe.next_signal(Offer, epoch, self.settings.step_timeout_s)
        answer = await self._new_peer().accept_offer(offer.sdp)
        await pipe.send(Answer(kind="answer", sdp=answer, epoch=epoch))
        return await self.wait_connected()

    async def media(self, within: float, frames: int = 1) -> bool:
        try:
            async with asyncio.timeout(within):
                await self._peer.wait_media(frames)
        except TimeoutError:
            return False
        return True

    async def health_sample(self) -> HealthSample:
        return self._peer.health_sample()

    async def kind_stats(self) -> dict[str, KindStats]:
        return await self._peer.kind_stats() if self.peer is not None else {}

    async def selected_pair(self) -> SelectedPair | None:
        return self.peer.selected_pair() if self.peer is not None else None

    def local_candidate_types(self) -> list[str]:
        return self.peer.local_candidate_types() if self.peer is not None else []

    def failure_reason(self) -> tuple[str, str]:
        from callops.orchestrator.call.peer import ice_failure_reason

        return ice_failure_reason(self._peer, self.settings.ice_timeout_s)

    def info(self) -> LegInfo:
        from callops.orchestrator.call.peer import aiortc_leg

        return aiortc_leg()

    async def close(self) -> None:
        if self.peer is not None:
            await self.peer.close()


class AiortcAgent(AiortcMedia):
    """The agent's headless peer: complete offers (no trickle), trickled answers applied."""

    def __init__(self, settings: LegSettings, on_phase: PhaseCallback) -> None:
        super().__init__("agent", settings, on_phase)
        self._offering: asyncio.Task[str] | None = None
        self._trickle: TrickleFollower | None = None

    def prepare(self, epoch: int) -> None:
        peer = self._new_peer()
        self._offering = asyncio.create_task(peer.create_offer(), name=f"agent-offer-{epoch}")

    async def connect(self, pipe: SignalPipe, epoch: int, on_sent: Callable[[str], None]) -> bool:
        from callops.orchestrator.call.trickle import TrickleFollower

        assert self._offering is not None, "prepare() first"
        step = self.settings.step_timeout_s
        try:
            async with asyncio.timeout(step):
                offer = await asyncio.shield(self._offering)
        except TimeoutError:
            raise DeadlineExceeded(f"agent: no offer gathered within {step:g} s") from None
        await pipe.send(Offer(kind="offer", sdp=offer, epoch=epoch))
        on_sent("offer_sent")
        answer = await pipe.next_signal(Answer, epoch, step)
        await self._peer.accept_answer(answer.sdp)
        on_sent("answer_received")
        await self._stop_trickle()
        self._trickle = TrickleFollower(pipe, self._peer, epoch=epoch, notes=self.settings.notes).start()
        return await self.wait_connected()

    async def vanish(self) -> None:
        await self._stop_trickle()
        await self._peer.close()

    async def _stop_trickle(self) -> None:
        if self._trickle is not None:
            await self._trickle.close()
            self._trickle = None

    async def close(self) -> None:
        await self._stop_trickle()
        if self._offering is not None:
            # gathering is never cancelled half-way: aioice would leak a TURN allocation that
            # completes after the cancellation. Let it finish, bounded.
            await asyncio.wait({self._offering}, timeout=self.settings.step_timeout_s)
            self._offering.cancel()
            await asyncio.gather(self._offering, return_exceptions=True)
        await super().close()


class AiortcConsumer(AiortcMedia):
    """The consumer's headless stand-in for a tagged page: callops' consumer client + an aiortc peer."""

    def __init__(self, settings: LegSettings, on_phase: PhaseCallback) -> None:
        from callops.consumer.lptag import Visitor

        super().__init__("consumer", settings, on_phase)
        self.client: ConsumerClient | None = None
        self.cobrowse = CallChannel("consumer")
        self.jwt: Secret | None = None
        self.identity: IdentitySource | None = None
        self.invite: CallInvited | None = None
        self.conversation_id: str | None = None
        self._errors: list[ErrorEntry] = []
        self._visitor = Visitor(settings.visitor_name, ssid=uuid.uuid4().hex, svid=uuid.uuid4().hex)

    @property
    def _client(self) -> ConsumerClient:
        return required(self.client, "the consumer is not connected")

    async def _connect_client(self, url: str) -> None:
        from callops.consumer.client import ConsumerClient

        s = self.settings
        assert self.jwt is not None
        self.client = ConsumerClient(
            url,
            s.account,
            self.jwt,
            reconnect=False,
            request_timeout=s.step_timeout_s,
            identity=self.identity,
        )
        await self._client.connect()

    async def join(self) -> str:
        from callops.consumer.identity import prepare_consumer

        s = self.settings
        # the consumer starts as a web page does: CSDS (the emulator's) and an IDP signup
        prepared = await prepare_consumer(s.account, csds=s.base_url, timeout=s.step_timeout_s)
        self.jwt, self.identity = prepared.jwt, prepared.identity
        await self._connect_client(prepared.url)
        self.conversation_id = await self._client.request_conversation()
        await self._client.subscribe()
        return str(self.conversation_id)

    async def _event(self, kind: type[E], within: float) -> E:
        """The next tracker event of class ``kind`` for this call (others are skipped)."""
        from callops.consumer.tracker import CallClosed

        dialog = self.invite.dialogId if self.invite is not None else None
        try:
            async with asyncio.timeout(within):
                while True:
                    event = await self._client.next_event()
                    if dialog is not None and event.dialogId != dialog:
                        continue
                    if isinstance(event, kind):
                        return event
                    if isinstance(event, CallClosed):
                        raise RemoteProtocolError(
                            f"call closed ({event.reason}) while waiting for {kind.__name__}"
                        )
        except TimeoutError:
            which = f" for dialog {dialog}" if dialog else ""
            raise DeadlineExceeded(f"consumer: no {kind.__name__}{which} within {within:g} s") from None

    @property
    def _invite(self) -> CallInvited:
        return required(self.invite, "no invitation yet")

    async def invited(self, within: float) -> Invited:
        from callops.consumer.tracker import CallInvited

        self.invite = await self._event(CallInvited, within)
        return Invited(
            self._invite.serviceId, self._invite.dialogId, self._invite.conversationId, at=time.monotonic()
        )

    async def _open_channel(self) -> CoBrowseChannel:
        jwt = self.jwt.reveal() if self.jwt is not None else None
        return await self.cobrowse.open(self.settings, self._invite.serviceId, jwt)

    async def respond(self, decision: Decision) -> None:
        from callops.consumer.lptag import build_accepted, build_declined, build_offered

        channel = await self._open_channel()
        await channel.publish("cobrowseOffered", build_offered(self._invite, self._visitor).payload())
        self.on_phase("offered", time.monotonic())
        if decision != "wait" and self.settings.answer_after_s > 0:
            await asyncio.sleep(self.settings.answer_after_s)  # the visitor reads the invitation
        if decision == "accept":
            self._client.accepted(self._invite.dialogId)
            await channel.publish("cobrowseAccepted", build_accepted(self._invite, self._visitor).payload())
        elif decision == "decline":
            self._client.declined(self._invite.dialogId)
            await channel.publish("cobrowseDeclined", build_declined(self._invite, self._visitor).payload())

    async def accepted(self, within: float) -> None:
        from callops.consumer.tracker import CallAccepted

        await self._event(CallAccepted, within)

    async def connect(self, epoch: int) -> bool:
        return await self.answer(self.cobrowse.inbox, epoch)

    def session_error(self, error_id: str, msg: str) -> None:
        from callops.consumer.lptag import build_session_error

        payload = build_session_error(error_id, msg)
        self._errors.append(ErrorEntry(id=payload.id, msg=payload.msg))
        log.info("consumer sessionError %s: %s", payload.id, payload.msg)

    async def errors(self) -> list[ErrorEntry]:
        return list(self._errors)

    async def agent_left(self, within: float) -> None:
        async with asyncio.timeout(within):
            while True:
                frame = await self.cobrowse.inbox.next("presence", within)
                if frame.get("role") == "agent" and frame.get("event") == "left":
                    return

    async def hang_up(self) -> None:
        await self.cobrowse.channel.hangup()

    async def closed(self, within: float) -> str:
        from callops.consumer.tracker import CallClosed

        return str((await self._event(CallClosed, within)).reason)

    async def late_accept(self) -> str | None:
        from callops.consumer.lptag import build_accepted
        from callops.orchestrator.emulator.channel import ChannelRefused

        payload = build_accepted(self._invite, self._visitor).payload()
        try:
            await self.cobrowse.channel.publish("cobrowseAccepted", payload)
        except ChannelRefused as exc:
            return f"{exc.code} {exc.title}"
        return None

    async def reload(self, on_resumed: Callable[[], None]) -> None:
        """The page goes away (websocket, CoBrowse channel, peer) and the reloaded page resumes."""
        from callops.consumer.lptag import build_slider_opened

        s = self.settings
        dialog = self._invite.dialogId
        await self._client.close()
        await self.cobrowse.inbox.close()
        await self.cobrowse.channel.close()
        if self.peer is not None:
            await self.peer.close()
        # The reloaded page: a new consumer session finds the active call ("browser storage").
        await self._connect_client(s.base_url)
        await self._client.subscribe()
        try:
            async with asyncio.timeout(s.step_timeout_s):
                active = self._client.tracker.call(dialog)
                while active is None:
                    await self._client.next_event()
                    active = self._client.tracker.call(dialog)
        except TimeoutError:
            raise DeadlineExceeded(
                f"resume: the new session did not find call {self._invite.serviceId}"
            ) from None
        if active.sessionState != "ACCEPTED":
            raise RemoteProtocolError(
                f"resume: call {self._invite.serviceId} is {active.sessionState}, not ACCEPTED"
            )
        on_resumed()  # sessionResume raised by the call app
        channel = await self._open_channel()
        await channel.join()
        await channel.publish("sliderOpened", build_slider_opened().payload() or None)

    async def close(self) -> None:
        await self.cobrowse.close()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
        await super().close()


__all__ = [
    "AgentLeg",
    "AiortcAgent",
    "AiortcConsumer",
    "AiortcMedia",
    "CallChannel",
    "ChannelInbox",
    "ConsumerLeg",
    "HealthSample",
    "Invited",
    "LegSettings",
    "MediaLeg",
    "PhaseCallback",
    "Role",
    "SignalPipe",
    "make_peer",
    "open_channel",
    "own_phases",
    "required",
]
