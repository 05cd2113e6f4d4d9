"""The connection decisions of the sans-I/O ``ConsumerProtocol``: keep-alive, close, back-off.

No event loop and no clock: time is passed in, as the asyncio adapter does.
"""

from __future__ import annotations

import json

from callops.consumer.protocol import (
    RENEW_HOLDOFF,
    CloseDecision,
    ConnectionPolicy,
    ConsumerProtocol,
    DropConnection,
    OutgoingRequest,
)
from callops.secret import Secret


def _connected(policy: ConnectionPolicy, now: float = 100.0) -> ConsumerProtocol:
    protocol = ConsumerProtocol(Secret("not-a-jwt"), policy=policy, rng=lambda: 1.0)
    init = protocol.connection_made()
    protocol.receive(json.dumps({"kind": "resp", "reqId": init.id, "code": 200}), now)
    return protocol


def test_keepalive_is_due_an_interval_after_the_init_answer_and_after_each_answer() -> None:
    protocol = _connected(ConnectionPolicy(keepalive_interval=30, keepalive_timeout=10))
    assert protocol.next_deadline() == 130
    assert protocol.on_timer(129.9) == []
    [ping] = protocol.on_timer(130)
    assert isinstance(ping, OutgoingRequest) and ping.type == "GetClock"
    assert protocol.next_deadline() == 140  # the answer's deadline
    protocol.receive(json.dumps({"kind": "resp", "reqId": ping.id, "code": 200, "body": {}}), 131)
    assert protocol.next_deadline() == 161
    assert protocol.on_timer(150) == []


def test_an_unanswered_keepalive_drops_the_connection_once() -> None:
    protocol = _connected(ConnectionPolicy(keepalive_interval=30, keepalive_timeout=10))
    [ping] = protocol.on_timer(130)
    assert isinstance(ping, OutgoingRequest)
    assert protocol.on_timer(140) == [DropConnection(4000, "keep-alive timeout")]
    assert protocol.next_deadline() is None
    # the late answer is for a forgotten request
    assert ping.id not in protocol.connection_lost()


def test_no_keepalive_before_the_init_answer_or_after_the_connection_is_lost() -> None:
    protocol = ConsumerProtocol(Secret("not-a-jwt"))
    protocol.connection_made()
    assert protocol.next_deadline() is None
    connected = _connected(ConnectionPolicy())
    connected.connection_lost()
    assert connected.next_deadline() is None and connected.on_timer(10_000) == []


def test_close_codes_decide_between_renewal_reconnect_and_failure() -> None:
    renewable = _connected(ConnectionPolicy(renewable=True))
    assert renewable.on_close(1006, 0) is CloseDecision.RECONNECT
    assert renewable.on_close(None, 0) is CloseDecision.RECONNECT
    assert renewable.on_close(4401, 0) is CloseDecision.RENEW
    assert renewable.on_close(4407, 0) is CloseDecision.RENEW
    assert renewable.on_close(1011, 0) is CloseDecision.FAIL
    fixed = _connected(ConnectionPolicy(renewable=False, reconnect=False))
    assert fixed.on_close(4401, 0) is CloseDecision.FAIL
    assert fixed.on_close(1006, 0) is CloseDecision.FAIL


def test_a_rejection_right_after_a_renewal_is_a_repeat() -> None:
    protocol = _connected(ConnectionPolicy(renewable=True))
    protocol.set_jwt(Secret("fresh"), now=1000.0)
    assert protocol.on_close(4401, 1000.0 + RENEW_HOLDOFF - 0.1) is CloseDecision.REPEATED
    assert protocol.on_close(4401, 1000.0 + RENEW_HOLDOFF) is CloseDecision.RENEW


def test_reconnect_delays_back_off_up_to_the_attempt_limit() -> None:
    policy = ConnectionPolicy(backoff_initial=1, backoff_max=4, backoff_factor=2, max_reconnect_attempts=5)
    assert list(_connected(policy).reconnect_delays()) == [1, 2, 4, 4, 4]
    unlimited = _connected(ConnectionPolicy(max_reconnect_attempts=None)).reconnect_delays()
    assert len([next(unlimited) for _ in range(50)]) == 50
