"""The emulator over real loopback sockets: the protocol reference's examples and bad input."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from callops.orchestrator.emulator import ControlClient, Emulator, EmulatorConfig, mint_jwt
from callops.secret import Secret
from callops.testing import run_bounded

ACCOUNT = "le83624296"


async def _close_of(ws: ClientConnection) -> Close:
    """The close frame the emulator ends ``ws`` with (a failure if it sends anything else first)."""
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd


async def _raw_http(emu: Emulator, data: bytes) -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    writer.write(data)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body else None


def test_consumer_flow_of_the_protocol_reference(raw_consumer: Any) -> None:
    async def body() -> None:
        async with Emulator() as emu:
            consumer = await raw_consumer.connect(emu.consumer_url(ACCOUNT), "cc05f2b9")
            clock = await consumer.request("GetClock")
            assert clock["code"] == 200 and abs(clock["body"]["currentTime"] / 1000 - time.time()) < 60
            conversation_id, subscription_id = await consumer.open_conversation()
            invitation = await ControlClient(emu.base_url).invite(ACCOUNT, conversation_id, "VIDEO_CALL")
            note = await consumer.notification()
            assert note["type"] == "cqm.ExConversationChangeNotification"
            assert note["body"]["subscriptionId"] == subscription_id
            change = note["body"]["changes"][0]
            assert change["type"] == "UPSERT" and change["result"]["convId"] == conversation_id
            dialog = change["result"]["conversationDetails"]["dialogs"][1]
            assert dialog["metaData"]["serviceId"] == invitation.serviceId
            assert dialog["dialogId"] == invitation.dialogId == dialog["metaData"]["dialogId"]
            assert dialog["metaData"]["expires"] == invitation.expires
            await ControlClient(emu.base_url).end_call(ACCOUNT, conversation_id)
            closed = await consumer.notification()
            assert closed["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"] == [
                {
                    "dialogId": invitation.dialogId,
                    "dialogType": "OTHER",
                    "channelType": "COBROWSE",
                    "metaData": {"sessionState": "CLOSED"},
                }
            ]
            await consumer.close()

    run_bounded(body(), 30)


def test_authorization_header_replaces_init_connection() -> None:
    async def body() -> None:
        secret = Secret("hs256-secret")
        async with Emulator(EmulatorConfig(jwt_secret=secret, init_timeout=0.5)) as emu:
            token = mint_jwt("c9", secret, now=time.time())
            headers = {"Authorization": f"jwt {token}", "Client-Properties": '{"features":["CO_BROWSE"]}'}
            async with connect(emu.consumer_url(ACCOUNT), additional_headers=headers) as ws:
                await ws.send(json.dumps({"kind": "req", "id": "1", "type": "GetClock"}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer["code"] == 200
            assert emu.model.accounts[ACCOUNT].co_browse_consumers == {"c9"}

    run_bounded(body(), 30)


def test_bad_signature_closes_with_4401(init_frame: Any) -> None:
    async def body() -> None:
        async with (
            Emulator(EmulatorConfig(jwt_secret=Secret("right"))) as emu,
            connect(emu.consumer_url(ACCOUNT)) as ws,
        ):
            await ws.send(init_frame(mint_jwt("c1", Secret("wrong"), now=time.time())))
            close = await _close_of(ws)
            assert close.code == 4401 and "signature" in close.reason

    run_bounded(body(), 30)


def test_no_init_connection_in_time_closes_the_socket() -> None:
    async def body() -> None:
        async with (
            Emulator(EmulatorConfig(init_timeout=0.3)) as emu,
            connect(emu.consumer_url(ACCOUNT)) as ws,
        ):
            close = await _close_of(ws)
            assert close.code == 1008 and "InitConnection" in close.reason

    run_bounded(body(), 30)


def test_bad_input_gets_clear_errors_and_other_sessions_are_unaffected(raw_consumer: Any) -> None:
    async def body() -> None:
        async with Emulator() as emu:
            url = emu.consumer_url(ACCOUNT)
            bystander = await raw_consumer.connect(url, "bystander")
            conversation_id, _ = await bystander.open_conversation()
            early = await raw_consumer.connect(url, "early", init=False)
            await early.ws.send(
                json.dumps({"kind": "req", "id": "1", "type": "cm.ConsumerRequestConversation"})
            )
            answer = await early.next_frame()
            assert (answer["reqId"], answer["code"]) == ("1", 401)
            bad = await raw_consumer.connect(url, "bad")
            for data in (b"\x00\x01garbage", "null", '{"kind":"req","id":"2","type":7}'):
                await bad.ws.send(data)
                answer = await bad.next_frame()
                assert answer["code"] == 400 and answer["type"] == ".ReqBody$ErrorResp", answer
            unknown = await bad.request("cqm.NoSuchRequest")
            assert unknown["code"] == 400 and "cqm.NoSuchRequest" in unknown["body"]["details"]
            missing = await bad.request("ms.PublishEvent", {"dialogId": "x"})
            assert missing["code"] == 400 and "event" in missing["body"]["details"]
            wrong = await bad.request("cqm.SubscribeExConversations", {"convState": {"a": 1}})
            assert wrong["code"] == 400 and "convState" in wrong["body"]["details"]
            # a 2 MiB frame: a clean close with 1009, the others keep being served
            big = await raw_consumer.connect(url, "big")
            await big.ws.send("x" * (2 * 1024 * 1024))
            assert (await _close_of(big.ws)).code == 1009
            assert (await bad.request("GetClock"))["code"] == 200
            await ControlClient(emu.base_url).invite(ACCOUNT, conversation_id, "VOICE_CALL")
            note = await bystander.notification()
            assert note["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][1]["metaData"][
                "mode"
            ] == ("VOICE_CALL")
            for client in (bystander, early, bad):
                await client.close()

    run_bounded(body(), 60)


def test_fragmented_message_is_reassembled(raw_consumer: Any) -> None:
    async def body() -> None:
        async with Emulator() as emu:
            consumer = await raw_consumer.connect(emu.consumer_url(ACCOUNT))
            text = json.dumps({"kind": "req", "id": "f1", "type": "GetClock"})
            await consumer.ws.send(iter([text[:10], text[10:20], text[20:]]))
            answer = await consumer.answer("f1")
            assert answer["code"] == 200
            await consumer.close()

    run_bounded(body(), 30)


def test_control_api_errors_are_json_with_the_right_status() -> None:
    async def body() -> None:
        async with Emulator() as emu:
            call = "/control/accounts/a/conversations/c/call"
            cases = [
                (f"POST {call} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}", 400, "mode"),
                (f"POST {call} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nnope!", 400, "JSON"),
                (f"POST {call} HTTP/1.1\r\nHost: x\r\n\r\n", 411, "Content-Length"),
                (f"POST {call} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", 413, "limit"),
                (f"PUT {call} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, "POST or DELETE"),
                (
                    f'POST {call} HTTP/1.1\r\nHost: x\r\nContent-Length: 22\r\n\r\n{{"mode":"VIDEO_CALL"}}\n',
                    404,
                    "conversation",
                ),
                ("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, "no route"),
                ("garbage\r\n\r\n", 400, "request line"),
                ("GET / HTTP/1.1\r\nbad header\r\n\r\n", 400, "header"),
            ]
            for request, status, word in cases:
                got, answer = await _raw_http(emu, request.encode())
                assert got == status, (request, got, answer)
                assert word in answer["details"], (request, answer)
            got, answer = await _raw_http(emu, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n")
            assert got == 431
            got, answer = await _raw_http(emu, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (got, answer) == (200, {"status": "ok"})

    run_bounded(body(), 30)


def test_invitations_not_accepted_in_time_close(raw_consumer: Any) -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig(invite_expiry=0.3)) as emu:
            consumer = await raw_consumer.connect(emu.consumer_url(ACCOUNT))
            conversation_id, _ = await consumer.open_conversation()
            invitation = await ControlClient(emu.base_url).invite(ACCOUNT, conversation_id, "VIDEO_CALL")
            invited = await consumer.notification()
            assert (
                invited["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][1]["metaData"][
                    "sessionState"
                ]
                == "INVITED"
            )
            closed = await consumer.notification()
            dialog = closed["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][0]
            assert dialog == {
                "dialogId": invitation.dialogId,
                "dialogType": "OTHER",
                "channelType": "COBROWSE",
                "metaData": {"sessionState": "CLOSED"},
            }
            (conv,) = await ControlClient(emu.base_url).conversations(ACCOUNT)
            assert conv.call is None and conv.calls[0].closedReason == "invitation expired"
            await consumer.close()

    run_bounded(body(), 30)


def test_unknown_websocket_path_is_rejected_with_404() -> None:
    async def body() -> None:
        async with Emulator() as emu:
            status, _ = await _raw_http(
                emu,
                b"GET /ws_api/nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            assert status == 404

    run_bounded(body(), 30)


def test_the_tutorials_init_connection_without_kind_is_accepted() -> None:
    async def body() -> None:
        async with Emulator() as emu, connect(emu.consumer_url(ACCOUNT)) as ws:
            tutorial = {
                "id": "0",
                "type": "InitConnection",
                "headers": [
                    {
                        "type": ".ams.headers.ClientProperties",
                        "deviceFamily": "DESKTOP",
                        "os": "WINDOWS",
                        "features": ["CO_BROWSE"],
                    },
                    {"type": ".ams.headers.ConsumerAuthentication", "jwt": mint_jwt("c1", now=time.time())},
                ],
            }
            await ws.send(json.dumps(tutorial))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert answer == {"kind": "resp", "reqId": "0", "code": 200, "type": ".ReqBody$StringResp"}

    run_bounded(body(), 30)


def test_a_client_that_stops_reading_is_dropped_and_others_are_served(raw_consumer: Any) -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig(max_send_buffer=256 * 1024)) as emu:
            url = emu.consumer_url(ACCOUNT)
            bystander = await raw_consumer.connect(url, "bystander")
            slow = await raw_consumer.connect(url, "slow")
            conversation_id, _ = await slow.open_conversation()
            sub = {"dialogId": conversation_id, "conversationId": conversation_id}
            assert (await slow.request("ms.SubscribeMessagingEvents", sub))["code"] == 200
            event = {"type": "ContentEvent", "contentType": "text/plain", "message": "x" * 500_000}
            frame = {"kind": "req", "id": "p", "type": "ms.PublishEvent", "body": {**sub, "event": event}}
            data = json.dumps(frame)
            # the websockets client stops reading once its queue is full: never call recv() here
            with contextlib.suppress(ConnectionClosed):
                for _ in range(60):
                    await slow.ws.send(data)
            assert (await bystander.request("GetClock"))["code"] == 200
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(30):
                    while True:
                        await slow.ws.recv()
            await bystander.close()

    run_bounded(body(), 60)


def test_fifty_concurrent_consumers_each_get_their_own_invitation(raw_consumer: Any) -> None:
    async def body() -> None:
        async with Emulator() as emu:
            url = emu.consumer_url(ACCOUNT)
            consumers = await asyncio.gather(*(raw_consumer.connect(url, f"c{i}") for i in range(50)))
            conversations = await asyncio.gather(*(c.open_conversation() for c in consumers))
            client = ControlClient(emu.base_url)
            invitations = await asyncio.gather(
                *(client.invite(ACCOUNT, conv_id, "VIDEO_CALL") for conv_id, _ in conversations)
            )
            notes = await asyncio.gather(*(c.notification() for c in consumers))
            for consumer, invitation, note in zip(consumers, invitations, notes, strict=True):
                dialog = note["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][1]
                assert dialog["metaData"]["serviceId"] == invitation.serviceId
                assert invitation.serviceId.startswith(f"{consumer.consumer_id}#")
            await asyncio.gather(*(c.close() for c in consumers))

    run_bounded(body(), 60)
