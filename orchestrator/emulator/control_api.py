"""The agent control API, sans-I/O: its routes, bodies, answers and the client's reading of them.

:func:`handle_control` routes one parsed request (:class:`~.http11.HttpRequest`) against the
:class:`~.model.EmulatorModel` at a given time and returns a :class:`ControlAnswer`: the status,
the JSON body, the websocket frames the request caused and a new invitation's expiry -- the
server (:mod:`.server`) writes the answer, fans the frames out and sets the timer. The client's
side is here too: :func:`call_path` builds its paths, :func:`parse_answer` turns a status and a body
into data or a :mod:`callops.errors` exception, :func:`answer_model` validates the data. The
adapters (:mod:`.server`, :class:`~.control.ControlClient`) only move bytes. Routes, tokens and
statuses: :mod:`.control` and docs/emulator.md.
"""

from __future__ import annotations

import hmac
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from callops.consumer.models import CallMode, decode_json
from callops.errors import AuthenticationError, CallopsError, RemoteProtocolError, UsageError
from callops.orchestrator.emulator.http11 import HttpError, HttpRequest, error_body
from callops.orchestrator.emulator.model import Delivery, EmulatorModel, ModelError
from callops.secret import Secret
from callops.validation import describe_validation_error

#: Environment variable holding the control API's bearer token (instead of --control-token-file).
CONTROL_TOKEN_ENV = "CALLOPS_CONTROL_TOKEN"


class InviteRequest(BaseModel):
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
                    body = InviteRequest.model_validate(raw if raw is not None else {})
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


class ControlError(UsageError):
    """The control API refused a request (4xx): ``status``, ``title``, ``details``."""

    def __init__(self, status: int, title: str, details: str, *, where: str, hint: str | None = None) -> None:
        super().__init__(f"{where}: {status} {title}: {details}", hint=hint)
        self.status = status
        self.title = title
        self.details = details


M = TypeVar("M", bound=BaseModel)


def answer_model(model: type[M], data: object, where: str) -> M:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise RemoteProtocolError(f"{where}: unexpected answer: {describe_validation_error(exc)}") from None


def call_path(account: str, conversation_id: str) -> str:
    return f"/control/accounts/{quote(account, safe='')}/conversations/{quote(conversation_id, safe='')}/call"


def parse_answer(status: int, content: bytes, where: str) -> object:
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
    "ControlAnswer",
    "ControlError",
    "ConversationInfo",
    "ConversationList",
    "Invitation",
    "InviteRequest",
    "answer_model",
    "authorized",
    "call_path",
    "handle_control",
    "parse_answer",
]
