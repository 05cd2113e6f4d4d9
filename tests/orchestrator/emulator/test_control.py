"""ControlClient against a real emulator, and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from callops.errors import NetworkError, UsageError
from callops.orchestrator.emulator import ControlClient, ControlError, Emulator
from callops.testing import run_bounded
from callops.turn.coturn import free_port

ACCOUNT = "le1"


def test_invite_end_call_and_conversations(raw_consumer: Any) -> None:
    async def body() -> None:
        async with Emulator() as emu:
            consumer = await raw_consumer.connect(emu.consumer_url(ACCOUNT), "c1")
            conversation_id, _ = await consumer.open_conversation()
            client = ControlClient(emu.base_url)
            invitation = await client.invite(ACCOUNT, conversation_id, "VOICE_CALL")
            assert invitation.serviceId.startswith("c1#")
            (conv,) = await client.conversations(ACCOUNT)
            assert (conv.conversationId, conv.consumerId, conv.agentId) == (
                conversation_id,
                "c1",
                "le1.356285412",
            )
            assert (
                conv.call is not None
                and conv.call.sessionState == "INVITED"
                and conv.call.mode == "VOICE_CALL"
            )
            with pytest.raises(ControlError, match="409 Call in progress") as info:
                await client.invite(ACCOUNT, conversation_id, "VIDEO_CALL")
            assert info.value.status == 409
            ended = await client.end_call(ACCOUNT, conversation_id)
            assert ended.sessionState == "CLOSED" and ended.closedReason == "agent cancels"
            with pytest.raises(ControlError, match="404"):
                await client.end_call(ACCOUNT, "nope")
            assert await client.conversations("unknown-account") == []
            await consumer.close()

    run_bounded(body(), 30)


def test_unreachable_emulator_is_a_network_error_naming_host_and_port() -> None:
    port = free_port()

    async def body() -> None:
        with pytest.raises(NetworkError, match=f"127.0.0.1:{port}: connection refused"):
            await ControlClient(f"http://127.0.0.1:{port}", timeout=5).conversations(ACCOUNT)

    run_bounded(body(), 30)


def test_bad_base_url_and_mode_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="http://HOST:PORT"):
        ControlClient("ws://127.0.0.1:1")

    async def body() -> None:
        with pytest.raises(UsageError, match="VOICE_CALL or VIDEO_CALL"):
            await ControlClient("http://127.0.0.1:1").invite(ACCOUNT, "c", "AUDIO")

    run_bounded(body(), 30)
