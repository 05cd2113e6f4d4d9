"""The agent control API: HTTP JSON on the emulator's port, and :class:`ControlClient` to drive it.

Routes (docs/emulator.md has examples):

- ``POST /control/accounts/{account}/conversations/{conversationId}/call`` with
  ``{"mode":"VOICE_CALL"|"VIDEO_CALL"}`` -> 201 :class:`Invitation`; subscribers get an UPSERT
  with the COBROWSE dialog (sessionState INVITED).
- ``DELETE`` on the same path -> 200: the agent cancels the invitation or hangs up (CLOSED update).
- ``GET /control/accounts/{account}/conversations`` -> 200 :class:`ConversationList`.
- ``GET /healthz`` -> 200 ``{"status":"ok"}``.

With a control token (``EmulatorConfig.control_token``), every route but ``/healthz`` needs
``Authorization: Bearer <token>``; without it, or with another token, the answer is 401.

Errors: ``{"code","title","details"}`` with 400 (bad body, naming the field), 401 (control token
missing or wrong), 404 (unknown
route/conversation), 405 (wrong method), 409 (a call is already live, none to end, the consumer did
not list CO_BROWSE), 411/413/431 (size limits).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from callops.consumer.models import CallMode, decode_json, describe_validation_error
from callops.errors import (
    AuthenticationError,
    CallopsError,
    DeadlineExceeded,
    NetworkError,
    RemoteProtocolError,
    UsageError,
)
from callops.orchestrator.emulator.http11 import HttpError, HttpRequest, error_body
from callops.orchestrator.emulator.model import Delivery, EmulatorModel, ModelError
from callops.secret import Secret

#: Environment variable holding the control API's bearer token (instead of --control-token-file).
CONTROL_TOKEN_ENV = "CALLOPS_CONTROL_TOKEN"


class CallRequest(BaseModel):
    """Body of ``POST .../call``."""

    model_config = ConfigDict(extra="forbid")

    mode: CallMode


class Invitation(BaseModel):
    """Answer of ``POST .../call``: what the agent needs to find the call on the CoBrowse channel."""

    serviceId: str
    dialogId: str
    #: epoch seconds
    expires: float


class CallInfo(BaseModel):
    serviceId: str
    dialogId: str
    mode: str
    sessionState: str
    notificationKey: str | None = None
    expires: float
    closedReason: str | None = None
    agentConnected: bool = False
    consumerConnected: bool = False


class ConversationInfo(BaseModel):
    conversationId: str
    consumerId: str
    agentId: str
    #: OPEN or CLOSE
    state: str
    #: the live call (INVITED or ACCEPTED), if any
    call: CallInfo | None = None
    #: every call of the conversation, oldest first
    calls: list[CallInfo] = []


class ConversationList(BaseModel):
    account: str
    conversations: list[ConversationInfo]


class ControlAnswer:
    """An HTTP status, a JSON body, and the websocket frames the request caused."""

    __slots__ = ("body", "deliveries", "expires", "headers", "status")

    def __init__(
        self,
        status: int,
        body: Any,
        deliveries: list[Delivery] | None = None,
        *,
        expires: float | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.deliveries = deliveries or []
        #: a new invitation's expiry (epoch seconds): the adapter sets a timer for it
        self.expires = expires
        #: extra response headers
        self.headers: dict[str, str] = {}


#: Scheme of the control API's optional bearer token (RFC 6750).
BEARER = "Bearer"


def authorized(request: HttpRequest, token: Secret) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != BEARER.lower():
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.reveal().encode())


def handle_control(
    model: EmulatorModel, request: HttpRequest, now: float, *, token: Secret | None = None
) -> ControlAnswer:
    """Route one control API request (pure: the model changes, frames are returned). With a
    ``token``, every route but ``GET /healthz`` needs ``Authorization: Bearer <token>`` (401)."""
    parts = [p for p in request.path.split("/") if p]
    try:
        if token is not None and parts != ["healthz"] and not authorized(request, token):
            why = "missing" if "authorization" not in request.headers else "wrong"
            raise HttpError(
                401, f"{why} control token: send 'Authorization: Bearer <token>' (--control-token-file)"
            )
        if parts == ["healthz"]:
            _allow(request, "GET")
            return ControlAnswer(200, {"status": "ok"})
        if len(parts) == 4 and parts[:2] == ["control", "accounts"] and parts[3] == "conversations":
            _allow(request, "GET")
            account = parts[2]
            views = [conv.view() for conv in model.conversations(account)]
            return ControlAnswer(200, {"account": account, "conversations": views})
        if (
            len(parts) == 6
            and parts[:2] == ["control", "accounts"]
            and parts[3] == "conversations"
            and parts[5] == "call"
        ):
            _allow(request, "POST", "DELETE")
            account, conversation_id = parts[2], parts[4]
            if request.method == "POST":
                raw = request.json()
                try:
                    body = CallRequest.model_validate(raw if raw is not None else {})
                except PydanticValidationError as exc:
                    raise HttpError(
                        400, f"invalid call request body: {describe_validation_error(exc)}"
                    ) from None
                call, deliveries = model.invite(account, conversation_id, body.mode, now)
                invitation = {
                    "serviceId": call.service_id,
                    "dialogId": call.dialog_id,
                    "expires": call.expires,
                }
                return ControlAnswer(201, invitation, deliveries, expires=call.expires)
            call, deliveries = model.end_call(account, conversation_id, now)
            return ControlAnswer(200, call.view(), deliveries)
        raise HttpError(404, f"no route {request.method} {request.path}")
    except HttpError as exc:
        answer = ControlAnswer(exc.status, error_body(exc.status, exc.details))
        if exc.status == 401:
            answer.headers["WWW-Authenticate"] = f'{BEARER} realm="callops-emulator"'
        return answer
    except ModelError as exc:
        return ControlAnswer(exc.code, {"code": exc.code, "title": exc.title, "details": exc.details})


def _allow(request: HttpRequest, *methods: str) -> None:
    if request.method not in methods:
        raise HttpError(405, f"{request.method} not allowed on {request.path}; use {' or '.join(methods)}")


# --- the client -------------------------------------------------------------------------------------


class ControlError(UsageError):
    """The control API refused a request (4xx): ``status``, ``title``, ``details``."""

    def __init__(self, status: int, title: str, details: str, *, where: str, hint: str | None = None) -> None:
        super().__init__(f"{where}: {status} {title}: {details}", hint=hint)
        self.status = status
        self.title = title
        self.details = details


class ControlClient:
    """Async client of the control API, on httpx (whose HTTP/1.1 codec is h11, as the server's).

    ``async with ControlClient(url) as client`` keeps one httpx client for its requests; used
    without ``async with``, the client is made on the first request and kept for the event loop
    that made it (:meth:`aclose` releases it). httpx's exceptions become :mod:`callops.errors`.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, token: Secret | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise UsageError(
                f"control URL {base_url!r} must look like http://HOST:PORT",
                hint="use the base URL printed by `callops emulator serve`",
            )
        try:
            self.port = parts.port or 80
        except ValueError:
            raise UsageError(
                f"control URL {base_url!r} has a bad port", hint="e.g. http://127.0.0.1:8080"
            ) from None
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.timeout = timeout
        #: the control API's bearer token, if the emulator has one
        self.token = token
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.timeout,
                # never a proxy from the environment: the emulator is addressed directly
                trust_env=False,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            )
            self._loop = loop
        return self._client

    async def invite(self, account: str, conversation_id: str, mode: CallMode | str) -> Invitation:
        """The agent invites the conversation's consumer to a call."""
        try:
            body = CallRequest(mode=CallMode(mode))
        except ValueError:
            raise UsageError(f"mode {mode!r} must be VOICE_CALL or VIDEO_CALL") from None
        path = _call_path(account, conversation_id)
        data = await self.request("POST", path, body.model_dump(mode="json"))
        return _answer_model(Invitation, data, f"emulator control {self.host}:{self.port}")

    async def end_call(self, account: str, conversation_id: str) -> CallInfo:
        """The agent cancels the invitation or hangs up."""
        path = _call_path(account, conversation_id)
        return _answer_model(
            CallInfo, await self.request("DELETE", path), f"emulator control {self.host}:{self.port}"
        )

    async def conversations(self, account: str) -> list[ConversationInfo]:
        path = f"/control/accounts/{quote(account, safe='')}/conversations"
        where = f"emulator control {self.host}:{self.port}"
        return _answer_model(ConversationList, await self.request("GET", path), where).conversations

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the JSON answer of a 2xx, else :class:`ControlError`."""
        where = f"emulator control {self.host}:{self.port}"
        headers = {"Connection": "close"}
        if self.token is not None:
            headers["Authorization"] = f"{BEARER} {self.token.reveal()}"
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._http().request(method, path, json=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise DeadlineExceeded(f"{where}: no answer within {self.timeout:g} s") from None
        except httpx.ConnectError as exc:
            cause = _os_error(exc)
            if isinstance(cause, ConnectionRefusedError):
                raise NetworkError(
                    f"{where}: connection refused", hint="is `callops emulator serve` running on that port?"
                ) from None
            reason = cause.strerror if cause is not None and cause.strerror else str(exc)
            raise NetworkError(f"{where}: cannot connect: {reason}") from None
        except httpx.RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{where}: malformed HTTP answer: {exc}") from None
        except httpx.HTTPError as exc:
            raise NetworkError(f"{where}: {exc.__class__.__name__}: {exc}") from None
        return _parse_answer(answer.status_code, answer.content, where)


def _os_error(exc: BaseException) -> OSError | None:
    """The socket error under httpx's ``ConnectError`` (httpx -> httpcore -> anyio -> OSError)."""
    seen: BaseException | None = exc
    for _ in range(8):
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
    return None


