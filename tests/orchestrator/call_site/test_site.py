"""``callops call-site``: both sides of one call as two processes sharing one emulator (loopback)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner

from callops.orchestrator.cli.call_site import call_site
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig
from callops.secret import Secret
from callops.testing import run_bounded

if TYPE_CHECKING:
    from tests.orchestrator.conftest import SiteKit

#: the longest one side may take before the test fails instead of hanging
PROCESS_TIMEOUT = 60.0


async def _both_sides(
    kit: SiteKit,
    *extra: str,
    name_conversation: bool = True,
    ready_file: Path | None = None,
    jwt_secret: tuple[Path, Secret] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = None
    if jwt_secret is not None:
        secret = jwt_secret[1]
        extra = (*extra, "--jwt-secret-file", str(jwt_secret[0]))
    async with Emulator(EmulatorConfig(jwt_secret=secret)) as emulator:
        common = ["--emulator", emulator.base_url, "--loopback-only", "--duration", "1", "--json", *extra]
        async with kit.call_sites(*common) as start:
            ready = ["--ready-file", str(ready_file)] if ready_file is not None else []
            consumer = await start("consumer", *ready)
            conversation = await kit.ready(consumer, PROCESS_TIMEOUT)
            agent = await start("agent", *(["--conversation", conversation] if name_conversation else []))
            (c_out, c_err), (a_out, a_err) = await asyncio.wait_for(
                asyncio.gather(consumer.communicate(), agent.communicate()), PROCESS_TIMEOUT
            )
        assert c_out, c_err.decode()
        assert a_out, a_err.decode()
        return json.loads(c_out), json.loads(a_out)


def _decoded(report: dict[str, Any], direction: str) -> int:
    return sum(m["frames_decoded"] for m in report["stats"]["media"] if m["direction"] == direction)


def test_two_processes_make_one_call_with_media_both_ways_over_a_host_pair(site_kit: SiteKit) -> None:
    consumer, agent = run_bounded(_both_sides(site_kit), 2 * PROCESS_TIMEOUT)
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
    tmp_path: Path, site_kit: SiteKit
) -> None:
    ready_file = tmp_path / "ready.json"
    jwt_secret = tmp_path / "jwt-secret"
    jwt_secret.write_text("call-site-test-secret-0123456789\n")
    secret = Secret("call-site-test-secret-0123456789", "test JWT secret")
    consumer, agent = run_bounded(
        _both_sides(
            site_kit,
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


def test_the_agent_side_without_a_consumer_gives_up_after_its_timeout(site_kit: SiteKit) -> None:
    async def lonely() -> tuple[int, str]:
        async with Emulator(EmulatorConfig()) as emulator:
            options = ["--emulator", emulator.base_url, "--loopback-only", "--timeout", "0.5", "--json"]
            async with site_kit.call_sites(*options) as start:
                proc = await start("agent")
                out, _ = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
            return proc.returncode or 0, out.decode()

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
