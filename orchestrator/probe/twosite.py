"""Two sites: ``callops probe serve`` (responder at site B) and ``callops probe peer`` (site A).

Signalling is JSON over one websocket per peer (:mod:`callops.orchestrator.probe.paths`). The
token travels as ``Authorization: Bearer`` in the opening handshake and is compared in constant
time; a wrong or missing token gets HTTP 401 before any session exists. The responder serves
several peers at once, at most ``max_sessions`` sessions in all, each ended after
``session_seconds`` whatever happens.

Site A runs every path class concurrently, each a separate full ICE negotiation, all under one
deadline; with ``call=True`` it also makes a real headless call (aiortc with media,
``iceTransportPolicy=all``) where B, the agent, offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, TypeVar

import pydantic

from callops.errors import AuthenticationError, CallopsError, NetworkError, RemoteProtocolError
from callops.orchestrator.call.signalling import Answer, Offer
from callops.orchestrator.probe import ice as icelib
from callops.orchestrator.probe.paths import (
    CLOSE_TOO_MANY_SESSIONS,
    MAX_MESSAGE_BYTES,
    PATH_CLASSES,
    AnyMessage,
    CallAnswer,
    CallMedia,
    CallOffer,
    CallSessionRequest,
    CandidateSummary,
    ErrorMessage,
    PathAnswer,
    PathClass,
    PathOffer,
    PathResult,
    SessionBye,
    TwoSiteCallResult,
    TwoSiteReport,
    parse_message,
)
from callops.orchestrator.probe.settings import ProbeSettings, load_credentials
from callops.orchestrator.probe.verdict import decide_two_site
from callops.secret import Secret

if TYPE_CHECKING:
    from collections.abc import Callable

    from websockets.asyncio.client import ClientConnection
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

    from callops.jsontypes import JsonObject
    from callops.orchestrator.call.legs import AiortcMedia, LegSettings
    from callops.orchestrator.call.report import SelectedPair
    from callops.turn.bandwidth import FlowSpec

log = logging.getLogger(__name__)

#: what the responder routes to a running session: site A's answer to B's call offer, or its bye
SessionMessage = CallAnswer | SessionBye
R = TypeVar("R", PathAnswer, CallOffer)

#: the path classes a ``--bandwidth`` flow runs over, first one tested: peer to peer (the relay's
#: bandwidth is the one-site test's); one flow only, two would share the link
BANDWIDTH_PATHS: tuple[PathClass, ...] = ("srflx", "host")
DEFAULT_MAX_SESSIONS = 32
DEFAULT_SESSION_SECONDS = 30.0
RTT_PINGS = 3


@dataclass
class CallServers:
    """ICE servers of a real headless call: ``(url, username, credential)`` each, best first."""

    servers: Sequence[tuple[str, str | None, Secret | None]] = ()
    host_addresses: Sequence[str] | None = None
    #: verifies TURN/TLS (``--ca-file``/``--insecure``); aiortc itself only knows the system CAs
    ssl_context: ssl.SSLContext | None = None


def _leg_settings(call: CallServers, *, step_s: float, ice_s: float) -> LegSettings:
    """The call's leg settings: the site's servers, ``iceTransportPolicy=all``, a voice call."""
    from callops.orchestrator.call.legs import LegSettings
    from callops.orchestrator.call.peer import IceServer

    return LegSettings(
        base_url="",  # no emulator: the offer and answer travel over the probe's websocket
        ice_servers=[IceServer(url=u, username=n, credential=c) for u, n, c in call.servers],
        ssl_context=call.ssl_context,
        host_addresses=call.host_addresses,
        step_timeout_s=step_s,
        ice_timeout_s=ice_s,
    )


class _ResponderPipe:
    """Site B's signal pipe of one call session: its offer out, site A's answer in."""

    def __init__(self, ws: ServerConnection, session: str, queue: asyncio.Queue[SessionMessage]) -> None:
        self.ws, self.session, self.queue = ws, session, queue

    async def send(self, message: Offer | Answer) -> None:
        await self.ws.send(CallOffer(session=self.session, sdp=message.sdp).model_dump_json())

    async def next_signal(
        self, want: type[Offer] | type[Answer], epoch: int, within: float
    ) -> Offer | Answer:
        async with asyncio.timeout(within):
            while True:
                msg = await self.queue.get()
                if isinstance(msg, CallAnswer):
                    return Answer(kind="answer", sdp=msg.sdp, epoch=epoch)
                if isinstance(msg, SessionBye):
                    raise NetworkError(f"the peer ended call session {self.session}")

    async def next(self, kind: str, within: float) -> JsonObject:
        raise NetworkError("no trickled candidates over the probe's signalling")


class _PeerPipe:
    """Site A's signal pipe of one call session: the call request brings B's offer, A answers."""

    def __init__(self, sig: _Signalling, session: str, deadline: float) -> None:
        self.sig, self.session, self.deadline = sig, session, deadline
        #: site B's ``call-media``, once it decodes ours (registered before the answer goes out)
        self.remote_media: asyncio.Future[AnyMessage] | None = None

    async def send(self, message: Offer | Answer) -> None:
        self.remote_media = self.sig.expect(self.session)
        await self.sig.send(CallAnswer(session=self.session, sdp=message.sdp))

    def close(self) -> None:
        self.sig.waiting.pop(self.session, None)
        future = self.remote_media
        if future is not None:
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: the result already says what failed
            future.cancel()

    async def next_signal(
        self, want: type[Offer] | type[Answer], epoch: int, within: float
    ) -> Offer | Answer:
        offer = await self.sig.request(
            CallSessionRequest(session=self.session), CallOffer, self.deadline - time.monotonic()
        )
        return Offer(kind="offer", sdp=offer.sdp, epoch=epoch)

    async def next(self, kind: str, within: float) -> JsonObject:
        raise NetworkError("no trickled candidates over the probe's signalling")


def _pair_summary(
    pair: SelectedPair | None,
) -> tuple[CandidateSummary | None, CandidateSummary | None, str | None]:
    if pair is None:
        return None, None, None
    local = CandidateSummary(
        type=pair.local.type, address=f"{pair.local.address}:{pair.local.port}", protocol=pair.local.protocol
    )
    remote = CandidateSummary(
        type=pair.remote.type,
        address=f"{pair.remote.address}:{pair.remote.port}",
        protocol=pair.remote.protocol,
    )
    return local, remote, pair.local.relay_protocol


def site_servers(
    settings: ProbeSettings, env: Mapping[str, str], *, host_addresses: Sequence[str] | None = None
) -> tuple[icelib.IceSettings, CallServers]:
    """A site's ICE settings and call servers from its probe settings (STUN first, then TURN)."""
    stun_uris, turn_uris = settings.stun_uris(), settings.turn_uris()
    credentials = load_credentials(settings, env, now=time.time())
    context = None
    if any(u.secure for u in turn_uris):
        from callops.turn.tls import client_context

        context = client_context(settings.ca_file, insecure=settings.insecure)
    password = credentials.password.reveal() if credentials.password is not None else None
    ice = icelib.IceSettings(
        stun=stun_uris[0] if stun_uris else None,
        turn=turn_uris,
        username=credentials.username,
        password=password,
        ssl_context=context,
        host_addresses=host_addresses,
    )
    servers: list[tuple[str, str | None, Secret | None]] = [(str(u), None, None) for u in stun_uris]
    servers += [(str(u), credentials.username, credentials.password) for u in turn_uris]
    return ice, CallServers(servers=servers, host_addresses=host_addresses, ssl_context=context)