M = TypeVar("M", bound=BaseModel)


def _answer_model(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise RemoteProtocolError(f"{where}: unexpected answer: {describe_validation_error(exc)}") from None


def _call_path(account: str, conversation_id: str) -> str:
    return f"/control/accounts/{quote(account, safe='')}/conversations/{quote(conversation_id, safe='')}/call"


def _parse_answer(status: int, content: bytes, where: str) -> Any:
    try:
        data = decode_json(content) if content else None
    except RemoteProtocolError:
        raise RemoteProtocolError(f"{where}: answer {status} is not JSON") from None
    if 200 <= status < 300:
        return data
    title = data.get("title", "") if isinstance(data, dict) else ""
    details = data.get("details", "") if isinstance(data, dict) else ""
    if status >= 500:
        raise CallopsError(f"{where}: {status} {title}: {details}")
    if status == 401:
        raise AuthenticationError(
            f"{where}: {status} {title}: {details}",
            hint=f"pass the emulator's token with --control-token-file or env {CONTROL_TOKEN_ENV}",
        )
    hint = {
        404: "list the account's conversations with GET /control/accounts/ACCOUNT/conversations "
        "(a consumer creates one with cm.ConsumerRequestConversation)",
        409: "see the call state with GET /control/accounts/ACCOUNT/conversations",
    }.get(status)
    raise ControlError(status, str(title), str(details), where=where, hint=hint)


__all__ = [
    "BEARER",
    "CONTROL_TOKEN_ENV",
    "CallInfo",
    "CallRequest",
    "ControlAnswer",
    "ControlClient",
    "ControlError",
    "ConversationInfo",
    "ConversationList",
    "Invitation",
    "authorized",
    "handle_control",
]
