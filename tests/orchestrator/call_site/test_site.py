"""``callops call-site``: both sides of one call as two processes sharing one emulator (loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from callops.orchestrator.cli.call_site import call_site
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig
from callops.secret import Secret
from callops.testing import run_bounded

#: the longest one side may take before the test fails instead of hanging
PROCESS_TIMEOUT = 60.0


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await proc.wait()


async def _ready(proc: asyncio.subprocess.Process, within: float) -> str:
    """The conversation id from the consumer's readiness line on stderr (other lines skipped)."""
    assert proc.stderr is not None
    async with asyncio.timeout(within):
        while True:
            line = await proc.stderr.readline()
            assert line, "the consumer side exited before it was ready"
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == "ready":
                    return str(event["conversation_id"])


async def _both_sides(
    *extra: str,
    name_conversation: bool = True,
    ready_file: Path | None = None,
    jwt_secret: tuple[Path, Secret] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = None
    if jwt_secret is not None:
        secret = jwt_secret[1]
        extra = (*extra, "--jwt-secret-file", str(jwt_secret[0]))
    emulator = Emulator(EmulatorConfig(jwt_secret=secret))
    await emulator.start()
    procs: list[asyncio.subprocess.Process] = []
    try:
        common = ["--emulator", emulator.base_url, "--loopback-only", "--duration", "1", "--json", *extra]

        async def start(role: str, *more: str) -> asyncio.subprocess.Process:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "callops",
                "call-site",
                "--role",
                role,
                *common,
                *more,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            procs.append(proc)
            return proc

        ready = ["--ready-file", str(ready_file)] if ready_file is not None else []
        consumer = await start("consumer", *ready)
        conversation = await _ready(consumer, PROCESS_TIMEOUT)
        agent = await start("agent", *(["--conversation", conversation] if name_conversation else []))
        (c_out, c_err), (a_out, a_err) = await asyncio.wait_for(
            asyncio.gather(consumer.communicate(), agent.communicate()), PROCESS_TIMEOUT
        )
        assert c_out, c_err.decode()
        assert a_out, a_err.decode()
        return json.loads(c_out), json.loads(a_out)
    finally:
        for proc in procs:
            await _stop(proc)
        await emulator.stop()


def _decoded(report: dict[str, Any], direction: str) -> int:
    return sum(m["frames_decoded"] for m in report["stats"]["media"] if m["direction"] == direction)


def test_two_processes_make_one_call_with_media_both_ways_over_a_host_pair() -> None:
    consumer, agent = run_bounded(_both_sides(), 2 * PROCESS_TIMEOUT)
    assert consumer["ok"] and consumer["outcome"] == "connected", consumer
    assert agent["ok"] and agent["outcome"] == "connected", agent
    assert consumer["service_id"] == agent["service_id"]
    assert _decoded(consumer, "agent->consumer") > 0, consumer
    assert _decoded(agent, "consumer->agent") > 0, agent
    pair = consumer["selected_pair"]
    assert (pair["local"]["type"], pair["remote"]["type"]) == ("host", "host"), pair
    assert agent["agent_selected_pair"]["local"]["type"] == "host"
    for phase in ("invited", "accepted", "dtls_connected", "first_audio", "closed"):
        assert phase in consumer["timeline_ms"], consumer["timeline_ms"]
    for phase in ("accepted", "offer_sent", "answer_received", "first_audio", "closed"):
        assert phase in agent["timeline_ms"], agent["timeline_ms"]


def test_the_agent_finds_the_open_conversation_and_a_signed_video_call_decodes_both_kinds(
    tmp_path: Path,
) -> None:
    ready_file = tmp_path / "ready.json"
    jwt_secret = tmp_path / "jwt-secret"
    jwt_secret.write_text("call-site-test-secret-0123456789\n")
    secret = Secret("call-site-test-secret-0123456789", "test JWT secret")
    consumer, agent = run_bounded(
        _both_sides(
            "--mode",
            "VIDEO_CALL",
            name_conversation=False,
            ready_file=ready_file,
            jwt_secret=(jwt_secret, secret),
        ),
        2 * PROCESS_TIMEOUT,
    )
    assert consumer["ok"] and agent["ok"], (consumer, agent)
    ready = json.loads(ready_file.read_text())
    assert ready["event"] == "ready" and ready["conversation_id"]
    for kind in ("audio", "video"):
        assert any(
            m["kind"] == kind and m["direction"] == "agent->consumer" and m["frames_decoded"] > 0
            for m in consumer["stats"]["media"]
        ), consumer
        assert any(
            m["kind"] == kind and m["direction"] == "consumer->agent" and m["frames_decoded"] > 0
            for m in agent["stats"]["media"]
        ), agent
    assert "first_video" in consumer["timeline_ms"]


def test_the_agent_side_without_a_consumer_gives_up_after_its_timeout() -> None:
    async def lonely() -> tuple[int, str]:
        emulator = Emulator(EmulatorConfig())
        await emulator.start()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "callops",
                "call-site",
                "--role",
                "agent",
                "--emulator",
                emulator.base_url,
                "--loopback-only",
                "--timeout",
                "0.5",
                "--json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
            finally:
                await _stop(proc)
            return proc.returncode or 0, out.decode()
        finally:
            await emulator.stop()

    code, out = run_bounded(lonely(), PROCESS_TIMEOUT + 10)
    report = json.loads(out)
    assert code == 1
    assert not report["ok"] and report["outcome"] == "failed"
    assert "did not appear" in report["failure"]


def test_turn_without_credentials_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        call_site,
        ["--role", "consumer", "--emulator", "http://127.0.0.1:1", "--turn", "turn:127.0.0.1:3478"],
        env={"CALLOPS_TURN_SECRET": "", "CALLOPS_TURN_PASSWORD": ""},
    )
    assert result.exit_code != 0
    assert "needs credentials" in str(result.exception or result.output)


def test_the_emulator_url_must_be_http() -> None:
    result = CliRunner().invoke(call_site, ["--role", "agent", "--emulator", "ws://127.0.0.1:1"])
    assert result.exit_code != 0
    assert "http://HOST:PORT" in str(result.exception or result.output)
