"""A real call: ``call-site --role consumer --leg chromium`` against ``call-site --role agent`` (aiortc).

Everything runs inside one isolated network namespace (only ``lo``): the emulator and a coturn on
127.0.0.1, both call-site processes, and the Chromium the consumer side starts. Media is verified
both ways from the browser's getStats (decoded frames) and the agent's sinks. Run under
``flock /tmp/callops-heavy.lock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from callops.orchestrator.browser.isolation import run_in_namespace
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig
from callops.turn.coturn import LoopbackCoturn

if TYPE_CHECKING:
    from tests.orchestrator.conftest import SiteKit

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.coturn]

#: the longest one side may take before the test fails instead of hanging
PROCESS_TIMEOUT = 60.0


async def _call(
    kit: SiteKit, tmp_path: Path, consumer: list[str], agent: list[str], *, turn: LoopbackCoturn | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    async with Emulator(EmulatorConfig()) as emu:
        common = ["--emulator", emu.base_url, "--duration", "1", "--ice-timeout", "8", "--json"]
        if turn is not None:
            secret_file = tmp_path / "turn-secret"
            secret_file.write_text(turn.secret.reveal())
            common += ["--secret-file", str(secret_file)]
        async with kit.call_sites(*common) as start:
            consumer_side = await start("consumer", "--leg", "chromium", *consumer)
            conversation = await kit.ready(consumer_side, PROCESS_TIMEOUT)
            agent_side = await start("agent", "--conversation", conversation, "--loopback-only", *agent)
            (c_out, c_err), (a_out, a_err) = await asyncio.wait_for(
                asyncio.gather(consumer_side.communicate(), agent_side.communicate()), PROCESS_TIMEOUT
            )
        return kit.report(c_out, c_err, "consumer"), kit.report(a_out, a_err, "agent")


@pytest.fixture
def turn_in_netns(
    browser_netns: str, start_relay: Callable[..., LoopbackCoturn]
) -> Callable[[], LoopbackCoturn]:
    """Factory: a loopback coturn started *inside* the test's namespace (stopped after the test)."""

    async def main() -> LoopbackCoturn:
        return start_relay()

    return lambda: run_in_namespace(browser_netns, main, 30)


