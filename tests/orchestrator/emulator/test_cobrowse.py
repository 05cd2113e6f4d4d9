"""The CoBrowse stand-in over real sockets: lpTag events, signalling, presence, hang-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.http11 import Response
from websockets.uri import parse_uri

from callops.errors import AuthenticationError, ValidationError
from callops.orchestrator.emulator import CoBrowseChannel, ControlClient, Emulator, EmulatorConfig, mint_jwt
from callops.orchestrator.emulator.channel import ChannelRefused
from callops.testing import run_bounded

ACCOUNT = "le83624296"
AGENT = f"{ACCOUNT}.356285412"


def _payload(service_id: str, mode: str = "VIDEO_CALL", **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "serviceId": service_id,
        "agentId": AGENT,
        "visitorName": "Visitor",
        "mode": mode,
        "ssid": "session-1",
        "svid": "visitor-1",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


@dataclass
class _Call:
    """An invited call: the consumer's messaging socket, and the CoBrowse channels a test opens on it."""

    emu: Emulator
    consumer: Any
    service_id: str
    channels: list[CoBrowseChannel] = field(default_factory=list)

    async def agent(self) -> CoBrowseChannel:
        return await self._open(role="agent")

    async def page(self, consumer_id: str = "c1", *, join: bool | None = None) -> CoBrowseChannel:
        """The consumer's page, with a JWT for ``consumer_id`` (the invited consumer is ``c1``)."""
        return await self._open(role="consumer", jwt=mint_jwt(consumer_id, now=time.time()), join=join)

    async def _open(self, *, role: str, jwt: str | None = None, join: bool | None = None) -> CoBrowseChannel:
        url = self.emu.cobrowse_url(ACCOUNT)
        channel = await CoBrowseChannel.connect(
            url, role=role, service_id=self.service_id, jwt=jwt, join=join
        )
        self.channels.append(channel)
        return channel


@asynccontextmanager
async def _invited(raw_consumer: Any, config: EmulatorConfig | None = None) -> AsyncIterator[_Call]:
    """An emulator, consumer ``c1`` with an open conversation and a video-call invitation; the
    channels the block opened and the consumer are closed after it."""
    async with Emulator(config) as emu:
        consumer = await raw_consumer.connect(emu.consumer_url(ACCOUNT), "c1")
        conversation_id, _ = await consumer.open_conversation()
        invitation = await ControlClient(emu.base_url).invite(ACCOUNT, conversation_id, "VIDEO_CALL")
        await consumer.notification()  # INVITED
        call = _Call(emu, consumer, invitation.serviceId)
        yield call
        for channel in call.channels:
            await channel.close()
        await consumer.close()


async def _until(channel: CoBrowseChannel, kind: str, wait: float = 10.0) -> dict[str, Any]:
    """The next pushed message of type ``kind`` (others are skipped)."""
    async with asyncio.timeout(wait):
        while True:
            frame = await channel.receive()
            if frame["type"] == kind:
                return frame


