"""``callops consumer listen``: JSON lines, text lines, delivery to the CoBrowse stand-in, usage errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from callops.orchestrator.cli.consumer import ListenRecord, render_line
from callops.orchestrator.emulator import ControlClient, Emulator, EmulatorConfig, mint_jwt
from callops.secret import Secret
from callops.testing import run_bounded

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


def test_cli_listen_prints_json_lines_and_delivers_the_accept() -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig()) as emu:
            token = _token("consumer-cli")
            env = {**os.environ, "CALLOPS_JWT": token.reveal()}
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "callops",
                "consumer",
                "listen",
                emu.base_url,
                "--account",
                ACCOUNT,
                "--json",
                "--auto",
                "accept",
                "--cobrowse-url",
                emu.cobrowse_url(ACCOUNT),
                "--count",
                "3",
                "--duration",
                "60",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert proc.stdout is not None
                ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
                assert ready["kind"] == "ready" and ready["conversationId"]
                control = ControlClient(emu.base_url)
                await control.invite(ACCOUNT, ready["conversationId"], "VIDEO_CALL")
                lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)) for _ in range(4)]
                names = [(line["kind"], line["name"]) for line in lines]
                assert names == [
                    ("event", "invited"),
                    ("lptag", "cobrowseOffered"),
                    ("lptag", "cobrowseAccepted"),
                    ("event", "accepted"),
                ]
                assert lines[1]["data"]["visitorName"] == "callops visitor" and lines[1]["delivered"] is True
                await control.end_call(ACCOUNT, ready["conversationId"])
                closed = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
                assert closed["name"] == "closed" and closed["reason"] == "ended"
                assert await asyncio.wait_for(proc.wait(), 30) == 0
                stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
                assert token.reveal() not in stderr
            finally:
                if proc.returncode is None:
                    proc.kill()
                # Drain both pipes to EOF so their transports close before the loop does.
                await asyncio.wait_for(proc.communicate(), 30)

    run_bounded(body(), 90)


def test_cli_listen_without_a_jwt_is_a_usage_error() -> None:
    async def body() -> tuple[int, str]:
        env = {k: v for k, v in os.environ.items() if k != "CALLOPS_JWT"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "callops",
            "consumer",
            "listen",
            "ws://127.0.0.1:9",
            "--account",
            ACCOUNT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        return proc.returncode or 0, err.decode()

    code, err = run_bounded(body(), 60)
    assert code == 2 and "CALLOPS_JWT" in err and "Traceback" not in err


def test_cli_listen_decline_from_a_jwt_file_closes_the_call_as_declined(tmp_path: Path) -> None:
    jwt_file = tmp_path / "consumer.jwt"
    token = _token("consumer-cli-decline")
    jwt_file.write_text(token.reveal() + "\n")

    async def body() -> None:
        async with Emulator(EmulatorConfig()) as emu:
            env = {k: v for k, v in os.environ.items() if k != "CALLOPS_JWT"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "callops",
                "consumer",
                "listen",
                emu.base_url,
                "--account",
                ACCOUNT,
                "--jwt-file",
                str(jwt_file),
                "--json",
                "--auto",
                "decline",
                "--cobrowse-url",
                emu.cobrowse_url(ACCOUNT),
                "--count",
                "2",
                "--duration",
                "60",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert proc.stdout is not None
                ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
                assert ready["kind"] == "ready" and ready["conversationId"]
                control = ControlClient(emu.base_url)
                await control.invite(ACCOUNT, ready["conversationId"], "VOICE_CALL")
                lines = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)) for _ in range(4)]
                names = [(line["kind"], line["name"]) for line in lines]
                assert names == [
                    ("event", "invited"),
                    ("lptag", "cobrowseOffered"),
                    ("lptag", "cobrowseDeclined"),
                    ("event", "closed"),
                ]
                assert lines[2]["delivered"] is True
                assert lines[3]["reason"] == "declined"
                assert await asyncio.wait_for(proc.wait(), 30) == 0
                listing = await control.conversations(ACCOUNT)
                calls = [call for conv in listing for call in conv.calls]
                assert [call.sessionState for call in calls] == ["CLOSED"]
                stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
                assert token.reveal() not in stderr
            finally:
                if proc.returncode is None:
                    proc.kill()
                # Drain both pipes to EOF so their transports close before the loop does.
                await asyncio.wait_for(proc.communicate(), 30)

    run_bounded(body(), 90)


def test_cli_listen_with_a_rejected_jwt_exits_6_without_a_traceback(tmp_path: Path) -> None:
    jwt_file = tmp_path / "consumer.jwt"
    wrong = Secret(mint_jwt("consumer-cli-wrong", Secret("not-the-emulator-secret"), now=time.time()))
    jwt_file.write_text(wrong.reveal())

    async def body() -> tuple[int, str, str]:
        async with Emulator(EmulatorConfig(jwt_secret=Secret("emulator-secret-for-tests"))) as emu:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "callops",
                "consumer",
                "listen",
                emu.base_url,
                "--account",
                ACCOUNT,
                "--jwt-file",
                str(jwt_file),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode or 0, out.decode(), err.decode()

    code, out, err = run_bounded(body(), 90)
    assert code == 6
    assert "4401" in err and "JWT" in err and "Traceback" not in err
    assert wrong.reveal() not in out + err
