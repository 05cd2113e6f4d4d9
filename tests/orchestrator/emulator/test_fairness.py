"""One client cannot take the emulator from the others: a subscription cap per connection, fan-out
in slices (per-socket order kept), nothing written to closing transports. Over real sockets."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from callops.orchestrator.emulator import ControlClient, Emulator
from callops.orchestrator.emulator import server as server_module
from callops.orchestrator.emulator.model import MAX_SUBSCRIPTIONS

if TYPE_CHECKING:
    from tests.orchestrator.emulator.conftest import OnEmulator, RawConsumer, RawConsumers

ACCOUNT = "le1"


async def _subscribed_to_the_cap(
    consumers: RawConsumers, url: str, name: str
) -> tuple[RawConsumer, str, list[str]]:
    """Consumer ``name`` with an open conversation and subscriptions up to the cap, their listings
    read: (the consumer, the conversation id, the subscription ids in order)."""
    consumer = await consumers.connect(url, name)
    conversation_id, first = await consumer.open_conversation()
    subscriptions = [first]
    for _ in range(MAX_SUBSCRIPTIONS - 1):
        answer = await consumer.request("cqm.SubscribeExConversations", {"convState": ["OPEN"]})
        subscriptions.append(answer["body"]["subscriptionId"])
        await consumer.notification()  # the listing
    return consumer, conversation_id, subscriptions


def test_the_subscription_after_the_cap_gets_a_clear_429(on_emulator: OnEmulator) -> None:
    async def body(emu: Emulator, consumers: RawConsumers) -> None:
        consumer = await consumers.connect(emu.consumer_url(ACCOUNT))
        ids = []
        for _ in range(MAX_SUBSCRIPTIONS):
            answer = await consumer.request("cqm.SubscribeExConversations", {"convState": ["OPEN"]})
            assert answer["code"] == 200, answer
            ids.append(answer["body"]["subscriptionId"])
        refused = await consumer.request("cqm.SubscribeExConversations", {"convState": ["OPEN"]})
        assert refused["code"] == 429 and refused["body"]["title"] == "Too many subscriptions"
        assert f"{MAX_SUBSCRIPTIONS} subscriptions" in refused["body"]["details"]
        assert "cqm.UnsubscribeExConversations" in refused["body"]["details"]
        released = await consumer.request("cqm.UnsubscribeExConversations", {"subscriptionId": ids[0]})
        assert released["code"] == 200
        again = await consumer.request("cqm.SubscribeExConversations", {"convState": ["OPEN"]})
        assert again["code"] == 200
        # another connection of the same consumer has its own cap
        other = await consumers.connect(emu.consumer_url(ACCOUNT))
        assert (await other.request("cqm.SubscribeExConversations", {}))["code"] == 200

    on_emulator(body)


def test_sliced_fan_out_keeps_order_per_socket_and_serves_everyone(
    on_emulator: OnEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every fan-out goes through the backlog: the slice is over before the first frame
    monkeypatch.setattr(server_module, "FANOUT_SLICE", -1.0)

    async def body(emu: Emulator, consumers: RawConsumers) -> None:
        url = emu.consumer_url(ACCOUNT)
        heavy, conversation_id, subscriptions = await _subscribed_to_the_cap(consumers, url, "heavy")
        bystander = await consumers.connect(url, "bystander")
        async with ControlClient(emu.base_url) as control:
            for state in ("INVITED", "CLOSED"):
                if state == "INVITED":
                    await control.invite(ACCOUNT, conversation_id, "VOICE_CALL")
                else:
                    await control.end_call(ACCOUNT, conversation_id)
                assert (await bystander.request("GetClock"))["code"] == 200
                seen = []
                for _ in subscriptions:
                    note = await heavy.notification()
                    dialog = note["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][-1]
                    assert dialog["metaData"]["sessionState"] == state
                    seen.append(note["body"]["subscriptionId"])
                assert seen == subscriptions  # every subscription once, in order

    on_emulator(body)


def test_a_client_that_resets_mid_fan_out_causes_no_log_storm(
    on_emulator: OnEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(emu: Emulator, consumers: RawConsumers) -> None:
        url = emu.consumer_url(ACCOUNT)
        consumer, conversation_id, _ = await _subscribed_to_the_cap(consumers, url, "leaver")
        async with ControlClient(emu.base_url) as control:
            for _ in range(10):
                await control.invite(ACCOUNT, conversation_id, "VIDEO_CALL")
                await control.end_call(ACCOUNT, conversation_id)
            consumer.ws.transport.abort()  # an RST while about 2,000 frames are on their way
            for _ in range(10):
                await control.invite(ACCOUNT, conversation_id, "VIDEO_CALL")
                await control.end_call(ACCOUNT, conversation_id)
            assert len(await control.conversations(ACCOUNT)) == 1

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        on_emulator(body)
    storm = [r for r in caplog.records if r.name == "asyncio"]
    assert not storm, [r.getMessage() for r in storm[:3]]
