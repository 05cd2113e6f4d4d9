"""Fixtures of the consumer tests: notification builders shaped like the seed and the protocol reference."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Unpack

import pytest

from callops.consumer.client import ConsumerClient, PolicyOptions
from callops.consumer.identity import IdentitySource
from callops.consumer.models import ExConversationChangeNotification
from callops.secret import Secret
from callops.testing import (
    call_dialog,
    closed_call_dialog,
    conversation_delete,
    conversation_roles,
    conversation_upsert,
    main_dialog,
    run_bounded,
)

CONSUMER = "cc05f2b9-916b-496e-89fe-66a46d975ae2"
AGENT = "le83624296.356285412"
T0 = 1_502_893_041.905  # the seed's creationTs, in seconds


class Wire:
    """Builds ``cqm.ExConversationChangeNotification`` bodies (as dicts and as parsed models)."""

    consumer = CONSUMER
    agent = AGENT
    t0 = T0

    def call_dialog(
        self,
        dialog_id: str,
        state: str = "INVITED",
        *,
        mode: str = "VIDEO_CALL",
        service_id: str | None = None,
        expires: float | None = T0 + 90.0,
        ts: int | None = None,
        created: int = int(T0 * 1000),
        participants: list[Any] | None = None,
    ) -> dict[str, Any]:
        return call_dialog(
            dialog_id,
            state,
            mode=mode,
            service_id=service_id or f"{CONSUMER}#{dialog_id}-svc",
            participants=participants if participants is not None else [CONSUMER, AGENT],
            created_ms=created,
            updated_ms=ts if ts is not None else created,
            expires=expires,
        )

    def closed_dialog(self, dialog_id: str) -> dict[str, Any]:
        """The tutorial's partial CLOSED update."""
        return closed_call_dialog(dialog_id)

    def main_dialog(self, conversation_id: str) -> dict[str, Any]:
        return main_dialog(conversation_id, CONSUMER, AGENT, int(T0 * 1000) - 60_000, int(T0 * 1000) - 60_000)

    def upsert(
        self,
        conversation_id: str,
        *dialogs: dict[str, Any],
        stage: str = "OPEN",
        conversation_participants: list[Any] | None = None,
    ) -> dict[str, Any]:
        return conversation_upsert(
            conversation_id,
            [self.main_dialog(conversation_id), *dialogs],
            participants=conversation_participants
            if conversation_participants is not None
            else conversation_roles(CONSUMER, AGENT),
            start_ms=int(T0 * 1000) - 60_000,
            updated_ms=int(T0 * 1000),
            stage=stage,
            subscription_id="1e25cbe8-sub",
        )

    def delete(self, conversation_id: str) -> dict[str, Any]:
        return conversation_delete(conversation_id, "1e25cbe8-sub")

    def parse(self, body: dict[str, Any]) -> ExConversationChangeNotification:
        return ExConversationChangeNotification.model_validate(body)


@pytest.fixture
def wire() -> Wire:
    return Wire()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(sub: str, *, secret: str | None = None, exp: float | None = None, account: str = "acc") -> str:
    """An HS256 JWT (or an unsigned one without ``secret``) whose ``sub`` is the consumer id."""
    header = {"alg": "HS256" if secret else "none", "typ": "JWT"}
    claims: dict[str, Any] = {"sub": sub, "aud": f"acc:{account}", "iat": int(time.time())}
    claims["exp"] = int(exp if exp is not None else time.time() + 3600)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{_b64(signature)}"


class JwtFactory:
    def __call__(
        self, sub: str, *, secret: str | None = None, exp: float | None = None, account: str = "acc"
    ) -> str:
        return make_jwt(sub, secret=secret, exp=exp, account=account)


@pytest.fixture
def jwt_factory() -> JwtFactory:
    return JwtFactory()


class ClientOptions(PolicyOptions, total=False):
    """The :class:`ConsumerClient` keyword arguments the client tests set (besides its policy)."""

    clock: Callable[[], float]
    request_timeout: float
    identity: IdentitySource


