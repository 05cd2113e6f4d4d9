"""The agent control API: HTTP JSON on the emulator's port, and :class:`ControlClient` to drive it.

Routes (docs/emulator.md has examples):

- ``POST /control/accounts/{account}/conversations/{conversationId}/call`` with
  ``{"mode":"VOICE_CALL"|"VIDEO_CALL"}`` -> 201 :class:`Invitation`; subscribers get an UPSERT
  with the COBROWSE dialog (sessionState INVITED).
- ``DELETE`` on the same path -> 200: the agent cancels the invitation or hangs up (CLOSED update).
- ``GET /control/accounts/{account}/conversations`` -> 200 :class:`ConversationList`.
- ``GET /healthz`` -> 200 ``{"status":"ok"}``.

Errors: ``{"code","title","details"}`` with 400 (bad body, naming the field), 404 (unknown
route/conversation), 405 (wrong method), 409 (a call is already live, none to end, the consumer did
not list CO_BROWSE), 411/413/431 (size limits).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from callops.consumer.models import CallMode, describe_validation_error
from callops.errors import CallopsError, DeadlineExceeded, NetworkError, RemoteProtocolError, UsageError
from callops.orchestrator.emulator.http11 import HttpError, HttpRequest, error_body
from callops.orchestrator.emulator.model import Delivery, EmulatorModel, ModelError


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

    __slots__ = ("body", "deliveries", "expires", "status")

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


def handle_control(model: EmulatorModel, request: HttpRequest, now: float) -> ControlAnswer:
    """Route one control API request (pure: the model changes, frames are returned)."""
    parts = [p for p in request.path.split("/") if p]
    try:
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
        return ControlAnswer(exc.status, error_body(exc.status, exc.details))
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
    """Async client of the control API (stdlib only: HTTP/1.1 over asyncio streams)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise UsageError(
                f"control URL {base_url!r} must look like http://HOST:PORT",
                hint="use the base URL printed by `callops emulator serve`",
            )
        self.base_url = base_url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout

    async def invite(self, account: str, conversation_id: str, mode: CallMode | str) -> Invitation:
        """The agent invites the conversation's consumer to a call."""
        try:
            body = CallRequest(mode=CallMode(mode))
        except ValueError:
            raise UsageError(f"mode {mode!r} must be VOICE_CALL or VIDEO_CALL") from None
        path = _call_path(account, conversation_id)
        data = await self.request("POST", path, body.model_dump(mode="json"))
        return Invitation.model_validate(data)

    async def end_call(self, account: str, conversation_id: str) -> CallInfo:
        """The agent cancels the invitation or hangs up."""
        path = _call_path(account, conversation_id)
        return CallInfo.model_validate(await self.request("DELETE", path))

    async def conversations(self, account: str) -> list[ConversationInfo]:
        path = f"/control/accounts/{quote(account, safe='')}/conversations"
        return ConversationList.model_validate(await self.request("GET", path)).conversations

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the JSON answer of a 2xx, else :class:`ControlError`."""
        where = f"emulator control {self.host}:{self.port}"
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode("latin-1")
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(head + payload)
                    await writer.drain()
                    raw = await reader.read(-1)
                finally:
                    writer.close()
        except TimeoutError:
            raise DeadlineExceeded(f"{where}: no answer within {self.timeout:g} s") from None
        except ConnectionRefusedError:
            raise NetworkError(
                f"{where}: connection refused", hint="is `callops emulator serve` running on that port?"
            ) from None
        except OSError as exc:
            raise NetworkError(f"{where}: {exc.strerror or exc.__class__.__name__}") from None
        return _parse_answer(raw, where)


def _call_path(account: str, conversation_id: str) -> str:
    return f"/control/accounts/{quote(account, safe='')}/conversations/{quote(conversation_id, safe='')}/call"


def _parse_answer(raw: bytes, where: str) -> Any:
    head, sep, content = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if not sep or len(parts) < 2 or not parts[1].isdigit():
        raise RemoteProtocolError(f"{where}: malformed HTTP answer {status_line[:80]!r}")
    status = int(parts[1])
    try:
        data = json.loads(content) if content else None
    except ValueError:
        raise RemoteProtocolError(f"{where}: answer {status} is not JSON") from None
    if 200 <= status < 300:
        return data
    title = data.get("title", "") if isinstance(data, dict) else ""
    details = data.get("details", "") if isinstance(data, dict) else ""
    if status >= 500:
        raise CallopsError(f"{where}: {status} {title}: {details}")
    hint = {
        404: "list the account's conversations with GET /control/accounts/ACCOUNT/conversations "
        "(a consumer creates one with cm.ConsumerRequestConversation)",
        409: "see the call state with GET /control/accounts/ACCOUNT/conversations",
    }.get(status)
    raise ControlError(status, str(title), str(details), where=where, hint=hint)


__all__ = [
    "CallInfo",
    "CallRequest",
    "ControlAnswer",
    "ControlClient",
    "ControlError",
    "ConversationInfo",
    "ConversationList",
    "Invitation",
    "handle_control",
]