#: decoded frames per media kind that count as "media arrives" (each side, each direction)
CALL_MEDIA_FRAMES = 5
#: seconds of watched media once both sides decode (within the probe's deadline)
CALL_WATCH_S = 2.0


# -- responder (site B) ---------------------------------------------------------------------------


@dataclass
class Responder:
    """``callops probe serve``: answers offers and call requests of authenticated peers."""

    token: Secret
    ice: icelib.IceSettings
    call: CallServers = field(default_factory=CallServers)
    max_sessions: int = DEFAULT_MAX_SESSIONS
    session_seconds: float = DEFAULT_SESSION_SECONDS
    active: int = 0
    served: int = 0

    def authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.token.reveal()}".encode()
        return hmac.compare_digest((header or "").encode(), expected)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not self.authorized(request.headers.get("Authorization")):
            log.warning("probe serve: rejected a peer without the right token")
            return connection.respond(HTTPStatus.UNAUTHORIZED, "token required\n")
        return None

    async def start(self, host: str, port: int) -> Server:
        """The listening websockets server (``close()``/``wait_closed()`` it)."""
        from websockets.asyncio.server import serve

        try:
            return await serve(
                self.handle, host, port, process_request=self.process_request, max_size=MAX_MESSAGE_BYTES
            )
        except OSError as exc:
            raise NetworkError(
                f"probe serve: cannot listen on {host}:{port}: {exc.strerror}", hint="choose a free port"
            ) from None

    async def handle(self, ws: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        queues: dict[str, asyncio.Queue[SessionMessage]] = {}
        tasks: set[asyncio.Task[None]] = set()
        try:
            async for raw in ws:
                try:
                    msg = parse_message(raw)
                except pydantic.ValidationError as exc:
                    await ws.send(
                        ErrorMessage(
                            message=f"malformed message: {exc.error_count()} errors"
                        ).model_dump_json()
                    )
                    continue
                if isinstance(msg, PathOffer | CallSessionRequest):
                    if self.active >= self.max_sessions or msg.session in queues:
                        reason = "too many sessions" if msg.session not in queues else "duplicate session"
                        await ws.send(ErrorMessage(session=msg.session, message=reason).model_dump_json())
                        if reason == "too many sessions":
                            log.warning("probe serve: session limit %d reached", self.max_sessions)
                        continue
                    # Admitted here, before anything awaits: a burst of peers cannot all pass the
                    # check above before one of them counts. The slot is freed when the task ends,
                    # even if it is cancelled before it ever runs.
                    self.active += 1
                    self.served += 1
                    queues[msg.session] = asyncio.Queue()
                    task = asyncio.create_task(self._session(ws, msg, queues[msg.session]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    task.add_done_callback(self._release)
                    task.add_done_callback(_forget(queues, msg.session))
                elif isinstance(msg, CallAnswer | SessionBye) and msg.session in queues:
                    queues[msg.session].put_nowait(msg)
        except ConnectionClosed:
            pass
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _release(self, _task: asyncio.Task[None]) -> None:
        self.active -= 1

    async def _session(
        self, ws: ServerConnection, msg: PathOffer | CallSessionRequest, queue: asyncio.Queue[SessionMessage]
    ) -> None:
        log.info("probe serve: session %s (%s) started, %d active", msg.session, _kind(msg), self.active)
        try:
            async with asyncio.timeout(self.session_seconds):
                if isinstance(msg, PathOffer):
                    await self._ice_session(ws, msg, queue)
                else:
                    await self._call_session(ws, msg, queue)
        except TimeoutError:
            log.info("probe serve: session %s ended after %.0f s", msg.session, self.session_seconds)
            with contextlib.suppress(Exception):
                await ws.send(SessionBye(session=msg.session).model_dump_json())
        except CallopsError as exc:
            log.info("probe serve: session %s: %s", msg.session, exc)
            with contextlib.suppress(Exception):
                await ws.send(ErrorMessage(session=msg.session, message=str(exc)).model_dump_json())
        except Exception as exc:  # aioice/aiortc failures: end this session, one line, never a traceback
            log.warning("probe serve: session %s failed: %s: %s", msg.session, exc.__class__.__name__, exc)
            with contextlib.suppress(Exception):
                await ws.send(ErrorMessage(session=msg.session, message="session failed").model_dump_json())
        finally:
            log.info("probe serve: session %s over, %d active", msg.session, self.active - 1)

    async def _ice_session(
        self, ws: ServerConnection, offer: PathOffer, queue: asyncio.Queue[SessionMessage]
    ) -> None:
        connection = icelib.make_connection(offer.path, self.ice, controlling=False)
        try:
            await icelib.gather(connection, self.ice)
            answer = PathAnswer(
                session=offer.session,
                ufrag=connection.local_username,
                pwd=connection.local_password,
                candidates=icelib.signalled(offer.path, connection, controlling=False),
            )
            await ws.send(answer.model_dump_json())
            label = f"session {offer.session} ({offer.path})"
            negotiation = asyncio.create_task(
                icelib.negotiate(
                    connection, offer.ufrag, offer.pwd, offer.candidates, self.session_seconds, label=label
                )
            )
            bye = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({negotiation, bye}, return_when=asyncio.FIRST_COMPLETED)
            if negotiation in done and negotiation.exception() is None:
                echo = asyncio.create_task(icelib.echo(connection))
                await bye
                echo.cancel()
            for task in (negotiation, bye):
                task.cancel()
            await asyncio.gather(negotiation, bye, return_exceptions=True)
        finally:
            await connection.close()

    async def _call_session(
        self, ws: ServerConnection, request: CallSessionRequest, queue: asyncio.Queue[SessionMessage]
    ) -> None:
        """The agent's side of a probe call: the same aiortc leg as ``callops call``'s agent."""
        from callops.orchestrator.call.legs import AiortcAgent

        settings = _leg_settings(self.call, step_s=self.session_seconds, ice_s=self.session_seconds)
        leg = AiortcAgent(settings, lambda _phase, _now: None)
        pipe = _ResponderPipe(ws, request.session, queue)
        try:
            leg.prepare(epoch=0)
            if await leg.connect(pipe, 0, lambda _step: None) and await leg.media(
                self.session_seconds, frames=CALL_MEDIA_FRAMES
            ):
                log.info("probe serve: call %s decodes media from the peer", request.session)
                await ws.send(CallMedia(session=request.session, media=True).model_dump_json())
            while not isinstance(await queue.get(), SessionBye):
                pass
        finally:
            await leg.close()


def _forget(
    queues: dict[str, asyncio.Queue[SessionMessage]], session: str
) -> Callable[[asyncio.Task[None]], None]:
    def done(_task: asyncio.Task[None]) -> None:
        queues.pop(session, None)

    return done


def _kind(msg: PathOffer | CallSessionRequest) -> str:
    return msg.path if isinstance(msg, PathOffer) else "call"


# -- peer (site A) --------------------------------------------------------------------------------


class _Signalling:
    """Site A's end of the websocket: sends messages, routes answers to their session."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[AnyMessage]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                try:
                    msg = parse_message(raw)
                except pydantic.ValidationError:
                    log.warning("probe peer: malformed message from the responder")
                    continue
                session = getattr(msg, "session", None)
                future = self.waiting.pop(session, None) if session else None
                if future is not None and not future.done():
                    future.set_result(msg)
        except ConnectionClosed:
            pass
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(NetworkError("the responder closed the signalling connection"))

    def expect(self, session: str) -> asyncio.Future[AnyMessage]:
        """The next message of ``session`` (register before sending what it answers)."""
        future: asyncio.Future[AnyMessage] = asyncio.get_running_loop().create_future()
        if self.reader.done():
            future.set_exception(NetworkError("the responder closed the signalling connection"))
        else:
            self.waiting[session] = future
        return future

    async def request(self, msg: PathOffer | CallSessionRequest, answer: type[R], within: float) -> R:
        """Send ``msg``; the responder's ``answer`` to it (else a :class:`CallopsError`)."""
        future = self.expect(msg.session)
        await self.ws.send(msg.model_dump_json())
        try:
            reply = await asyncio.wait_for(future, max(0.001, within))
        except TimeoutError:
            raise NetworkError(f"the responder did not answer session {msg.session} in time") from None
        finally:
            self.waiting.pop(msg.session, None)
        if isinstance(reply, ErrorMessage):
            raise RemoteProtocolError(f"the responder refused session {msg.session}: {reply.message}")
        if isinstance(reply, SessionBye):
            raise NetworkError(f"the responder ended session {msg.session} (its --session-seconds)")
        if not isinstance(reply, answer):
            raise RemoteProtocolError(
                f"the responder answered session {msg.session} with {reply.type!r}, not {answer.__name__}"
            )
        return reply

    async def send(self, msg: SessionBye | CallAnswer) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send(msg.model_dump_json())


async def _run_path(
    sig: _Signalling,
    path: PathClass,
    ice: icelib.IceSettings,
    deadline: float,
    bandwidth: FlowSpec | None = None,
) -> PathResult:
    started = time.monotonic()
    session = f"{path}-{secrets.token_hex(4)}"
    result = PathResult(path=path, connected=False, duration_ms=0.0)
    connection = None
    try:
        connection = icelib.make_connection(path, ice, controlling=True)
        await asyncio.wait_for(icelib.gather(connection, ice), max(0.001, deadline - time.monotonic()))
        candidates = icelib.signalled(path, connection, controlling=True)
        result.local_candidates = len(candidates)
        if not candidates:
            raise NetworkError(
                f"{path}: no candidate to offer (STUN/TURN server unreachable over this path?)"
            )
        offer = PathOffer(
            session=session,
            path=path,
            ufrag=connection.local_username,
            pwd=connection.local_password,
            candidates=candidates,
        )
        answer = await sig.request(offer, PathAnswer, deadline - time.monotonic())
        result.remote_candidates = len(answer.candidates)
        await icelib.negotiate(
            connection, answer.ufrag, answer.pwd, answer.candidates, deadline - time.monotonic(), label=path
        )
        result.connected = True
        relay_protocol = path.removeprefix("relay-") if path.startswith("relay-") else "udp"
        pair = icelib.selected(connection, relay_protocol=relay_protocol)
        if pair is not None:
            result.local, result.remote = pair
        result.rtt_ms = await icelib.measure_rtt(
            connection, count=RTT_PINGS, within=max(0.001, min(2.0, deadline - time.monotonic()))
        )
        if bandwidth is not None:
            from callops.turn.bandwidth import echo_flow

            status, detail, result.bandwidth = await echo_flow(
                bandwidth, connection.send, connection.recv, within=deadline - time.monotonic() - 0.5
            )
            result.bandwidth_status, result.bandwidth_detail = status.value, detail
    except TimeoutError:
        result.error = f"{path}: no result by the deadline"
    except CallopsError as exc:
        result.error = str(exc)
    except (OSError, ConnectionError, ValueError) as exc:  # aioice failures not translated below
        result.error = f"{path}: {exc.__class__.__name__}: {exc}"
    finally:
        await sig.send(SessionBye(session=session))
        if connection is not None:
            await connection.close()
    result.duration_ms = round((time.monotonic() - started) * 1000, 3)
    log.info("probe peer: %s %s", path, "connected" if result.connected else f"failed: {result.error}")
    return result


async def _run_call(sig: _Signalling, call: CallServers, deadline: float) -> TwoSiteCallResult:
    """The consumer's side of a probe call: the same aiortc media as ``callops call``, then up to
    :data:`CALL_WATCH_S` of watched media (interruptions, transport events, a drop)."""
    from callops.orchestrator.call.legs import AiortcMedia
    from callops.orchestrator.call.roles import CallState, MediaMarks, MediaPhase
    from callops.orchestrator.call.timeline import Timeline

    started = time.monotonic()
    session = f"call-{secrets.token_hex(4)}"
    result = TwoSiteCallResult(connected=False, media=False, duration_ms=0.0)
    left = max(0.001, deadline - started)
    state = CallState(Timeline(started, name="probe-call"), [])
    marks = MediaMarks(state, ("consumer",), ["audio"])
    leg = AiortcMedia("consumer", _leg_settings(call, step_s=left, ice_s=left), marks.callback("consumer"))
    pipe = _PeerPipe(sig, session, deadline)
    try:
        result.connected = await leg.answer(pipe, 0)
        if result.connected and pipe.remote_media is not None:
            result.local, result.remote, result.relay_protocol = _pair_summary(await leg.selected_pair())
            await _call_media(leg, result, pipe.remote_media, deadline)
            watch = min(CALL_WATCH_S, deadline - time.monotonic() - 0.5)
            if result.media and watch > 0:
                phase = MediaPhase(state, {"consumer": leg}, ["audio"], marks)
                result.dropped = not await phase.run(watch)
                result.media_s = round(watch, 3)
                if state.health is not None:
                    result.interruptions = state.health.interruption_entries()
                    result.transport_events = state.health.transport_entries()
                if result.dropped:
                    result.media, result.error = False, state.failure
        else:
            result.error = "ICE/DTLS did not connect by the deadline"
    except CallopsError as exc:
        result.error = str(exc)
    finally:
        pipe.close()
        await sig.send(SessionBye(session=session))
        await leg.close()
    result.duration_ms = round((time.monotonic() - started) * 1000, 3)
    return result


async def _call_media(
    leg: AiortcMedia, result: TwoSiteCallResult, remote_media: asyncio.Future[AnyMessage], deadline: float
) -> None:
    """Media both ways: this side decodes, and site B says it does (its ``call-media``)."""
    result.media_received = await leg.media(max(0.001, deadline - time.monotonic()), frames=CALL_MEDIA_FRAMES)
    if result.media_received:
        with contextlib.suppress(TimeoutError):
            reply = await asyncio.wait_for(remote_media, max(0.001, deadline - time.monotonic()))
            result.media_sent = isinstance(reply, CallMedia) and reply.media
    result.media = result.media_received and result.media_sent
    if not result.media:
        missing = "from the responder" if not result.media_received else "at the responder"
        result.error = f"connected, but no media arrived {missing} by the deadline"


async def run_peer(
    url: str,
    token: Secret,
    ice: icelib.IceSettings,
    *,
    timeout: float = 20.0,
    paths: Sequence[PathClass] = PATH_CLASSES,
    call: CallServers | None = None,
    bandwidth: FlowSpec | None = None,
) -> TwoSiteReport:
    """Every path class against the responder at ``url``, concurrently, within ``timeout`` seconds."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus, WebSocketException

    started = time.monotonic()
    deadline = started + timeout
    try:
        ws = await asyncio.wait_for(
            connect(
                url,
                additional_headers={"Authorization": f"Bearer {token.reveal()}"},
                max_size=MAX_MESSAGE_BYTES,
            ),
            timeout,
        )
    except InvalidStatus as exc:
        if exc.response.status_code == HTTPStatus.UNAUTHORIZED:
            raise AuthenticationError(
                f"probe peer: {url} rejected the token", hint="use the token file of 'callops probe serve'"
            ) from None
        raise NetworkError(f"probe peer: {url} answered HTTP {exc.response.status_code}") from None
    except TimeoutError:
        raise NetworkError(f"probe peer: {url} did not answer within {timeout:.1f} s") from None
    except (OSError, WebSocketException) as exc:
        raise NetworkError(
            f"probe peer: cannot connect to {url}: {exc}", hint="is 'callops probe serve' running there?"
        ) from None
    async with ws:
        sig = _Signalling(ws)
        call_job = asyncio.create_task(_run_call(sig, call, deadline)) if call is not None else None
        flow_path = next((p for p in BANDWIDTH_PATHS if p in paths), None)
        jobs = [_run_path(sig, p, ice, deadline, bandwidth if p == flow_path else None) for p in paths]
        results = list(await asyncio.gather(*jobs))
        call_result = await call_job if call_job is not None else None
        sig.reader.cancel()
    decision = decide_two_site(results)
    return TwoSiteReport(
        verdict=decision.verdict,
        relay_transports=list(decision.relay_transports),
        paths=results,
        call=call_result,
        server=url,
        exit_code=decision.exit_code,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
    )


__all__ = [
    "CLOSE_TOO_MANY_SESSIONS",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_SESSION_SECONDS",
    "CallServers",
    "Responder",
    "run_peer",
    "site_servers",
]
