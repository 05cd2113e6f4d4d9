"""The agent control API: HTTP JSON on the emulator's port, and :class:`ControlClient` to drive it.

The API itself -- routing, validation, decisions -- is the sans-I/O core :mod:`.control_api`
(re-exported here); this module is the client's adapter: httpx moves the bytes, its exceptions
become :mod:`callops.errors`.

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
from urllib.parse import quote, urlsplit

import httpx

from callops.consumer.models import CallMode
from callops.errors import DeadlineExceeded, NetworkError, RemoteProtocolError, UsageError
from callops.orchestrator.emulator.control_api import (
    BEARER,
    CONTROL_TOKEN_ENV,
    CallInfo,
    ControlAnswer,
    ControlError,
    ConversationInfo,
    ConversationList,
    Invitation,
    InviteRequest,
    answer_model,
    authorized,
    call_path,
    handle_control,
    parse_answer,
)
from callops.secret import Secret


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
            body = InviteRequest(mode=CallMode(mode))
        except ValueError:
            raise UsageError(f"mode {mode!r} must be VOICE_CALL or VIDEO_CALL") from None
        path = call_path(account, conversation_id)
        data = await self.request("POST", path, body.model_dump(mode="json"))
        return answer_model(Invitation, data, f"emulator control {self.host}:{self.port}")

    async def end_call(self, account: str, conversation_id: str) -> CallInfo:
        """The agent cancels the invitation or hangs up."""
        path = call_path(account, conversation_id)
        return answer_model(
            CallInfo, await self.request("DELETE", path), f"emulator control {self.host}:{self.port}"
        )

    async def conversations(self, account: str) -> list[ConversationInfo]:
        path = f"/control/accounts/{quote(account, safe='')}/conversations"
        where = f"emulator control {self.host}:{self.port}"
        return answer_model(ConversationList, await self.request("GET", path), where).conversations

    async def request(self, method: str, path: str, body: object = None) -> object:
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
        return parse_answer(answer.status_code, answer.content, where)


def _os_error(exc: BaseException) -> OSError | None:
    """The socket error under httpx's ``ConnectError`` (httpx -> httpcore -> anyio -> OSError)."""
    seen: BaseException | None = exc
    for _ in range(8):
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
    return None


__all__ = [
    "BEARER",
    "CONTROL_TOKEN_ENV",
    "CallInfo",
    "ControlAnswer",
    "ControlClient",
    "ControlError",
    "ConversationInfo",
    "ConversationList",
    "Invitation",
    "InviteRequest",
    "authorized",
    "handle_control",
]
