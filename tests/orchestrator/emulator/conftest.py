"""Fixtures of the emulator tests: a raw consumer websocket client over real loopback sockets.

Tests cannot import this module (``--import-mode=importlib``); they take the helpers through
fixtures (``raw_consumer``, ``on_emulator``) and annotate them as ``Any`` or with this module's
classes imported under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from callops.orchestrator.emulator import Emulator, mint_jwt
from callops.testing import run_bounded


def init_connection(jwt: str, features: tuple[str, ...] = ("CO_BROWSE",), req_id: str = "0") -> str:
    """The tutorial's InitConnection request (with the ``kind`` the protocol reference shows)."""
    return json.dumps(
        {
            "kind": "req",
            "id": req_id,
            "type": "InitConnection",
            "headers": [
                {
                    "type": ".ams.headers.ClientProperties",
                    "deviceFamily": "DESKTOP",
                    "os": "WINDOWS",
                    "features": list(features),
                },
                {"type": ".ams.headers.ConsumerAuthentication", "jwt": jwt},
            ],
        }
    )


class RawConsumer:
    """A consumer websocket speaking raw JSON frames; notifications are kept in arrival order."""

    def __init__(self, ws: ClientConnection, consumer_id: str) -> None:
        self.ws = ws
        self.consumer_id = consumer_id
        self.notifications: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = 100

    @classmethod
    async def connect(
        cls,
        url: str,
        consumer_id: str = "consumer-1",
        *,
        features: tuple[str, ...] = ("CO_BROWSE",),
        jwt: str | None = None,
        init: bool = True,
    ) -> RawConsumer:
        ws = await connect(url, max_size=4 * 2**20)
        client = cls(ws, consumer_id)
        if init:
            token = jwt if jwt is not None else mint_jwt(consumer_id, now=time.time())
            await ws.send(init_connection(token, features))
            answer = await client.next_frame()
            assert answer == {"kind": "resp", "reqId": "0", "code": 200, "type": ".ReqBody$StringResp"}, (
                answer
            )
        return client

    async def next_frame(self, wait: float = 10.0) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), wait))
        assert isinstance(frame, dict)
        return frame

    async def request(self, type_: str, body: Any = None, *, wait: float = 10.0) -> dict[str, Any]:
        """Send a request; its answer (notifications that arrive before it are queued)."""
        self._ids += 1
        req_id = str(self._ids)
        frame: dict[str, Any] = {"kind": "req", "id": req_id, "type": type_}
        if body is not None:
            frame["body"] = body
        await self.ws.send(json.dumps(frame))
        return await self.answer(req_id, wait=wait)

    async def answer(self, req_id: str, *, wait: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(wait):
            while True:
                frame = await self.next_frame(wait)
                if frame.get("kind") == "resp" and frame.get("reqId") == req_id:
                    return frame
                self.notifications.put_nowait(frame)

    async def notification(self, wait: float = 10.0) -> dict[str, Any]:
        if not self.notifications.empty():
            return self.notifications.get_nowait()
        frame = await self.next_frame(wait)
        assert frame["kind"] == "notification", frame
        return frame

    async def open_conversation(self) -> tuple[str, str]:
        """Request a conversation and subscribe; ``(conversationId, subscriptionId)``."""
        answer = await self.request("cm.ConsumerRequestConversation")
        assert answer["code"] == 200, answer
        subscribed = await self.request("cqm.SubscribeExConversations", {"convState": ["OPEN"]})
        assert subscribed["code"] == 200, subscribed
        listing = await self.notification()
        assert listing["body"]["subscriptionId"] == subscribed["body"]["subscriptionId"]
        return answer["body"]["conversationId"], subscribed["body"]["subscriptionId"]

    async def close(self) -> None:
        await self.ws.close()


@pytest.fixture
def raw_consumer() -> type[RawConsumer]:
    return RawConsumer


class RawConsumers:
    """Opens :class:`RawConsumer` connections and closes every one of them in :meth:`close_all`."""

    def __init__(self) -> None:
        self.opened: list[RawConsumer] = []

    async def connect(self, url: str, consumer_id: str = "consumer-1") -> RawConsumer:
        consumer = await RawConsumer.connect(url, consumer_id)
        self.opened.append(consumer)
        return consumer

    async def close_all(self) -> None:
        for consumer in self.opened:
            await consumer.close()


class OnEmulator:
    """Runs ``body(emu, consumers)`` against a fresh :class:`Emulator`, bounded by ``within`` seconds;
    the raw consumers the body opens with ``consumers.connect`` are closed after it, even when it fails."""

    def __call__(self, body: Callable[[Emulator, RawConsumers], Awaitable[None]], within: float = 60) -> None:
        async def served() -> None:
            consumers = RawConsumers()
            async with Emulator() as emu:
                try:
                    await body(emu, consumers)
                finally:
                    await consumers.close_all()

        run_bounded(served(), within)


@pytest.fixture
def on_emulator() -> OnEmulator:
    return OnEmulator()


@pytest.fixture
def init_frame() -> Any:
    return init_connection