def _media_both_ways(consumer: dict[str, Any], agent: dict[str, Any], kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        received = {m["direction"]: m for m in consumer["stats"]["media"] if m["kind"] == kind}
        sent_by_agent = {m["direction"]: m for m in agent["stats"]["media"] if m["kind"] == kind}
        # the browser decoded the agent's media (its getStats) ...
        assert received["agent->consumer"]["frames_decoded"] > 0, kind
        assert received["agent->consumer"]["packets_received"] > 0, kind
        assert received["agent->consumer"]["loss_percent"] < 5.0
        assert received["consumer->agent"]["packets_sent"] > 0, kind
        # ... and the agent decoded the browser's
        assert sent_by_agent["consumer->agent"]["frames_decoded"] > 0, kind


def _legs(consumer: dict[str, Any], agent: dict[str, Any]) -> None:
    assert consumer["legs"]["consumer"]["kind"] == "chromium"
    assert consumer["legs"]["consumer"]["version"][0].isdigit()
    assert agent["legs"]["agent"]["kind"] == "aiortc"


def test_video_call_with_a_chromium_consumer_on_host_candidates(
    browser_netns: str, tmp_path: Path, site_kit: SiteKit
) -> None:
    consumer, agent = run_in_namespace(
        browser_netns,
        lambda: _call(site_kit, tmp_path, ["--mode", "VIDEO_CALL"], ["--mode", "VIDEO_CALL"]),
        120,
    )
    assert consumer["ok"], consumer["failure"]
    assert agent["ok"], agent["failure"]
    assert consumer["outcome"] == "connected"
    _media_both_ways(consumer, agent, ("audio", "video"))
    _legs(consumer, agent)
    timeline = consumer["timeline_ms"]
    for phase in (
        "invited",
        "offered",
        "accepted",
        "ice_connected",
        "dtls_connected",
        "first_audio",
        "first_video",
        "closed",
    ):
        assert phase in timeline, phase
    assert timeline["invited"] == 0.0 and timeline["accepted"] <= timeline["dtls_connected"]
    assert consumer["selected_pair"]["local"]["type"] == "host"


@pytest.mark.parametrize("transport", ["udp", "tls"])
def test_relay_only_chromium_consumer_over_turn(
    browser_netns: str,
    tmp_path: Path,
    turn_in_netns: Callable[[], LoopbackCoturn],
    transport: str,
    site_kit: SiteKit,
) -> None:
    turn = turn_in_netns()
    url = turn.turn_udp if transport == "udp" else turn.turns
    consumer_args = ["--turn", url, "--policy", "relay"]
    if transport == "tls":
        consumer_args += ["--ca-file", str(turn.ca_file)]  # trusted in the browser's NSS database
    consumer, agent = run_in_namespace(
        browser_netns,
        lambda: _call(site_kit, tmp_path, consumer_args, ["--turn", turn.turn_udp], turn=turn),
        120,
    )
    assert consumer["ok"], (consumer["failure"], consumer["errors"], consumer["legs"]["consumer"]["console"])
    assert agent["ok"], agent["failure"]
    _media_both_ways(consumer, agent, ("audio",))
    local = consumer["selected_pair"]["local"]
    assert (local["type"], local["relay_protocol"]) == ("relay", transport)


def test_an_untrusted_turns_certificate_fails_with_ice_error_701(
    browser_netns: str, tmp_path: Path, turn_in_netns: Callable[[], LoopbackCoturn], site_kit: SiteKit
) -> None:
    turn = turn_in_netns()
    # no --ca-file: the lab CA is not trusted; the consumer gives up before the agent does
    consumer_args = ["--turn", turn.turns, "--policy", "relay", "--ice-timeout", "3"]
    consumer, agent = run_in_namespace(
        browser_netns,
        lambda: _call(site_kit, tmp_path, consumer_args, ["--turn", turn.turn_udp], turn=turn),
        120,
    )
    assert not consumer["ok"] and consumer["outcome"] == "failed"
    ids = [e["id"] for e in consumer["errors"]]
    assert "UNABLE_TO_CONNECT" in ids and "701" in consumer["failure"]
    assert any(e["id"] == "ICE_CANDIDATE_ERROR" and e["msg"].startswith("701") for e in consumer["errors"])
    assert not agent["ok"]


def test_a_declining_chromium_consumer(browser_netns: str, tmp_path: Path, site_kit: SiteKit) -> None:
    consumer, agent = run_in_namespace(
        browser_netns, lambda: _call(site_kit, tmp_path, ["--scenario", "decline"], []), 120
    )
    assert consumer["ok"], consumer["failure"]
    assert (consumer["outcome"], consumer["expected_outcome"], consumer["scenario"]) == (
        "declined",
        "declined",
        "decline",
    )
    assert "offered" in consumer["timeline_ms"] and "closed" in consumer["timeline_ms"]
    assert not agent["ok"] and "declined" in agent["failure"]


def test_a_refused_camera_raises_no_camera_access_and_the_offer_is_not_answered(
    browser_netns: str, site_kit: SiteKit
) -> None:
    """The call app asks for the camera at the accept, before the offer: refused, it raises
    NO_CAMERA_ACCESS; the offer is never answered and the consumer hangs up the failed call."""
    from callops.orchestrator.browser.consumer_page import BrowserSettings, chromium_consumer
    from callops.orchestrator.call.runs import CallEnvironment, CallSettings, SiteRun

    async def main() -> tuple[Any, dict[str, Any], dict[str, Any]]:
        async with Emulator(EmulatorConfig()) as emu:
            settings = CallSettings(step_timeout_s=4.0, ice_timeout_s=4.0)
            ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            leg = chromium_consumer(BrowserSettings(grant_media=False))
            run = SiteRun(
                "consumer",
                settings,
                CallEnvironment(base_url=emu.base_url),
                consumer_leg=leg,
                on_ready=ready.set_result,
            )
            assert run.consumer is not None
            page = run.consumer.leg
            close = page.close
            seen: dict[str, Any] = {}

            async def close_after_reading_the_page() -> None:
                seen.update(await page.app_state())  # type: ignore[attr-defined]
                await close()

            # the role releases its leg through its clean-up list: read the page just before
            run.consumer.cleanup = [
                close_after_reading_the_page if c == close else c for c in run.consumer.cleanup
            ]
            consumer = asyncio.create_task(run.run())
            args = ["--emulator", emu.base_url, "--duration", "1", "--timeout", "10", "--json"]
            try:
                async with site_kit.call_sites(*args) as start:
                    conversation = await asyncio.wait_for(asyncio.shield(ready), PROCESS_TIMEOUT)
                    agent = await start("agent", "--conversation", conversation, "--loopback-only")
                    report = await asyncio.wait_for(consumer, PROCESS_TIMEOUT)
                    a_out, a_err = await asyncio.wait_for(agent.communicate(), PROCESS_TIMEOUT)
            finally:
                consumer.cancel()
            return report, seen, site_kit.report(a_out, a_err, "agent")

    report, page, agent = run_in_namespace(browser_netns, main, 120)
    assert not report.ok and [e.id for e in report.errors][:1] == ["NO_CAMERA_ACCESS"]
    # no call without the visitor's media: the page never answers, and hangs up the failed call
    assert "answer_sent" not in page["phases"] and "closed" in page["phases"]
    # no answer came: the agent waited for it in vain, or saw the consumer hang up before it
    # saw the acceptance (the two race: the page fails at once)
    assert not agent["ok"], agent
    assert "agent: no answer within" in agent["failure"] or "(consumer hangs up)" in agent["failure"], agent


# -- page faults: the call app's sessionErrors (``call-site``'s hidden test options) ---------------


async def _faulty_page_call(kit: SiteKit, page: list[str]) -> tuple[dict[str, Any], int]:
    """(the consumer's report, its exit code); the agent side is stopped once the consumer is done."""
    async with Emulator(EmulatorConfig()) as emu:
        common = ["--emulator", emu.base_url, "--duration", "1", "--ice-timeout", "5", "--json"]
        async with kit.call_sites(*common) as start:
            consumer = await start("consumer", "--leg", "chromium", *page)
            conversation = await kit.ready(consumer, PROCESS_TIMEOUT)
            await start(
                "agent", "--conversation", conversation, "--loopback-only", output=asyncio.subprocess.DEVNULL
            )
            out, err = await asyncio.wait_for(consumer.communicate(), PROCESS_TIMEOUT)
        assert consumer.returncode is not None
        return kit.report(out, err, "consumer"), consumer.returncode


@pytest.mark.parametrize(
    ("page", "error_id", "detail"),
    [
        (["--deny-media"], "NO_CAMERA_ACCESS", "NotAllowedError"),
        (["--without-container"], "UNABLE_TO_CONNECT", "lp_cobrowse_callscreen_container"),
    ],
    ids=["no-camera-access", "no-call-container"],
)
def test_a_page_fault_is_a_session_error_and_a_failed_call(
    browser_netns: str, page: list[str], error_id: str, detail: str, site_kit: SiteKit
) -> None:
    report, exit_code = run_in_namespace(browser_netns, lambda: _faulty_page_call(site_kit, page), 120)
    seen = (report["failure"], report["errors"], report["legs"]["consumer"]["console"])
    assert exit_code == 1, seen
    assert not report["ok"] and report["outcome"] != "connected", seen
    assert (report["scenario"], report["expected_outcome"]) == ("accept", "connected")
    assert report["legs"]["consumer"]["kind"] == "chromium"
    errors = [e for e in report["errors"] if e["id"] == error_id]
    assert errors and detail in errors[0]["msg"], seen
    assert error_id in report["failure"], seen
    # the page got as far as accepting the invitation; no media, no connection
    timeline = report["timeline_ms"]
    assert "accepted" in timeline and "dtls_connected" not in timeline and "first_audio" not in timeline
    assert report["selected_pair"] is None
