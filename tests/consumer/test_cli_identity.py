"""``callops consumer listen --account A --csds URL``: discovery and signup end to end, with no URL
and no JWT; clear exits for an unknown account and a dead CSDS; the account id in logs only at -v."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from callops.orchestrator.emulator import ControlClient, Emulator, EmulatorConfig
from callops.orchestrator.emulator.idp import IdentityConfig
from callops.testing import run_bounded
from callops.turn.coturn import free_port

if TYPE_CHECKING:
    from tests.consumer.conftest import CallopsCli

ACCOUNT = "le83624296"


def test_listen_with_only_account_and_csds_signs_up_and_sees_the_invitation(callops_cli: CallopsCli) -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig()) as emu:
            args = ("consumer", "listen", "--account", ACCOUNT, "--csds", emu.base_url, "--json")
            async with callops_cli.spawn(*args, "--count", "1", "--duration", "60") as proc:
                assert proc.stdout is not None and proc.stderr is not None
                ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
                assert ready["kind"] == "ready" and ready["identity"] == "unauthenticated"
                (conversation,) = await ControlClient(emu.base_url).conversations(ACCOUNT)
                assert conversation.consumerId == ready["consumerId"]
                await ControlClient(emu.base_url).invite(ACCOUNT, ready["conversationId"], "VOICE_CALL")
                invited = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
                assert invited["name"] == "invited" and invited["mode"] == "VOICE_CALL"
                rest, err = await asyncio.wait_for(proc.communicate(), 30)
                assert proc.returncode == 0, err
                assert b"eyJ" not in rest + err and ACCOUNT.encode() not in err

    run_bounded(body(), 90)


async def _listen_through_one_invitation(
    callops_cli: CallopsCli, emu: Emulator, *args: str, env: dict[str, str] | None = None
) -> tuple[int | None, str]:
    """``callops ARGS --json --count 1`` invited as soon as it is ready: its exit code and stderr.

    The run ends on its own after the invitation, so every log line of discovery, signup and
    subscription is written before it exits, however slow the machine (no fixed listen window).
    """
    async with callops_cli.spawn(*args, "--json", "--count", "1", "--duration", "60", env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        err = asyncio.create_task(proc.stderr.read())  # drained meanwhile: -vv logs can fill the pipe
        try:
            ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
            await ControlClient(emu.base_url).invite(ACCOUNT, ready["conversationId"], "VOICE_CALL")
            _, logs, code = await asyncio.wait_for(asyncio.gather(proc.stdout.read(), err, proc.wait()), 30)
        finally:
            err.cancel()  # on a failure: the spawn's clean-up reads the rest
    return code, logs.decode()


def test_the_account_id_is_logged_at_verbose_level_only_and_a_jwt_never(callops_cli: CallopsCli) -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig()) as emu:
            args = ("consumer", "listen", "--account", ACCOUNT)
            quiet = await _listen_through_one_invitation(
                callops_cli, emu, *args, env=callops_cli.env(CALLOPS_CSDS=emu.base_url)
            )
            verbose_args = ("--debug", "-vv", *args, "--csds", emu.base_url)  # wire logs too
            verbose = await _listen_through_one_invitation(callops_cli, emu, *verbose_args)
            assert quiet[0] == 0 and verbose[0] == 0, (quiet, verbose)
            assert ACCOUNT not in quiet[1]
            assert f"account {ACCOUNT}" in verbose[1] and "eyJ" not in verbose[1]

    run_bounded(body(), 90)


def test_an_unknown_account_exits_2_with_a_hint(callops_cli: CallopsCli) -> None:
    async def body() -> None:
        async with Emulator(EmulatorConfig(identity=IdentityConfig(accounts=frozenset({ACCOUNT})))) as emu:
            code, _, err = await callops_cli.run(
                "consumer", "listen", "--account", "12345", "--csds", emu.base_url
            )
            assert code == 2 and "account unknown" in err and "hint: check --account" in err
            assert "Traceback" not in err

    run_bounded(body(), 60)


def test_a_dead_csds_exits_5_and_a_bad_one_exits_2(callops_cli: CallopsCli) -> None:
    port = free_port()

    async def body() -> None:
        code, _, err = await callops_cli.run(
            "consumer", "listen", "--account", ACCOUNT, "--csds", f"http://127.0.0.1:{port}"
        )
        assert code == 5 and "refused" in err and "Traceback" not in err
        code, _, err = await callops_cli.run(
            "consumer", "listen", "--account", ACCOUNT, "--csds", "127.0.0.1:1"
        )
        assert code == 2 and "CSDS URL" in err

    run_bounded(body(), 60)
