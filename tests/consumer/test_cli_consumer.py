"""``callops consumer listen``: JSON lines, text lines, delivery to the CoBrowse stand-in, usage errors."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callops.orchestrator.cli.consumer import ListenRecord, render_line
from callops.orchestrator.emulator import ControlClient, Emulator, EmulatorConfig, mint_jwt
from callops.secret import Secret
from callops.testing import run_bounded

if TYPE_CHECKING:
    from tests.consumer.conftest import CallopsCli

ACCOUNT = "le83624296"


def _token(sub: str) -> Secret:
    return Secret(mint_jwt(sub, None, now=time.time()))


def test_text_lines_name_the_event_and_its_fields() -> None:
    invited = ListenRecord(
        kind="event",
        name="invited",
        at=0.0,
        conversationId="c1",
        dialogId="d1",
        serviceId="u#s",
        mode="VOICE_CALL",
        agentId="a1",
        expires=0.0,
    )
    assert render_line(invited) == (
        "invited  conversation=c1 dialog=d1 mode=VOICE_CALL serviceId=u#s agent=a1 "
        "expires=1970-01-01T00:00:00Z"
    )
    closed = invited.model_copy(update={"name": "closed", "expires": None, "reason": "declined"})
    assert render_line(closed).endswith("reason=declined")
    lptag = ListenRecord(
        kind="lptag", name="cobrowseOffered", at=0.0, channel="lpCoBrowse", data={"ssid": "s"}
    )
    assert render_line(lptag) == 'lptag    lpCoBrowse cobrowseOffered {"ssid":"s"}'
    ready = ListenRecord(kind="ready", name="ready", at=0.0, conversationId="c1", subscriptionId="s1")
    assert render_line(ready) == "ready    conversation=c1 subscriptionId=s1"


async def _json_line(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    line: dict[str, Any] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    return line


def _listen_args(emu: Emulator, *auth: str, auto: str, count: int) -> tuple[str, ...]:
    """``consumer listen`` on ``emu`` with JSON lines, ``--auto`` and the CoBrowse stand-in."""
    cobrowse = emu.cobrowse_url(ACCOUNT)
    return (
        "consumer",
        "listen",
        emu.base_url,
        "--account",
        ACCOUNT,
        *auth,
        "--json",
        "--auto",
        auto,
        "--cobrowse-url",
        cobrowse,
        "--count",
        str(count),
        "--duration",
        "60",
    )


async def _invite(
    proc: asyncio.subprocess.Process, control: ControlClient, mode: str, answer: str, then: str
) -> list[dict[str, Any]]:
    """Wait for the ``ready`` line and invite to a call in its conversation: the next four lines are
    the invitation, the lpTag offer and ``answer``, and the event ``then``."""
    ready = await _json_line(proc)
    assert ready["kind"] == "ready" and ready["conversationId"]
    await control.invite(ACCOUNT, ready["conversationId"], mode)
    lines = [await _json_line(proc) for _ in range(4)]
    names = [(line["kind"], line["name"]) for line in lines]
    assert names == [("event", "invited"), ("lptag", "cobrowseOffered"), ("lptag", answer), ("event", then)]
    return lines


async def _exits_0_without(proc: asyncio.subprocess.Process, token: Secret) -> None:
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert token.reveal() not in stderr


def test_cli_listen_prints_json_lines_and_delivers_the_accept(callops_cli: CallopsCli) -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig()) as emu:
            token = _token("consumer-cli")
            args = _listen_args(emu, auto="accept", count=3)
            async with callops_cli.spawn(*args, env=callops_cli.env(CALLOPS_JWT=token.reveal())) as proc:
                control = ControlClient(emu.base_url)
                lines = await _invite(proc, control, "VIDEO_CALL", "cobrowseAccepted", "accepted")
                assert lines[1]["data"]["visitorName"] == "callops visitor" and lines[1]["delivered"] is True
                await control.end_call(ACCOUNT, lines[0]["conversationId"])
                closed = await _json_line(proc)
                assert closed["name"] == "closed" and closed["reason"] == "ended"
                await _exits_0_without(proc, token)

    run_bounded(body(), 90)


def test_cli_listen_without_a_jwt_is_a_usage_error(callops_cli: CallopsCli) -> None:
    code, _, err = run_bounded(
        callops_cli.run("consumer", "listen", "ws://127.0.0.1:9", "--account", ACCOUNT), 60
    )
    assert code == 2 and "CALLOPS_JWT" in err and "Traceback" not in err


def test_cli_listen_decline_from_a_jwt_file_closes_the_call_as_declined(
    tmp_path: Path, callops_cli: CallopsCli
) -> None:
    jwt_file = tmp_path / "consumer.jwt"
    token = _token("consumer-cli-decline")
    jwt_file.write_text(token.reveal() + "\n")

    async def body() -> None:
        async with Emulator(EmulatorConfig()) as emu:
            args = _listen_args(emu, "--jwt-file", str(jwt_file), auto="decline", count=2)
            async with callops_cli.spawn(*args) as proc:
                control = ControlClient(emu.base_url)
                lines = await _invite(proc, control, "VOICE_CALL", "cobrowseDeclined", "closed")
                assert lines[2]["delivered"] is True
                assert lines[3]["reason"] == "declined"
                await _exits_0_without(proc, token)
                listing = await control.conversations(ACCOUNT)
                calls = [call for conv in listing for call in conv.calls]
                assert [call.sessionState for call in calls] == ["CLOSED"]

    run_bounded(body(), 90)


def test_cli_listen_with_a_rejected_jwt_exits_6_without_a_traceback(
    tmp_path: Path, callops_cli: CallopsCli
) -> None:
    jwt_file = tmp_path / "consumer.jwt"
    wrong = Secret(mint_jwt("consumer-cli-wrong", Secret("not-the-emulator-secret"), now=time.time()))
    jwt_file.write_text(wrong.reveal())

    async def body() -> tuple[int, str, str]:
        async with Emulator(EmulatorConfig(jwt_secret=Secret("emulator-secret-for-tests"))) as emu:
            return await callops_cli.run(
                "consumer", "listen", emu.base_url, "--account", ACCOUNT, "--jwt-file", str(jwt_file)
            )

    code, out, err = run_bounded(body(), 90)
    assert code == 6
    assert "4401" in err and "JWT" in err and "Traceback" not in err
    assert wrong.reveal() not in out + err
