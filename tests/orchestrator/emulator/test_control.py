"""ControlClient against a real emulator, and its errors."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from callops.errors import AuthenticationError, NetworkError, UsageError
from callops.orchestrator.emulator import ControlClient, ControlError, Emulator, EmulatorConfig
from callops.orchestrator.emulator.control import authorized
from callops.orchestrator.emulator.http11 import HttpRequest
from callops.secret import Secret
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


TOKEN = Secret("control-token-7f3a9c", source="test")


async def _raw(port: int, head: bytes) -> tuple[bytes, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    raw = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    status_head, _, body = raw.partition(b"\r\n\r\n")
    return status_head, json.loads(body)


def test_control_token_is_required_when_configured(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig(control_token=TOKEN)) as emu:
            path = f"/control/accounts/{ACCOUNT}/conversations"
            for auth, why in ((b"", "missing"), (b"Authorization: Bearer nope\r\n", "wrong")):
                head, answer = await _raw(
                    emu.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + auth + b"\r\n"
                )
                assert (
                    head.startswith(b"HTTP/1.1 401 ")
                    and b'WWW-Authenticate: Bearer realm="callops-emulator"' in head
                )
                assert answer["code"] == 401 and answer["details"].startswith(f"{why} control token")
            head, answer = await _raw(emu.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ") and answer == {"status": "ok"}
            with pytest.raises(AuthenticationError, match="401") as info:
                await ControlClient(emu.base_url).conversations(ACCOUNT)
            assert "--control-token-file" in str(info.value)
            with pytest.raises(AuthenticationError, match="wrong control token"):
                await ControlClient(emu.base_url, token=Secret("other")).conversations(ACCOUNT)
            async with ControlClient(emu.base_url, token=TOKEN) as client:
                assert await client.conversations(ACCOUNT) == []

    with caplog.at_level(logging.DEBUG):
        run_bounded(body(), 30)
    assert TOKEN.reveal() not in caplog.text
    assert [r for r in caplog.records if "401" in r.getMessage()], "each refusal is logged"


def test_control_token_comparison_is_constant_time() -> None:
    # hmac.compare_digest: a wrong token of any length or prefix is refused alike
    request = HttpRequest("GET", "/", {"authorization": "Bearer control-token-7f3a9"})
    assert not authorized(request, TOKEN)
    assert authorized(HttpRequest("GET", "/", {"authorization": f"bearer {TOKEN.reveal()}"}), TOKEN)
    assert not authorized(HttpRequest("GET", "/", {"authorization": f"Basic {TOKEN.reveal()}"}), TOKEN)
    assert not authorized(HttpRequest("GET", "/", {"authorization": "Bearer \udcff"}), TOKEN)
