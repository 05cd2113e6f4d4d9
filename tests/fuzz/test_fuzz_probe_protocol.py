"""Fuzz: the ``probe serve`` signalling protocol, parsed and over a real websocket.

``parse_message`` gives a message or a ``pydantic.ValidationError`` (which both ends translate)
for any text or bytes. Over the wire, a responder on loopback gets each fuzzed frame from an
authenticated peer and must answer with an error message (or close with the documented code for
an oversized or non-UTF-8 frame), stay up, and still answer the same peer's next valid message.
The responder allows 0 sessions, so fuzzed offers never start real ICE: a valid offer is answered
"too many sessions", which doubles as the liveness check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from callops.orchestrator.probe.ice import IceSettings
from callops.orchestrator.probe.paths import MAX_MESSAGE_BYTES, parse_message
from callops.orchestrator.probe.twosite import Responder
from callops.secret import Secret
from callops.testing import fuzz_examples
from callops.turn.coturn import free_port

TOKEN = Secret("fuzz-token-0123456789")
TYPES = [
    "offer",
    "answer",
    "call-request",
    "call-offer",
    "call-answer",
    "call-media",
    "bye",
    "error",
    "x",
    "",
]
FIELDS = ["type", "session", "path", "ufrag", "pwd", "candidates", "sdp", "media", "message"]

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.text(max_size=40),
    st.sampled_from(["host", "srflx", "relay-udp", "1 1 udp 1 127.0.0.1 9 typ host", "x" * 300, "1e400"]),
)
JSON_VALUES = st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=4))
MESSAGES = st.builds(
    lambda kind, fields: json.dumps({"type": kind, **fields}),
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6),
)
DEPTHS = st.integers(1, 50_000)
HOSTILE = st.one_of(
    st.builds(lambda n: "[" * n, DEPTHS),
    st.builds(lambda n: '{"type":"offer","session":"s","candidates":' + "[" * n + "]" * n + "}", DEPTHS),
    st.builds(lambda n: '{"type":"bye","session":' + "9" * n + "}", st.integers(1, 5000)),
    st.just('{"type":"offer","session":NaN}'),
    st.just("\ud800"),
)
FRAMES = st.one_of(MESSAGES, HOSTILE, st.text(max_size=100), st.binary(max_size=100))


@settings(max_examples=fuzz_examples(1000))
@given(st.one_of(MESSAGES, HOSTILE, st.text(max_size=200), st.binary(max_size=200)))
def test_parse_message_gives_a_message_or_a_validation_error(raw: str | bytes) -> None:
    try:
        data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
        parse_message(data)
    except pydantic.ValidationError:
        pass


class _Served:
    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.responder = Responder(TOKEN, IceSettings(host_addresses=["127.0.0.1"]), max_sessions=0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> _Served:
        self.thread.start()
        start = asyncio.run_coroutine_threadsafe(self.responder.start("127.0.0.1", self.port), self.loop)
        self.server = start.result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def connect(self) -> ClientConnection:
        ws = self.stack.enter_context(
            connect(
                f"ws://127.0.0.1:{self.port}",
                additional_headers={"Authorization": f"Bearer {TOKEN.reveal()}"},
                max_size=MAX_MESSAGE_BYTES,
                open_timeout=10,
            )
        )
        return ws


@pytest.fixture(scope="module")
def served() -> Iterator[_Served]:
    with _Served() as running:
        yield running


@pytest.fixture(scope="module")
def peer(served: _Served) -> list[ClientConnection]:
    """The one authenticated peer connection, replaced when the responder closes it."""
    return [served.connect()]


SENTINEL = json.dumps(
    {"type": "offer", "session": "sentinel", "path": "host", "ufrag": "u", "pwd": "p", "candidates": []}
)


def _replies_until_sentinel(ws: ClientConnection) -> list[dict[str, Any]]:
    ws.send(SENTINEL)
    replies: list[dict[str, Any]] = []
    while True:
        reply = json.loads(ws.recv(timeout=10))
        if reply.get("session") == "sentinel":
            assert reply == {"type": "error", "session": "sentinel", "message": "too many sessions"}
            return replies
        replies.append(reply)


@settings(max_examples=fuzz_examples(250))
@given(st.one_of(FRAMES, st.sampled_from([MAX_MESSAGE_BYTES - 64, MAX_MESSAGE_BYTES + 1])))
def test_the_responder_answers_every_frame_and_stays_up(
    served: _Served, peer: list[ClientConnection], frame: str | bytes | int
) -> None:
    if isinstance(frame, int):  # a long frame, built here so that hypothesis does not print it
        frame = '{"type":"bye","session":"' + "x" * (frame - 26) + '"}'
    ws = peer[0]
    try:
        if isinstance(frame, str):
            ws.send(frame.encode("utf-8", errors="surrogatepass"), text=True)
        else:
            ws.send(frame)
        replies = _replies_until_sentinel(ws)
    except ConnectionClosed as closed:
        # only an oversized frame (1009) or a text frame that is not UTF-8 (1007) may end the connection
        code = closed.rcvd.code if closed.rcvd is not None else None
        assert code in (1007, 1009), closed
        ws = peer[0] = served.connect()
        replies = _replies_until_sentinel(ws)
        replies = []
    for reply in replies:
        assert reply["type"] == "error" and reply["message"], reply
    assert served.responder.active == 0
