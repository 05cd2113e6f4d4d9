"""The consumer client: its sans-I/O protocol, and the asyncio adapter against a tiny loopback server."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

from callops.consumer.client import (
    ConsumerClient,
    ConsumerProtocol,
    NotificationReceived,
    RequestRejected,
    ResponseReceived,
    backoff_delays,
    consumer_url,
    jwt_subject,
)
from callops.consumer.tracker import CallClosed, CallInvited, CloseReason
from callops.errors import (
    AuthenticationError,
    DeadlineExceeded,
    LocalProtocolError,
    NetworkError,
    RemoteProtocolError,
    UsageError,
)
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.coturn import free_port

if TYPE_CHECKING:
    from tests.consumer.conftest import JwtFactory, MiniServer, OnMiniServer, Wire


# --- sans-I/O ------------------------------------------------------------------------------------


def test_init_connection_is_the_first_request_with_co_browse_and_the_jwt(jwt_factory: JwtFactory) -> None:
    token = jwt_factory("consumer-1")
    protocol = ConsumerProtocol(Secret(token))
    init = protocol.connection_made()
    frame = json.loads(init.text)
    assert frame["id"] == "0" and frame["type"] == "InitConnection" and frame["kind"] == "req"
    props, auth = frame["headers"]
    assert props["type"] == ".ams.headers.ClientProperties" and "CO_BROWSE" in props["features"]
    assert auth == {"type": ".ams.headers.ConsumerAuthentication", "jwt": token}
    assert protocol.tracker.consumer_id == "consumer-1"
    assert token not in repr(protocol.__dict__)


def test_requests_before_the_init_answer_are_refused(jwt_factory: JwtFactory) -> None:
    protocol = ConsumerProtocol(Secret(jwt_factory("c")))
    protocol.connection_made()
    with pytest.raises(LocalProtocolError):
        protocol.request("GetClock")
    [answer] = protocol.receive('{"kind":"resp","reqId":"0","code":200}', 0.0)
    assert isinstance(answer, ResponseReceived) and answer.request_type == "InitConnection"
    assert protocol.request("GetClock").id == "1"


def test_answers_are_matched_to_requests_by_id(jwt_factory: JwtFactory) -> None:
    protocol = ConsumerProtocol(Secret(jwt_factory("c")))
    protocol.connection_made()
    protocol.receive('{"kind":"resp","reqId":"0","code":200}', 0.0)
    a = protocol.request("cm.ConsumerRequestConversation")
    b = protocol.request("GetClock")
    [rb] = protocol.receive(
        json.dumps({"kind": "resp", "reqId": b.id, "code": 200, "body": {"currentTime": 5}}), 0
    )
    [ra] = protocol.receive(json.dumps({"kind": "resp", "reqId": int(a.id), "code": 200}), 0)
    assert isinstance(rb, ResponseReceived) and rb.request_type == "GetClock"
    assert isinstance(ra, ResponseReceived) and ra.request_type == "cm.ConsumerRequestConversation"
    with pytest.raises(RemoteProtocolError, match="unknown request id"):
        protocol.receive(json.dumps({"kind": "resp", "reqId": a.id, "code": 200}), 0)
    assert protocol.connection_lost() == []


def test_change_notifications_go_through_the_tracker(jwt_factory: JwtFactory, wire: Wire) -> None:
    protocol = ConsumerProtocol(Secret(jwt_factory(wire.consumer)))
    body = wire.upsert("conv", wire.call_dialog("d1"))
    frame = {"kind": "notification", "type": "cqm.ExConversationChangeNotification", "body": body}
    [event] = protocol.receive(json.dumps(frame), wire.t0)
    assert isinstance(event, CallInvited) and event.agentId == wire.agent
    [other] = protocol.receive('{"kind":"notification","type":"ms.MessagingEventNotification","body":{}}', 0)
    assert isinstance(other, NotificationReceived)


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        ("{", "not valid JSON"),
        (
            '{"kind":"notification","type":"cqm.ExConversationChangeNotification","body":{"changes":[{}]}}',
            "changes.0",
        ),
        ('{"kind":"notification","type":"cqm.ExConversationChangeNotification","body":[1]}', "invalid"),
        ('{"kind":"req","id":"1","type":"Evil"}', "request"),
    ],
)
def test_malformed_frames_are_clear_remote_protocol_errors(
    jwt_factory: JwtFactory, frame: str, needle: str
) -> None:
    protocol = ConsumerProtocol(Secret(jwt_factory("c")))
    with pytest.raises(RemoteProtocolError, match=needle):
        protocol.receive(frame, 0.0)


def test_consumer_url_from_a_base_url_and_kept_when_complete() -> None:
    assert consumer_url("http://127.0.0.1:8080/", "acc 1") == (
        "ws://127.0.0.1:8080/ws_api/account/acc%201/messaging/consumer?v=3"
    )
    full = "wss://va.example/ws_api/account/123/messaging/consumer?v=3"
    assert consumer_url(full, "ignored") == full
    with pytest.raises(UsageError):
        consumer_url("ftp://x", "a")


def test_jwt_subject_is_read_without_verification(jwt_factory: JwtFactory) -> None:
    assert jwt_subject(jwt_factory("abc", secret="s")) == "abc"
    assert jwt_subject("not-a-jwt") is None
    assert jwt_subject("a.!!!.c") is None


def test_backoff_grows_exponentially_with_jitter_up_to_the_maximum() -> None:
    delays = backoff_delays(1.0, 8.0, 2.0, rng=lambda: 1.0)
    assert [next(iter(delays)) for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low = backoff_delays(1.0, 8.0, 2.0, rng=lambda: 0.0)
    assert [next(iter(low)) for _ in range(3)] == [0.5, 1.0, 2.0]


# --- asyncio client against a tiny server ------------------------------------------------------


def test_client_connects_requests_a_conversation_and_subscribes(on_mini_server: OnMiniServer) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client("c1") as client:
            assert await client.request_conversation() == "conv-1"
            assert await client.subscribe() == "sub-1"
            assert await client.get_clock() == 1
            with pytest.raises(RequestRejected, match="code 400: unknown type Nope"):
                await client.request("Nope")
        types = [r["type"] for r in server.requests]
        assert types[:3] == [
            "InitConnection",
            "cm.ConsumerRequestConversation",
            "cqm.SubscribeExConversations",
        ]
        assert server.requests[2]["body"] == {"convState": ["OPEN"]}

    on_mini_server(body)


def test_client_reports_invitations_and_expires_them_on_its_own_timer(
    on_mini_server: OnMiniServer, wire: Wire
) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client(wire.consumer) as client:
            await client.subscribe()
            now = time.time()
            dialog = wire.call_dialog("d1", expires=now + 0.5, created=int(now * 1000))
            await server.push(wire.upsert("conv", dialog))
            invited = await client.next_event(10)
            assert isinstance(invited, CallInvited) and invited.dialogId == "d1"
            # the server never says CLOSED: the client's timer expires the invitation
            closed = await client.next_event(10)
            assert isinstance(closed, CallClosed) and closed.reason is CloseReason.EXPIRED
            assert time.time() >= now + 0.5

    on_mini_server(body)


def test_malformed_notifications_are_logged_and_skipped(
    on_mini_server: OnMiniServer, wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client(wire.consumer, clock=lambda: wire.t0) as client:
            await client.subscribe()
            await server.push("garbage{")
            await server.push(
                '{"kind":"notification","type":"cqm.ExConversationChangeNotification","body":7}'
            )
            await server.push({"changes": [{"type": "UPSERT", "result": {"convId": 5}}]})
            await server.push(wire.upsert("conv", wire.call_dialog("d1")))
            event = await client.next_event(10)
            assert isinstance(event, CallInvited)
            assert len(client.problems) == 3
            assert "not valid JSON" in client.problems[0] and "convId" in client.problems[2]
            assert await client.get_clock() == 1  # still serving

    with caplog.at_level(logging.WARNING, logger="callops.consumer.client"):
        on_mini_server(body)
    assert sum("frame skipped" in r.getMessage() for r in caplog.records) == 3


@pytest.mark.parametrize("code", [4401, 4407, 1011])
def test_auth_close_codes_raise_authentication_error_without_retry(
    on_mini_server: OnMiniServer, jwt_factory: JwtFactory, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    token = jwt_factory("bad-consumer")

    async def body(server: MiniServer) -> None:
        client = ConsumerClient(server.url, "acc", Secret(token), backoff_initial=0.01)
        with pytest.raises(AuthenticationError, match=str(code)) as info:
            await client.connect()
        assert info.value.exit_code == 6 and "not retried" in str(info.value)
        await client.close()
        assert [r["type"] for r in server.requests] == ["InitConnection"]

    with caplog.at_level(logging.DEBUG):
        on_mini_server(body, close_code=code)
    assert all(token not in r.getMessage() for r in caplog.records)


def test_client_reconnects_after_a_drop_and_subscribes_again(
    on_mini_server: OnMiniServer, wire: Wire
) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client(wire.consumer, backoff_initial=0.05, clock=lambda: wire.t0) as client:
            await client.subscribe()
            server.drop()
            await server.wait_for(lambda: server.subscribes == 2, 20)
            await client.get_clock()  # answered after the subscription: its answer is handled
            assert client.reconnects == 1 and client.subscription_id == "sub-2"
            await server.push(wire.upsert("conv", wire.call_dialog("d1")))
            assert isinstance(await client.next_event(10), CallInvited)
        assert server.inits == 2

    on_mini_server(body, 40)


def test_unanswered_keepalive_drops_and_reconnects(on_mini_server: OnMiniServer) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client(keepalive_interval=0.1, request_timeout=0.3, backoff_initial=0.05):
            await server.wait_for(lambda: server.inits >= 2, 20)
        assert any(r["type"] == "GetClock" for r in server.requests)

    on_mini_server(body, 40, answer_clock=False)


def test_answered_keepalive_sends_get_clock_every_period_on_the_same_connection(
    on_mini_server: OnMiniServer,
) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client(keepalive_interval=0.05) as client:
            await server.wait_for(lambda: sum(r["type"] == "GetClock" for r in server.requests) >= 3, 20)
            assert client.connected.is_set()
        assert server.inits == 1 and client.reconnects == 0

    on_mini_server(body, 40)


def test_default_keepalive_is_within_the_30_s_rule(jwt_factory: JwtFactory) -> None:
    client = ConsumerClient("ws://127.0.0.1:9", "acc", Secret(jwt_factory("c")))
    assert 0 < client.keepalive_interval <= 30


def test_request_timeout_is_a_deadline_error(on_mini_server: OnMiniServer) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client() as client:
            with pytest.raises(DeadlineExceeded, match="GetClock"):
                await client.request("GetClock", within=0.2)

    on_mini_server(body, answer_clock=False)


def test_refused_connection_names_host_and_port(jwt_factory: JwtFactory) -> None:
    port = free_port()

    async def body() -> None:
        client = ConsumerClient(f"ws://127.0.0.1:{port}", "acc", Secret(jwt_factory("c")))
        with pytest.raises(NetworkError, match=f"127.0.0.1:{port}.*refused"):
            await client.connect()
        await client.close()

    run_bounded(body(), 30)


def test_without_reconnect_a_drop_ends_the_event_stream_with_an_error(on_mini_server: OnMiniServer) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client(reconnect=False) as client:
            server.drop()
            events: list[Any] = []
            with pytest.raises(NetworkError, match="connection closed"):
                async for event in client.events():
                    events.append(event)
            assert events == []

    on_mini_server(body)


def test_jwt_never_appears_in_logs_even_at_debug(
    on_mini_server: OnMiniServer, jwt_factory: JwtFactory, caplog: pytest.LogCaptureFixture
) -> None:
    token = jwt_factory("consumer-secretive", secret="s3cret")
    _, payload, signature = token.split(".")

    async def body(server: MiniServer) -> None:
        async with ConsumerClient(server.url, "acc", Secret(token)) as client:
            await client.subscribe()

    with caplog.at_level(logging.DEBUG):
        on_mini_server(body)
    messages = [r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")]
    assert any("redacted: carries credentials" in m for m in messages)
    for fragment in (token, payload[-12:], signature[-12:]):
        assert all(fragment not in m for m in messages)


def test_4401_mid_session_ends_the_event_stream_with_an_authentication_error(
    on_mini_server: OnMiniServer,
) -> None:
    async def body(server: MiniServer) -> None:
        async with server.client(backoff_initial=0.01) as client:
            await client.subscribe()
            await server.close_all(4401, "token expired")
            with pytest.raises(AuthenticationError, match=r"4401.*token was rejected"):
                async for _ in client.events():
                    pass
            with pytest.raises(AuthenticationError):
                await client.get_clock()
        assert server.inits == 1  # never retried

    on_mini_server(body)


class _StandInIdp:
    """An unauthenticated identity source standing in for LivePerson's IDP: ``sub`` renewed-1, -2 ..."""

    renewable = True

    def __init__(self, jwt_factory: JwtFactory, prefix: str = "renewed") -> None:
        self.jwt_factory = jwt_factory
        self.prefix = prefix
        self.signups = 0

    async def token(self) -> Secret:
        return await self.renew()

    async def renew(self) -> Secret:
        self.signups += 1
        return Secret(self.jwt_factory(f"{self.prefix}-{self.signups}"))


