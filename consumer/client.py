"""The consumer-side Messaging Window API client: the asyncio adapter of :mod:`.protocol`.

:class:`ConsumerClient` moves bytes and timers for the sans-I/O
:class:`~callops.consumer.protocol.ConsumerProtocol` over ``websockets``: it sends InitConnection
first and waits for code 200, runs the protocol's timers (the keep-alive ``GetClock`` and the
tracker's expiry) at :meth:`~callops.consumer.protocol.ConsumerProtocol.next_deadline`, and when
the connection drops does what :meth:`~callops.consumer.protocol.ConsumerProtocol.on_close`
decides -- reconnect after the protocol's back-off and subscribe again, renew the identity, or
give up -- and hands the tracker's events out through :meth:`ConsumerClient.events`.
Close codes 4401, 4407 and 1011 mean the token was rejected. An unauthenticated consumer (an
``identity`` that is renewable, :class:`~callops.consumer.identity.SignupIdentity`) gets a fresh
identity from the IDP on 4401 or 4407 and reconnects once, subscribing again; for an
authenticated consumer, for 1011, and when the fresh identity is rejected too, it is a
:class:`TokenRejected` (an :class:`callops.errors.AuthenticationError`) whose message names the
likely cause (expired, another account, clock skew). JWTs are never logged.

The protocol's names that were importable from here before it moved still are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, TypedDict, Unpack
from urllib.parse import quote, urlsplit

from callops.consumer.identity import IdentitySource, token_problem
from callops.consumer.models import (
    GET_CLOCK,
    INIT_CONNECTION,
    MAX_FRAME_BYTES,
    REQUEST_CONVERSATION,
    SUBSCRIBE_EX_CONVERSATIONS,
    ClientProperties,
    ErrorBody,
    RequestConversationResponse,
    Response,
    SubscribeExConversationsResponse,
    parse_body,
)
from callops.consumer.protocol import (
    AUTH_CLOSE_CODES,
    DEFAULT_FEATURES,
    CloseDecision,
    ConnectionPolicy,
    ConsumerProtocol,
    DropConnection,
    NotificationReceived,
    OutgoingRequest,
    ProtocolEvent,
    ResponseReceived,
    TimerAction,
    backoff_delays,
    jwt_subject,
)
from callops.consumer.tracker import InvitationTracker, TrackerEvent
from callops.errors import (
    AuthenticationError,
    CallopsError,
    DeadlineExceeded,
    LocalProtocolError,
    NetworkError,
    ProtocolError,
    RemoteProtocolError,
    UsageError,
)
from callops.lifecycle import AsyncStartStop
from callops.secret import RedactedFrameLog, Secret, redact

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

log = logging.getLogger("callops.consumer.client")

_CLOSE_MEANING = {
    4401: "the token was rejected or has expired",
    4407: "the unauthenticated identity must be renewed",
    1011: "the server failed the session (treated as an authentication failure)",
}


def consumer_url(url: str, account: str) -> str:
    """The consumer endpoint for ``url``: a full ``.../ws_api/...`` URL is kept, a base URL
    (``ws://host:port``, ``http://host:port``) gets ``/ws_api/account/{account}/messaging/consumer?v=3``."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise UsageError(
            f"consumer URL {url!r} is not a ws://, wss://, http:// or https:// URL",
            hint="e.g. ws://127.0.0.1:8080 or wss://va.msg.liveperson.net",
        )
    if "/ws_api/" in parts.path:
        return parts._replace(scheme=scheme).geturl()
    if not account:
        raise UsageError("no account id given", hint="pass --account")
    base = parts._replace(scheme=scheme, query="", fragment="").geturl().rstrip("/")
    return f"{base}/ws_api/account/{quote(account, safe='')}/messaging/consumer?v=3"


