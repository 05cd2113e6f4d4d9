"""Fuzz: STUN/TURN answers -- aioice's codec, our attribute handling, the UDP client and TURN receiver.

Each input ends as a valid result or a clear callops error (:class:`MalformedStun`,
:class:`RemoteProtocolError`), never another exception -- in particular never ``struct.error``
escaping from aioice into asyncio, which would print a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from aioice import stun
from hypothesis import given, settings
from hypothesis import strategies as st

from callops.errors import CallopsError, RemoteProtocolError
from callops.testing import fuzz_examples
from callops.turn.allocation import _UdpProtocol
from callops.turn.nat_behaviour import alternate_refusal
from callops.turn.stun import MalformedStun, StunUdpClient, error_code, mapped_address, parse_stun

TXID = bytes(range(12))
SERVER = ("127.0.0.1", 3478)
KNOWN_TYPES = sorted(stun.ATTRIBUTES_BY_TYPE)


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) % 4)


#: an attribute of a known type (or any type) whose value is arbitrary or near-valid
attributes = st.tuples(
    st.one_of(st.sampled_from(KNOWN_TYPES), st.integers(0, 0xFFFF)),
    st.one_of(
        st.binary(max_size=40),
        # an address attribute: reserved byte, family 0..3, port, 4 or 16 address bytes
        st.builds(
            lambda family, port, addr: bytes([0, family]) + struct.pack("!H", port) + addr,
            st.integers(0, 3),
            st.integers(0, 0xFFFF),
            st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)),
        ),
        # an ERROR-CODE: reserved, class, number, reason (maybe not UTF-8)
        st.builds(
            lambda c, n, reason: bytes([0, 0, c, n]) + reason,
            st.integers(0, 255),
            st.integers(0, 255),
            st.binary(max_size=20),
        ),
    ),
)


METHODS = st.sampled_from([0x001, 0x003, 0x004, 0x008, 0x009, 0x00A])
CLASSES = st.sampled_from([0x000, 0x010, 0x100, 0x110])
BODIES = st.lists(attributes, max_size=6)
LENGTHS = st.one_of(st.none(), st.integers(0, 0xFFFF))
TXIDS = st.one_of(st.just(TXID), st.binary(min_size=12, max_size=12))


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    """A datagram that looks like an answer to our transaction: valid header, fuzzed body."""
    method, klass = draw(METHODS), draw(CLASSES)
    body = b"".join(_attribute(k, v) for k, v in draw(BODIES))
    length = draw(LENGTHS)
    txid = draw(TXIDS)
    return (
        struct.pack("!HHI12s", method | klass, len(body) if length is None else length, stun.COOKIE, txid)
        + body
    )


def _use(message: stun.Message) -> None:
    """What callops reads from an answer: the mapped address, the error, OTHER-ADDRESS."""
    mapped_address(message)
    if message.message_class == stun.Class.ERROR:
        _code, reason = error_code(message)
        assert reason.isprintable()
    other = message.attributes.get("OTHER-ADDRESS")
    if other:
        alternate_refusal(SERVER, (str(other[0]), int(other[1])))


@settings(max_examples=fuzz_examples(1000))
@given(st.one_of(st.binary(max_size=120), answers()))
def test_parse_stun_gives_a_message_or_malformed_stun(data: bytes) -> None:
    with contextlib.suppress(ValueError):  # aioice's own parser, as its ICE and TURN receivers call it
        stun.parse_message(data)
    try:
        message = parse_stun(data)
    except MalformedStun as exc:
        assert str(exc)
        return
    _use(message)


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def client(loop: asyncio.AbstractEventLoop) -> Iterator[StunUdpClient]:
    async def make() -> StunUdpClient:
        return StunUdpClient()

    made = loop.run_until_complete(make())
    yield made


@settings(max_examples=fuzz_examples(800))
@given(answers())
def test_the_udp_client_turns_every_answer_into_a_result_or_a_protocol_error(
    loop: asyncio.AbstractEventLoop, client: StunUdpClient, data: bytes
) -> None:
    async def scenario() -> None:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id=TXID)
        transaction = stun.Transaction(request, SERVER, client)
        problem: asyncio.Future[BaseException] = loop.create_future()
        client.transactions[TXID] = transaction
        client.problems[TXID] = problem
        client.methods[TXID] = stun.Method.BINDING
        task = asyncio.ensure_future(transaction.run())
        try:
            await asyncio.sleep(0)  # the transaction starts (its send goes nowhere: no transport)
            client.datagram_received(data, SERVER)
            await asyncio.sleep(0)
            if problem.done():
                assert isinstance(problem.result(), RemoteProtocolError)
            if task.done():
                exc = task.exception()
                if exc is None:
                    _use(task.result()[0])
                else:
                    assert isinstance(exc, stun.TransactionFailed)
                    error_code(exc.response)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            client.transactions.pop(TXID, None)
            client.problems.pop(TXID, None)
            client.methods.pop(TXID, None)

    loop.run_until_complete(scenario())


@settings(max_examples=fuzz_examples(600))
@given(st.one_of(answers(), st.binary(max_size=80)))
def test_the_turn_receiver_never_lets_a_parser_error_escape(
    loop: asyncio.AbstractEventLoop, data: bytes
) -> None:
    async def make() -> _UdpProtocol:
        protocol = _UdpProtocol(SERVER, username="u", password="p", lifetime=600, channel_refresh_time=500)
        protocol.failure = loop.create_future()
        request = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST, transaction_id=TXID)
        protocol.transactions[TXID] = stun.Transaction(request, SERVER, protocol)
        return protocol

    protocol = loop.run_until_complete(make())
    received: list[tuple[bytes, Any]] = []
    protocol.on_data = lambda payload, peer: received.append((payload, peer))
    protocol.datagram_received(data, SERVER)
    if protocol.failure.done():
        assert isinstance(protocol.failure.result(), CallopsError)
