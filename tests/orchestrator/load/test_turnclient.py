"""The sans-I/O TURN client of the load generator: the 401 round, errors, retransmissions, refreshes."""

from __future__ import annotations

from aioice import stun

from callops.orchestrator.load.turnclient import MAX_SENDS, TurnClient


def _answer(request: bytes, klass: stun.Class, **attributes: object) -> stun.Message:
    parsed = stun.parse_message(request)
    return stun.Message(
        message_method=parsed.message_method,
        message_class=klass,
        transaction_id=parsed.transaction_id,
        attributes=dict(attributes),
    )


def _allocated(client: TurnClient, now: float = 0.0) -> None:
    client.allocate(now)
    (first,) = client.data_to_send()
    client.receive(
        _answer(
            first, stun.Class.ERROR, **{"ERROR-CODE": (401, "Unauthorized"), "REALM": "r", "NONCE": b"n1"}
        ),
        now,
    )
    (second,) = client.data_to_send()
    request = stun.parse_message(second)
    assert request.attributes["USERNAME"] == "u" and "MESSAGE-INTEGRITY" in request.attributes
    client.receive(
        _answer(
            second,
            stun.Class.RESPONSE,
            **{
                "XOR-RELAYED-ADDRESS": ("127.0.0.1", 50000),
                "XOR-MAPPED-ADDRESS": ("127.0.0.1", 40000),
                "LIFETIME": 600,
            },
        ),
        now + 0.01,
    )


def test_allocate_answers_the_401_round_then_binds_a_channel() -> None:
    client = TurnClient("u", "p", stream=False)
    _allocated(client)
    assert client.state == "allocated" and client.relayed == ("127.0.0.1", 50000)
    assert [e.kind for e in client.events()] == ["allocated"]
    client.bind(("127.0.0.1", 50001), 0x4000, 1.0)
    (bind,) = client.data_to_send()
    assert stun.parse_message(bind).attributes["CHANNEL-NUMBER"] == 0x4000
    client.receive(_answer(bind, stun.Class.RESPONSE), 1.01)
    assert client.state == "ready" and [e.kind for e in client.events()] == ["bound"]


def test_refreshes_and_rebinds_come_due_while_the_call_runs() -> None:
    client = TurnClient("u", "p", stream=False, refresh_s=100, rebind_s=60)
    _allocated(client)
    client.bind(("127.0.0.1", 50001), 0x4000, 0.0)
    client.receive(_answer(client.data_to_send()[0], stun.Class.RESPONSE), 0.0)
    client.poll(59.0)
    assert client.data_to_send() == []
    client.poll(60.5)
    (rebind,) = client.data_to_send()
    assert stun.parse_message(rebind).message_method == stun.Method.CHANNEL_BIND
    client.receive(_answer(rebind, stun.Class.RESPONSE), 60.6)
    client.poll(100.5)
    (refresh,) = client.data_to_send()
    assert stun.parse_message(refresh).attributes["LIFETIME"] == 600
    client.receive(_answer(refresh, stun.Class.RESPONSE), 100.6)
    assert (client.refreshes, client.rebinds) == (1, 1) and client.state == "ready"


def test_a_quota_error_fails_with_its_code_and_meaning() -> None:
    client = TurnClient("u", "p", stream=False, label="call 1a")
    client.allocate(0.0)
    (first,) = client.data_to_send()
    client.receive(_answer(first, stun.Class.ERROR, **{"ERROR-CODE": (486, "Allocation Quota Reached")}), 0.1)
    (event,) = client.events()
    assert (event.kind, event.code) == ("failed", 486)
    assert event.detail == "call 1a: allocate failed: 486: allocation quota reached for this user"


def test_udp_requests_are_retransmitted_then_given_up() -> None:
    client = TurnClient("u", "p", stream=False)
    client.allocate(0.0)
    first = client.data_to_send()
    now, sends = 0.0, len(first)
    while client.state != "failed" and now < 60:
        now += 0.05
        client.poll(now)
        for message in client.data_to_send():
            assert message == first[0]  # the same transaction, resent
            sends += 1
    assert sends == MAX_SENDS and client.events()[0].detail.startswith("TURN: allocate: no answer within")


def test_stale_nonce_is_retried_with_the_new_nonce() -> None:
    client = TurnClient("u", "p", stream=True)
    _allocated(client)
    client.bind(("127.0.0.1", 50001), 0x4000, 1.0)
    (bind,) = client.data_to_send()
    client.receive(
        _answer(bind, stun.Class.ERROR, **{"ERROR-CODE": (438, "Stale Nonce"), "NONCE": b"n2"}), 1.1
    )
    (again,) = client.data_to_send()
    assert stun.parse_message(again).attributes["NONCE"] == b"n2" and client.state == "binding"


def test_an_allocation_whose_answer_was_lost_is_deleted_and_made_again() -> None:
    client = TurnClient("u", "p", stream=False)
    client.allocate(0.0)
    (first,) = client.data_to_send()
    client.receive(
        _answer(
            first, stun.Class.ERROR, **{"ERROR-CODE": (401, "Unauthorized"), "REALM": "r", "NONCE": b"n"}
        ),
        0.0,
    )
    (allocate,) = client.data_to_send()
    client.poll(0.6)  # no answer yet: retransmitted; the server made the allocation from the first copy
    assert client.data_to_send() == [allocate]
    client.receive(_answer(allocate, stun.Class.ERROR, **{"ERROR-CODE": (437, "Allocation Mismatch")}), 0.7)
    (reset,) = client.data_to_send()
    request = stun.parse_message(reset)
    assert request.message_method == stun.Method.REFRESH and request.attributes["LIFETIME"] == 0
    client.receive(_answer(reset, stun.Class.RESPONSE), 0.8)
    (again,) = client.data_to_send()
    assert stun.parse_message(again).message_method == stun.Method.ALLOCATE
    client.receive(
        _answer(again, stun.Class.RESPONSE, **{"XOR-RELAYED-ADDRESS": ("127.0.0.1", 50002), "LIFETIME": 600}),
        0.9,
    )
    assert client.state == "allocated" and client.recoveries == 1 and client.events()[0].kind == "allocated"