class MiniServer:
    """A tiny Messaging Window API server on loopback, for client tests that need exact control.

    It answers InitConnection (a JWT whose claims contain ``"bad"`` is closed with ``close_code``),
    ``cm.ConsumerRequestConversation``, ``cqm.SubscribeExConversations`` (followed by an empty
    listing), and ``GetClock`` (unless ``answer_clock`` is False). ``push(body)`` sends a
    conversation change notification to every connection; ``drop()`` aborts every connection.
    """

    def __init__(self, *, close_code: int = 4401, answer_clock: bool = True) -> None:

        self.close_code = close_code
        self.answer_clock = answer_clock
        self.connections: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.inits = 0
        self.subscribes = 0
        self.changed = asyncio.Condition()
        self._server: Any = None

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    def client(self, consumer: str = "c", **options: Unpack[ClientOptions]) -> ConsumerClient:
        """A client of this server for account ``acc``, signed in as ``consumer`` (an unsigned JWT)."""
        return ConsumerClient(self.url, "acc", Secret(make_jwt(consumer)), **options)

    async def __aenter__(self) -> MiniServer:
        from websockets.asyncio.server import serve

        self._server = await serve(self._handler, "127.0.0.1", 0, ping_interval=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _note(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Any, within: float = 10.0) -> None:

        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), within)

    async def _handler(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        self.connections.append(ws)
        try:
            async for raw in ws:
                frame = json.loads(raw)
                self.requests.append(frame)
                kind, rid = frame.get("type"), frame.get("id")
                if kind == "InitConnection":
                    jwt = next(
                        h["jwt"] for h in frame["headers"] if h["type"].endswith("ConsumerAuthentication")
                    )
                    claims = base64.urlsafe_b64decode(jwt.split(".")[1] + "==").decode()
                    if "bad" in claims:
                        await ws.close(code=self.close_code, reason="token rejected")
                        return
                    self.inits += 1
                    await ws.send(json.dumps({"kind": "resp", "reqId": rid, "code": 200}))
                elif kind == "cm.ConsumerRequestConversation":
                    await ws.send(
                        json.dumps(
                            {"kind": "resp", "reqId": rid, "code": 200, "body": {"conversationId": "conv-1"}}
                        )
                    )
                elif kind == "cqm.SubscribeExConversations":
                    self.subscribes += 1
                    sub = f"sub-{self.subscribes}"
                    await ws.send(
                        json.dumps(
                            {"kind": "resp", "reqId": rid, "code": 200, "body": {"subscriptionId": sub}}
                        )
                    )
                    await ws.send(
                        json.dumps(
                            {
                                "kind": "notification",
                                "type": "cqm.ExConversationChangeNotification",
                                "body": {"subscriptionId": sub, "changes": []},
                            }
                        )
                    )
                elif kind == "GetClock":
                    if self.answer_clock:
                        await ws.send(
                            json.dumps(
                                {"kind": "resp", "reqId": rid, "code": 200, "body": {"currentTime": 1}}
                            )
                        )
                else:
                    await ws.send(
                        json.dumps(
                            {
                                "kind": "resp",
                                "reqId": rid,
                                "code": 400,
                                "body": {"title": f"unknown type {kind}"},
                            }
                        )
                    )
                await self._note()
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(ws)
            await self._note()

    async def push(self, body: dict[str, Any] | str) -> None:
        text = (
            body
            if isinstance(body, str)
            else json.dumps(
                {"kind": "notification", "type": "cqm.ExConversationChangeNotification", "body": body}
            )
        )
        for ws in list(self.connections):
            await ws.send(text)

    async def close_all(self, code: int, reason: str = "") -> None:
        for ws in list(self.connections):
            await ws.close(code=code, reason=reason)

    def drop(self) -> None:
        for ws in list(self.connections):
            ws.transport.abort()


class OnMiniServer:
    """Runs ``body(server)`` against a fresh :class:`MiniServer`, bounded by ``within`` seconds."""

    def __call__(
        self,
        body: Callable[[MiniServer], Awaitable[None]],
        within: float = 30,
        *,
        close_code: int = 4401,
        answer_clock: bool = True,
    ) -> None:
        async def served() -> None:
            async with MiniServer(close_code=close_code, answer_clock=answer_clock) as server:
                await body(server)

        run_bounded(served(), within)


@pytest.fixture
def on_mini_server() -> OnMiniServer:
    return OnMiniServer()


class CallopsCli:
    """Runs ``python -m callops ARGS`` as a child process with both outputs piped."""

    def env(self, **extra: str) -> dict[str, str]:
        """This environment without the consumer's JWT and CSDS, plus ``extra``."""
        env = {k: v for k, v in os.environ.items() if k not in ("CALLOPS_JWT", "CALLOPS_CSDS")}
        return {**env, **extra}

    @asynccontextmanager
    async def spawn(
        self, *args: str, env: dict[str, str] | None = None
    ) -> AsyncIterator[asyncio.subprocess.Process]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "callops",
            *args,
            env=env if env is not None else self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
            # Drain both pipes to EOF so their transports close before the loop does.
            await asyncio.wait_for(proc.communicate(), 30)

    async def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """Run to the end (60 s at most): exit code, stdout, stderr."""
        async with self.spawn(*args, env=env) as proc:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
def callops_cli() -> CallopsCli:
    return CallopsCli()