def _session_state(note: dict[str, Any]) -> tuple[str, str | None]:
    dialog = note["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][-1]
    return dialog["metaData"]["sessionState"], dialog["metaData"].get("notificationKey")


def test_accept_moves_the_dialog_to_accepted_then_joined_and_signals_are_relayed(raw_consumer: Any) -> None:
    async def body() -> None:
        async with _invited(raw_consumer) as call:
            consumer, service_id = call.consumer, call.service_id
            agent = await call.agent()
            page = await call.page()
            assert page.identity == "c1" and agent.identity == AGENT
            ack = await page.publish("cobrowseOffered", _payload(service_id))
            assert ack["sessionState"] == "INVITED"
            offered = await _until(agent, "lptag")
            assert offered["event"] == "cobrowseOffered" and offered["payload"]["visitorName"] == "Visitor"
            ack = await page.publish("cobrowseAccepted", _payload(service_id))
            assert ack["sessionState"] == "ACCEPTED"
            assert _session_state(await consumer.notification()) == ("ACCEPTED", "accepted")
            assert _session_state(await consumer.notification()) == ("ACCEPTED", "joined")
            presence = await _until(agent, "presence")
            assert (presence["role"], presence["event"]) == ("consumer", "joined")
            await agent.send_signal({"type": "offer", "sdp": "v=0 agent"})
            assert (await _until(page, "signal"))["data"] == {"type": "offer", "sdp": "v=0 agent"}
            await page.send_signal({"type": "answer", "sdp": "v=0 consumer"}, ack=True)
            got = await _until(agent, "signal")
            assert (got["from"], got["data"]["sdp"]) == ("consumer", "v=0 consumer")
            # a duplicate accept is idempotent
            assert (await page.publish("cobrowseAccepted", _payload(service_id)))[
                "sessionState"
            ] == "ACCEPTED"
            await agent.hangup()
            assert _session_state(await consumer.notification()) == ("CLOSED", None)
            state = await _until(page, "state")
            assert (state["sessionState"], state["reason"]) == ("CLOSED", "agent hangs up")

    run_bounded(body(), 40)


def test_missing_and_wrong_lptag_fields_are_named(raw_consumer: Any) -> None:
    async def body() -> None:
        async with _invited(raw_consumer) as call:
            service_id = call.service_id
            page = await call.page()
            with pytest.raises(ValidationError) as info:
                await page.publish("cobrowseOffered", _payload(service_id, ssid=None, svid="", mode="SHARED"))
            assert set(info.value.fields) == {"ssid", "svid", "mode"}
            with pytest.raises(ValidationError) as info:
                await page.publish("cobrowseAccepted", _payload(service_id, agentId="someone.else"))
            assert info.value.fields == ["agentId"]
            with pytest.raises(ValidationError) as info:
                await page.publish("cobrowseOfferd", _payload(service_id))
            assert info.value.fields == ["event"]
            with pytest.raises(ChannelRefused) as refused:
                await page.publish("cobrowseOffered", _payload("c1#no-such-call"))
            assert refused.value.code == 404
            with pytest.raises(ChannelRefused, match="join the call"):
                await page.publish("sliderOpened")

    run_bounded(body(), 40)


def test_decline_closes_the_invitation_and_a_later_accept_is_refused(raw_consumer: Any) -> None:
    async def body() -> None:
        async with _invited(raw_consumer) as call:
            page = await call.page()
            await page.publish("cobrowseDeclined", _payload(call.service_id))
            assert _session_state(await call.consumer.notification()) == ("CLOSED", None)
            with pytest.raises(ChannelRefused, match=r"CLOSED \(declined by consumer\)") as refused:
                await page.publish("cobrowseAccepted", _payload(call.service_id))
            assert refused.value.code == 409

    run_bounded(body(), 40)


def test_accept_after_expiry_is_a_clear_error(raw_consumer: Any) -> None:
    async def body() -> None:
        async with _invited(raw_consumer, EmulatorConfig(invite_expiry=0.3)) as call:
            assert _session_state(await call.consumer.notification()) == ("CLOSED", None)
            page = await call.page()
            with pytest.raises(ChannelRefused, match="invitation expired"):
                await page.publish("cobrowseAccepted", _payload(call.service_id))

    run_bounded(body(), 40)


def test_another_consumer_cannot_claim_the_call_and_the_call_is_unaffected(raw_consumer: Any) -> None:
    async def body() -> None:
        async with _invited(raw_consumer) as call:
            intruder = await call.page("mallory")
            with pytest.raises(AuthenticationError, match="another consumer"):
                await intruder.publish("cobrowseAccepted", _payload(call.service_id))
            with pytest.raises(AuthenticationError):
                await intruder.join()
            page = await call.page()
            assert (await page.publish("cobrowseAccepted", _payload(call.service_id)))[
                "sessionState"
            ] == "ACCEPTED"

    run_bounded(body(), 40)


def test_the_same_consumer_can_rejoin_after_its_socket_dropped_and_held_signals_arrive(
    raw_consumer: Any,
) -> None:
    async def body() -> None:
        async with _invited(raw_consumer) as call:
            consumer, service_id = call.consumer, call.service_id
            agent = await call.agent()
            page = await call.page()
            await page.publish("cobrowseAccepted", _payload(service_id))
            assert (await _until(agent, "presence"))["event"] == "joined"
            await page.close()  # page reload
            left = await _until(agent, "presence")
            assert (left["role"], left["event"]) == ("consumer", "left")
            await agent.send_signal({"type": "candidate", "n": 1})  # held until the consumer is back
            page = await call.page(join=True)
            assert (await _until(page, "signal"))["data"] == {"type": "candidate", "n": 1}
            assert (await page.publish("sliderOpened"))["event"] == "sliderOpened"
            assert (await _until(agent, "lptag"))["event"] == "sliderOpened"
            assert call.emu.model.calls_by_service_id[service_id].state == "ACCEPTED"
            await page.hangup()
            closed = [_session_state(await consumer.notification()) for _ in range(3)]
            assert closed[-1] == ("CLOSED", None)

    run_bounded(body(), 40)


def test_consumer_learns_within_seconds_that_a_silent_agent_vanished(raw_consumer: Any) -> None:
    async def body() -> None:
        config = EmulatorConfig(cobrowse_ping_interval=0.5, cobrowse_ping_timeout=1.5)
        async with _invited(raw_consumer, config) as call:
            service_id = call.service_id
            url = call.emu.cobrowse_url(ACCOUNT)
            # an agent that authenticates, joins, then goes silent (never answers pings)
            reader, writer = await asyncio.open_connection("127.0.0.1", call.emu.port)
            client = ClientProtocol(parse_uri(url))
            client.send_request(client.connect())
            for data in client.data_to_send():
                writer.write(data)
            acks = 0
            while acks < 2:
                client.receive_data(await asyncio.wait_for(reader.read(65536), 10))
                for event in client.events_received():
                    if isinstance(event, Response):
                        client.send_text(b'{"type":"auth","role":"agent","id":"1"}')
                        client.send_text(f'{{"type":"join","id":"2","serviceId":"{service_id}"}}'.encode())
                    elif isinstance(event, Frame) and b'"ack"' in event.data:
                        acks += 1
                for data in client.data_to_send():
                    writer.write(data)
            page = await call.page()
            await page.publish("cobrowseAccepted", _payload(service_id))
            started = time.monotonic()
            left = await _until(page, "presence", wait=10)
            assert (left["role"], left["event"]) == ("agent", "left")
            assert time.monotonic() - started < 5
            writer.close()

    run_bounded(body(), 40)


def test_hangup_by_the_consumer_closes_the_dialog_for_websocket_subscribers(raw_consumer: Any) -> None:
    async def body() -> None:
        async with _invited(raw_consumer) as call:
            agent = await call.agent()
            page = await call.page()
            await page.publish("cobrowseAccepted", _payload(call.service_id))
            await page.hangup()
            states = [_session_state(await call.consumer.notification()) for _ in range(3)]
            assert states == [("ACCEPTED", "accepted"), ("ACCEPTED", "joined"), ("CLOSED", None)]
            state = await _until(agent, "state")
            while state["sessionState"] != "CLOSED":
                state = await _until(agent, "state")
            assert state["reason"] == "consumer hangs up"
            with pytest.raises(ChannelRefused, match="CLOSED"):
                await agent.send_signal({"late": True}, ack=True)

    run_bounded(body(), 40)


def test_channel_rejects_bad_frames_unknown_types_and_unauthenticated_requests() -> None:
    async def body() -> None:
        async with Emulator() as emu:
            from websockets.asyncio.client import connect

            async with connect(emu.cobrowse_url(ACCOUNT)) as ws:
                import json

                for data, code in (
                    ("not json", 400),
                    ("[]", 400),
                    ('{"type":"warp","id":"w"}', 400),
                    ('{"type":"join","id":"j","serviceId":"x"}', 401),
                    ('{"type":"auth","id":"a","role":"janitor"}', 400),
                ):
                    await ws.send(data)
                    answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert (answer["type"], answer["code"]) == ("error", code), (data, answer)

    run_bounded(body(), 40)


def test_channel_with_a_secret_requires_signed_tokens_for_both_roles(raw_consumer: Any) -> None:
    async def body() -> None:
        from callops.secret import Secret

        secret = Secret("channel-secret")
        async with Emulator(EmulatorConfig(jwt_secret=secret)) as emu:
            url = emu.cobrowse_url(ACCOUNT)
            with pytest.raises(AuthenticationError):
                await CoBrowseChannel.connect(url, role="agent", service_id="x", join=False)
            agent = await CoBrowseChannel.connect(
                url, role="agent", service_id="x", token=mint_jwt(AGENT, secret, now=time.time()), join=False
            )
            assert agent.identity == AGENT
            await agent.close()

    run_bounded(body(), 40)
