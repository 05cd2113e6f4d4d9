"""Debug logs of every emulator socket and client never show a JWT, not even its truncated tail."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from websockets.asyncio.client import connect

from callops.consumer.client import ConsumerClient
from callops.consumer.tracker import CallInvited
from callops.orchestrator.emulator import CoBrowseChannel, ControlClient, Emulator, EmulatorConfig, mint_jwt
from callops.orchestrator.emulator.auth import RedactedFrameLog
from callops.secret import Secret
from callops.testing import run_bounded

ACCOUNT = "le83624296"


def test_frame_log_hides_frames_that_carry_credentials(caplog: pytest.LogCaptureFixture) -> None:
    token = mint_jwt("c1", None, now=0.0)
    log = RedactedFrameLog(logging.getLogger("callops.test.wire"), ["agent-token-value"])
    with caplog.at_level(logging.DEBUG, logger="callops.test.wire"):
        log.debug("> TEXT %s [%d bytes]", repr('{"type": "auth", "jwt": "ey...' + token[-12:] + '"}'), 99)
        log.debug("< Authorization: jwt %s", token)
        log.debug("> TEXT %s", repr('{"type": "signal", "token": "agent-token-value"}'))
        log.debug("> TEXT %s", repr('{"kind":"req","id":"3","type":"GetClock"}'))
        log.debug("note about agent-token-value and %s", token)
    text = caplog.text
    assert token not in text and token[-12:] not in text and "agent-token-value" not in text
    assert text.count("redacted: carries credentials") == 3
    assert '"type":"GetClock"' in text and "note about *** and ***" in text


def test_debug_logs_of_a_whole_call_setup_show_no_jwt_fragment(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("wire-log-secret")
    token = Secret(mint_jwt("consumer-wire", secret, now=time.time()))
    # the signature's tail is what websockets' truncated frame display would keep
    fragments = [token.reveal(), token.reveal()[-10:], token.reveal().split(".")[2][:10]]

    async def body() -> None:
        async with Emulator(EmulatorConfig(jwt_secret=secret)) as emu:
            async with ConsumerClient(emu.base_url, ACCOUNT, token) as client:
                conversation_id = await client.request_conversation()
                await client.subscribe()
                await ControlClient(emu.base_url).invite(ACCOUNT, conversation_id, "VOICE_CALL")
                invited = await client.next_event(15)
                assert isinstance(invited, CallInvited)
                channel = await CoBrowseChannel.connect(
                    emu.cobrowse_url(ACCOUNT),
                    role="consumer",
                    service_id=invited.serviceId,
                    jwt=token.reveal(),
                )
                await channel.close()
            headers = {"Authorization": f"jwt {token.reveal()}"}
            async with connect(emu.consumer_url(ACCOUNT), additional_headers=headers) as ws:
                await ws.send(json.dumps({"kind": "req", "id": "1", "type": "GetClock"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["code"] == 200

    with caplog.at_level(logging.DEBUG):
        run_bounded(body(), 60)
    # callops' own loggers only: the raw client above is the test's, not callops'
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("callops."))
    assert "TEXT" in ours  # frames and headers were logged at all
    assert "redacted: carries credentials" in ours
    for fragment in fragments:
        assert fragment not in ours, fragment