@asynccontextmanager
async def _renewing(
    server: MiniServer, jwt_factory: JwtFactory, prefix: str = "renewed", *, reconnect: bool = True
) -> AsyncIterator[tuple[ConsumerClient, _StandInIdp]]:
    """A client subscribed on ``server`` as ``first``, renewing its identity from a stand-in IDP."""
    idp = _StandInIdp(jwt_factory, prefix)
    async with server.client("first", identity=idp, reconnect=reconnect) as client:
        await client.subscribe()
        yield client, idp


@pytest.mark.parametrize("code", [4401, 4407])
def test_a_live_close_with_an_auth_code_renews_the_unauthenticated_identity_once_and_resubscribes(
    on_mini_server: OnMiniServer, jwt_factory: JwtFactory, code: int
) -> None:
    async def body(server: MiniServer) -> None:
        async with _renewing(server, jwt_factory, reconnect=False) as (client, idp):
            await server.close_all(code, "token expired")
            await server.wait_for(lambda: server.subscribes == 2, 20)
            assert client.renewals == 1 and idp.signups == 1
            assert client.consumer_id == "renewed-1" and client.tracker.consumer_id == "renewed-1"
            assert await client.get_clock() == 1
        assert server.inits == 2

    on_mini_server(body)


@pytest.mark.parametrize(
    ("server_close_code", "prefix", "renewed_first", "close", "match", "signups", "renewals", "inits"),
    [
        # a fresh identity rejected at init after a live close is final (the server rejects "bad-*")
        (4407, "bad", False, 4401, "4407 again, with a fresh identity", 1, 1, 1),
        # close 1011 is not renewed, even for an unauthenticated consumer
        (4401, "renewed", False, 1011, "1011", 0, 0, 1),
        # a server that accepts the fresh identity and closes it at once does not make the client
        # sign up in a loop: a live close right after a renewal is a repeat, and final
        (4401, "renewed", True, 4407, "4407 again, with a fresh identity", 1, 1, 2),
    ],
    ids=["fresh-identity-rejected-at-init", "close-1011-not-renewed", "close-right-after-renewal"],
)
def test_a_close_that_renewal_does_not_cure_is_final(
    on_mini_server: OnMiniServer,
    jwt_factory: JwtFactory,
    server_close_code: int,
    prefix: str,
    renewed_first: bool,
    close: int,
    match: str,
    signups: int,
    renewals: int,
    inits: int,
) -> None:
    async def body(server: MiniServer) -> None:
        async with _renewing(server, jwt_factory, prefix) as (client, idp):
            if renewed_first:
                await server.close_all(4401)
                await server.wait_for(lambda: server.subscribes == 2, 20)
            await server.close_all(close)
            with pytest.raises(AuthenticationError, match=match):
                await client.next_event(20)
        assert (idp.signups, client.renewals, server.inits) == (signups, renewals, inits)

    on_mini_server(body, close_code=server_close_code)