class TokenRejected(AuthenticationError):
    """The messaging service closed the socket with an authentication close code (``code``)."""

    def __init__(self, message: str, *, code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class RequestRejected(RemoteProtocolError):
    """The server answered a request with an error code."""

    def __init__(self, request_type: str, response: Response) -> None:
        self.request_type = request_type
        self.response = response
        self.code = response.code
        detail = ""
        if isinstance(response.body, dict):
            with contextlib.suppress(CallopsError):
                err = parse_body(ErrorBody, response.body)
                detail = f": {err.title}" + (f" -- {err.details}" if err.details else "")
        super().__init__(f"{request_type} rejected with code {response.code}{detail}")


# --- the asyncio adapter -----------------------------------------------------------------------


class _End:
    """Marks the end of the event stream."""


_END = _End()


class PolicyOptions(TypedDict, total=False):
    """The :class:`ConnectionPolicy` settings :class:`ConsumerClient` takes as keyword arguments;
    left out, the policy's defaults apply (its keep-alive timeout is the client's ``request_timeout``)."""

    keepalive_interval: float
    reconnect: bool
    backoff_initial: float
    backoff_max: float
    backoff_factor: float
    max_reconnect_attempts: int | None


class ConsumerClient(AsyncStartStop):
    """An asyncio Messaging Window API consumer that tracks voice/video call invitations.

    ``url`` is the consumer endpoint or a base URL (see :func:`consumer_url`). Use it as an async
    context manager (connects on entry, closes on exit) or call :meth:`connect` / :meth:`close`.
    The keep-alive, reconnect and back-off settings are keyword arguments (:class:`PolicyOptions`).
    """

    def __init__(
        self,
        url: str,
        account: str,
        jwt: Secret,
        *,
        features: Sequence[str] = DEFAULT_FEATURES,
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        client_properties: ClientProperties | None = None,
        tracker: InvitationTracker | None = None,
        clock: Callable[[], float] = time.time,
        identity: IdentitySource | None = None,
        **policy: Unpack[PolicyOptions],
    ) -> None:
        self.url = consumer_url(url, account)
        #: where ``jwt`` came from; a renewable one is asked for a fresh JWT on 4401/4407
        self.identity = identity
        #: how many times a fresh identity replaced a rejected one
        self.renewals = 0
        self.account = account
        self._jwt = jwt
        self.request_timeout = request_timeout
        self.open_timeout = open_timeout
        self._clock = clock
        renewable = identity is not None and identity.renewable
        self.protocol = ConsumerProtocol(
            jwt,
            features=features,
            client_properties=client_properties,
            tracker=tracker,
            policy=ConnectionPolicy(keepalive_timeout=request_timeout, renewable=renewable, **policy),
        )
        #: malformed frames and notifications seen (they are logged and skipped, never fatal)
        self.problems: list[str] = []
        #: how many times the connection was re-established
        self.reconnects = 0
        #: set while a connection is up and initialised
        self.connected = asyncio.Event()
        self.subscription_id: str | None = None
        self._subscription: dict[str, list[str]] | None = None
        self._ws: ClientConnection | None = None
        self._waiters: dict[str, asyncio.Future[Response]] = {}
        self._queue: asyncio.Queue[TrackerEvent | CallopsError | _End] = asyncio.Queue()
        self._deadline_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._failure: CallopsError | None = None
        self._state = asyncio.Condition()
        self._notifiers: set[asyncio.Task[None]] = set()

    @property
    def keepalive_interval(self) -> float:
        """Seconds between keep-alive ``GetClock`` requests."""
        return self.protocol.policy.keepalive_interval

    @property
    def tracker(self) -> InvitationTracker:
        return self.protocol.tracker

    @property
    def jwt(self) -> Secret:
        """The consumer JWT (a :class:`Secret`: it does not print itself)."""
        return self._jwt

    @property
    def consumer_id(self) -> str | None:
        return jwt_subject(self._jwt.reveal())

    # --- public API ------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the websocket, send InitConnection and wait for its code 200."""
        if self._ws is not None or self._tasks:
            raise LocalProtocolError("ConsumerClient.connect() called twice")
        self._closing = False
        self._ws = await self._open_renewing()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="consumer-reader"),
            asyncio.create_task(self._timers(), name="consumer-timers"),
        ]

    async def request(
        self, request_type: str, body: object = None, *, within: float | None = None
    ) -> Response:
        """Send a request and return its answer within ``within`` seconds (default ``request_timeout``);
        error codes raise :class:`RequestRejected`."""
        if self._failure is not None:
            raise self._failure
        budget = self.request_timeout if within is None else within
        if not self.connected.is_set():
            try:
                async with asyncio.timeout(budget):
                    await self.connected.wait()
            except TimeoutError:
                raise NetworkError(
                    f"{self._where()}: not connected", hint="the client is reconnecting"
                ) from None
        ws = self._ws
        assert ws is not None
        out = self.protocol.request(request_type, body)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiters[out.id] = future
        from websockets.exceptions import ConnectionClosed

        try:
            await ws.send(out.text)
            async with asyncio.timeout(budget):
                response = await future
        except TimeoutError:
            self.protocol.forget(out.id)
            raise DeadlineExceeded(
                f"{request_type} (request {out.id}) to {self._where()}: no answer within {budget:g} s"
            ) from None
        except ConnectionClosed as exc:
            raise self._closed_error(
                exc.rcvd.code if exc.rcvd else None, "while sending " + request_type
            ) from None
        finally:
            self._waiters.pop(out.id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: a failure set by the reader is raised above or moot
        if not response.ok:
            raise RequestRejected(request_type, response)
        return response

    async def request_conversation(self, body: dict[str, object] | None = None) -> str:
        """``cm.ConsumerRequestConversation``; the new conversation's id."""
        response = await self.request(REQUEST_CONVERSATION, body)
        return parse_body(
            RequestConversationResponse, response.body, what=REQUEST_CONVERSATION
        ).conversationId

    async def subscribe(self, conv_state: Sequence[str] = ("OPEN",)) -> str:
        """``cqm.SubscribeExConversations``; the subscription id. Renewed after every reconnect."""
        body: dict[str, list[str]] = {"convState": list(conv_state)}
        response = await self.request(SUBSCRIBE_EX_CONVERSATIONS, body)
        parsed = parse_body(SubscribeExConversationsResponse, response.body, what=SUBSCRIBE_EX_CONVERSATIONS)
        self._subscription = body
        self.subscription_id = parsed.subscriptionId
        self._state_changed()
        return parsed.subscriptionId

    async def get_clock(self) -> int:
        """``GetClock``: the server's time in epoch ms."""
        response = await self.request(GET_CLOCK)
        body = response.body if isinstance(response.body, dict) else {}
        value = body.get("currentTime")
        if not isinstance(value, int):
            raise RemoteProtocolError(f"GetClock answer without an integer currentTime: {body!r}")
        return value

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> None:
        """Wait until ``predicate()`` holds; it is checked whenever the connection state changes
        (connected, dropped, reconnected, subscribed). :class:`DeadlineExceeded` after ``within`` s."""
        try:
            async with self._state:
                async with asyncio.timeout(within):
                    await self._state.wait_for(predicate)
        except TimeoutError:
            raise DeadlineExceeded(f"{self._where()}: state not reached within {within:g} s") from None

    def _state_changed(self) -> None:
        async def notify() -> None:
            async with self._state:
                self._state.notify_all()

        task = asyncio.get_running_loop().create_task(notify())
        self._notifiers.add(task)
        task.add_done_callback(self._notifiers.discard)

    def accepted(self, dialog_id: str) -> None:
        """Tell the tracker the consumer accepted this invitation (it published ``cobrowseAccepted``)."""
        self.tracker.accepted(dialog_id)

    def declined(self, dialog_id: str) -> None:
        """Tell the tracker the consumer declined this invitation (it published ``cobrowseDeclined``)."""
        self.tracker.declined(dialog_id)

    async def events(self) -> AsyncIterator[TrackerEvent]:
        """The tracker's events, in order, until the client is closed; a fatal error is raised."""
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                self._queue.put_nowait(item)
                return
            if isinstance(item, CallopsError):
                self._queue.put_nowait(_END)
                raise item
            yield item

    async def next_event(self, within: float | None = None) -> TrackerEvent:
        """The next tracker event; :class:`DeadlineExceeded` after ``within`` seconds."""
        budget = self.request_timeout if within is None else within
        try:
            async with asyncio.timeout(budget):
                item = await self._queue.get()
        except TimeoutError:
            raise DeadlineExceeded(f"no invitation event within {budget:g} s") from None
        if isinstance(item, _End):
            self._queue.put_nowait(item)
            raise NetworkError(f"{self._where()}: the client is closed")
        if isinstance(item, CallopsError):
            self._queue.put_nowait(_END)
            raise item
        return item

    async def close(self) -> None:
        """Close the connection and stop every task; idempotent."""
        self._closing = True
        self.connected.clear()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # bounded: a task that swallowed its cancellation must not hang close()
            done, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.debug("%s: task %s ended with %r", self._where(), task.get_name(), task.exception())
            for task in pending:
                log.warning("%s: task %s did not stop within 5 s", self._where(), task.get_name())
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await ws.close()
        self._fail_waiters(NetworkError(f"{self._where()}: client closed"))
        self._queue.put_nowait(_END)

    #: what ``async with`` does on entry and on exit (:class:`~callops.lifecycle.AsyncStartStop`)
    start = connect
    stop = close

    # --- the connection --------------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        """Connect and initialise; errors translated into callops errors."""
        ws = await self._connect()
        await self._initialise(ws)
        log.info("connected to %s (features %s)", self._where(), ",".join(self.protocol.features))
        self.connected.set()
        self._state_changed()
        return ws

    async def _connect(self) -> ClientConnection:
        """The websocket handshake; websockets' and the OS's errors translated into callops errors."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

        where = self._where()
        try:
            ws = await connect(
                self.url,
                open_timeout=self.open_timeout,
                ping_interval=None,
                max_size=MAX_FRAME_BYTES,
                close_timeout=5.0,
                logger=RedactedFrameLog(logging.getLogger("callops.consumer.wire"), [self._jwt]),
            )
        except InvalidURI as exc:
            raise UsageError(f"consumer URL {self.url!r} is invalid: {exc}") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthenticationError(
                    f"{where}: handshake rejected with HTTP {status}", hint="check the JWT and the account id"
                ) from None
            raise NetworkError(
                f"{where}: handshake rejected with HTTP {status}", hint="check the URL"
            ) from None
        except InvalidHandshake as exc:
            raise RemoteProtocolError(f"{where}: websocket handshake failed: {exc}") from None
        except TimeoutError:
            raise DeadlineExceeded(
                f"{where}: no websocket handshake within {self.open_timeout:g} s", hint="is the server up?"
            ) from None
        except ConnectionRefusedError:
            raise NetworkError(
                f"{where}: connection refused", hint="is the server listening on that port?"
            ) from None
        except socket.gaierror as exc:
            raise NetworkError(
                f"{where}: cannot resolve the host name: {exc.strerror or exc}",
                hint="check the host in the URL",
            ) from None
        except OSError as exc:
            raise NetworkError(
                f"{where}: cannot connect: {exc.strerror or exc}", hint="check the URL and the network path"
            ) from None
        return ws

    async def _initialise(self, ws: ClientConnection) -> None:
        """InitConnection and its code 200; the connection is closed when it fails."""
        from websockets.exceptions import ConnectionClosed

        where = self._where()
        init = self.protocol.connection_made()
        try:
            await ws.send(init.text)
            async with asyncio.timeout(self.request_timeout):
                response = await self._await_init(ws, init.id)
        except TimeoutError:
            await ws.close()
            raise DeadlineExceeded(
                f"{where}: no InitConnection answer within {self.request_timeout:g} s"
            ) from None
        except ConnectionClosed as exc:
            raise self._closed_error(exc.rcvd.code if exc.rcvd else None, "during InitConnection") from None
        if not response.ok:
            await ws.close()
            if response.code in (401, 403):
                raise AuthenticationError(
                    f"{where}: InitConnection rejected with code {response.code}", hint="check the JWT"
                )
            raise RequestRejected(INIT_CONNECTION, response)

    async def _await_init(self, ws: ClientConnection, init_id: str) -> Response:
        while True:
            data = await ws.recv()
            events = self._handle(data)
            for event in events:
                if isinstance(event, ResponseReceived) and event.response.reqId == init_id:
                    return event.response

    def _handle(self, data: str | bytes) -> list[ProtocolEvent]:
        """Feed one frame to the protocol and dispatch what comes out; bad input is logged, not fatal."""
        try:
            events = self.protocol.receive(data, self._clock())
        except ProtocolError as exc:
            message = redact(str(exc), [self._jwt])
            log.warning("%s: %s (frame skipped)", self._where(), message)
            self.problems.append(message)
            return []
        for event in events:
            if isinstance(event, ResponseReceived):
                self._deadline_changed.set()  # an InitConnection or keep-alive answer moves the keep-alive
                future = self._waiters.get(event.response.reqId)
                if future is not None and not future.done():
                    future.set_result(event.response)
            elif isinstance(event, NotificationReceived):
                log.debug("notification %s ignored", event.notification.type)
            else:
                self._emit(event)
        return events

    def _emit(self, event: TrackerEvent) -> None:
        log.info("%s", event)
        self._queue.put_nowait(event)
        self._deadline_changed.set()

    async def _supervise(self) -> None:
        """Read frames; when the connection drops, do what :meth:`ConsumerProtocol.on_close` decides."""
        from websockets.exceptions import ConnectionClosed

        while True:
            ws = self._ws
            assert ws is not None
            with contextlib.suppress(ConnectionClosed):
                async for data in ws:
                    self._handle(data)
            code = ws.close_code
            self.connected.clear()
            self._state_changed()
            self.protocol.connection_lost()
            if self._closing:
                return
            error = self._closed_error(code, "")
            self._fail_waiters(error)
            try:
                self._ws = await self._after_close(code, error)
            except CallopsError as exc:
                self._fail(exc)
                return
            self.reconnects += 1
            self._state_changed()
            if self._subscription is not None:
                self._tasks.append(asyncio.create_task(self._resubscribe(), name="consumer-resubscribe"))

    async def _after_close(self, code: int | None, error: CallopsError) -> ClientConnection:
        """A new connection as the protocol decides, or the error that ends the client."""
        decision = self.protocol.on_close(code, self._clock())
        if decision is CloseDecision.RECONNECT:
            log.warning("%s: connection closed (code %s); reconnecting", self._where(), code)
            return await self._reconnect()
        if isinstance(error, TokenRejected) and decision is CloseDecision.RENEW:
            return await self._reopen_with_fresh_identity(error)
        if isinstance(error, TokenRejected) and decision is CloseDecision.REPEATED:
            raise self._repeated(error)
        raise error

    async def _reconnect(self) -> ClientConnection:
        attempts = 0
        last: CallopsError | None = None
        for delay in self.protocol.reconnect_delays():
            attempts += 1
            await asyncio.sleep(delay)
            try:
                return await self._open_renewing()
            except AuthenticationError:
                raise
            except CallopsError as exc:
                last = exc
                log.warning("%s: reconnect attempt %d failed: %s", self._where(), attempts, exc)
        raise NetworkError(
            f"{self._where()}: gave up after {attempts} reconnect attempts"
            + (f" (last: {last.message})" if last else "")
        )

    # --- identity renewal (unauthenticated consumers) -------------------------------------------

    async def _open_renewing(self) -> ClientConnection:
        """:meth:`_open`; a renewable identity rejected with 4401/4407 is renewed once and tried again."""
        try:
            return await self._open()
        except TokenRejected as exc:
            decision = self.protocol.on_close(exc.code, self._clock())
            if decision is CloseDecision.REPEATED:
                raise self._repeated(exc) from None
            if decision is not CloseDecision.RENEW:
                raise
            await self._renew_identity(exc)
        try:
            return await self._open()
        except TokenRejected as again:
            raise self._repeated(again) from None

    async def _reopen_with_fresh_identity(self, error: TokenRejected) -> ClientConnection:
        """A live connection was closed with 4401/4407: a fresh identity, one immediate reconnect
        (then the usual back-off if that attempt fails for a network reason)."""
        await self._renew_identity(error)
        try:
            return await self._open()
        except TokenRejected as again:
            raise self._repeated(again) from None
        except AuthenticationError:
            raise
        except CallopsError as exc:
            if not self.protocol.policy.reconnect:
                raise
            log.warning("%s: reconnect with the fresh identity failed: %s", self._where(), exc)
            return await self._reconnect()

    async def _renew_identity(self, error: TokenRejected) -> None:
        assert self.identity is not None
        old = self.consumer_id
        log.warning(
            "%s: closed with %d (%s); getting a fresh identity from the IDP",
            self._where(),
            error.code,
            _CLOSE_MEANING[error.code],
        )
        fresh = await self.identity.renew()
        self._jwt = fresh
        self.protocol.set_jwt(fresh, now=self._clock())
        self.renewals += 1
        log.info("consumer identity renewed: %s -> %s", old, self.consumer_id)

    def _repeated(self, error: TokenRejected) -> TokenRejected:
        return TokenRejected(
            f"{self._where()}: closed with {error.code} again, with a fresh identity from the IDP:"
            f" {_CLOSE_MEANING[error.code]}. {token_problem(self._jwt, self.account, now=self._clock())}",
            code=error.code,
            hint="not retried again: check --account (and --csds), and this machine's clock",
        )

    async def _resubscribe(self) -> None:
        body = self._subscription or {"convState": ["OPEN"]}
        try:
            await self.subscribe(body.get("convState", ["OPEN"]))
            log.info("%s: subscribed again (%s)", self._where(), self.subscription_id)
        except CallopsError as exc:
            log.warning("%s: subscribing again failed: %s", self._where(), exc)

    async def _timers(self) -> None:
        """Run :meth:`ConsumerProtocol.on_timer` at the protocol's next deadline; carry out what it asks."""
        while True:
            self._deadline_changed.clear()
            deadline = self.protocol.next_deadline()
            if deadline is None:
                await self._deadline_changed.wait()
                continue
            delay = deadline - self._clock()
            if delay > 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # races with the event being set, and close() would then wait forever
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._deadline_changed.wait()
                continue
            for action in self.protocol.on_timer(self._clock()):
                await self._carry_out(action)

    async def _carry_out(self, action: TimerAction) -> None:
        from websockets.exceptions import ConnectionClosed

        ws = self._ws
        if isinstance(action, OutgoingRequest):
            if ws is not None:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(action.text)
        elif isinstance(action, DropConnection):
            log.warning("%s: keep-alive unanswered; dropping the connection", self._where())
            if ws is not None:
                await ws.close(code=action.code, reason=action.reason)
        else:
            self._emit(action)

    # --- errors ----------------------------------------------------------------------------

    def _where(self) -> str:
        # scheme://host only: the path carries the account id, which warnings and errors leave out
        parts = urlsplit(self.url)
        return f"consumer websocket {parts.scheme}://{parts.netloc}"

    def _closed_error(self, code: int | None, during: str) -> CallopsError:
        suffix = f" {during}" if during else ""
        if code in AUTH_CLOSE_CODES:
            renewable = self.protocol.may_renew(code)
            return TokenRejected(
                f"{self._where()}: closed with {code}{suffix}: {_CLOSE_MEANING[code]}."
                f" {token_problem(self._jwt, self.account, now=self._clock())}",
                code=code,
                hint=None
                if renewable
                else "get a fresh JWT (check its exp, its signature and the account id); not retried",
            )
        return NetworkError(f"{self._where()}: connection closed (code {code}){suffix}")

    def _fail_waiters(self, error: CallopsError) -> None:
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(error)
        self._waiters.clear()

    def _fail(self, error: CallopsError) -> None:
        log.error("%s", error)
        self._failure = error
        self._queue.put_nowait(error)


#: with the protocol's names that were importable from here before it had its own module
__all__ = [
    "ConsumerClient",
    "ConsumerProtocol",
    "NotificationReceived",
    "PolicyOptions",
    "RequestRejected",
    "ResponseReceived",
    "TokenRejected",
    "backoff_delays",
    "consumer_url",
    "jwt_subject",
]
