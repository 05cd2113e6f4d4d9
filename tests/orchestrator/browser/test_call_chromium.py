"""``callops call --consumer chromium``: the one call, its consumer role played by a real Chromium.

The same roles and scenarios as the aiortc calls (tests/orchestrator/call/test_session.py); the
browser runs the tutorial's page, the call app stand-in answers, and the report takes its figures
from the page's ``getStats()``. Every browser runs in a network namespace with only ``lo``: either
the command isolates itself (run as root from a namespace with a route out), or the whole call runs
on a thread inside such a namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from callops.orchestrator.browser.consumer_page import BrowserSettings, chromium_consumer
from callops.orchestrator.browser.isolation import browser_environment_problem, run_in_namespace
from callops.orchestrator.call.environment import EnvironmentRequest, call_environment
from callops.orchestrator.call.report import CallReport
from callops.orchestrator.call.runs import CallRun, CallSettings
from callops.orchestrator.call.scenarios import scenario

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def _call_in(netns: str, name: str, **overrides: Any) -> CallReport:
    values: dict[str, Any] = {
        "scenario": name,
        "duration_s": 1.0,
        "ice_timeout_s": 10.0,
        "media_timeout_s": 15.0,
        "step_timeout_s": 15.0,
        "invite_expiry_s": 30.0,
    }
    values.update(overrides)
    settings = CallSettings(**values)

    async def main() -> CallReport:
        request = EnvironmentRequest(embedded_turn=False, invite_expiry_s=settings.invite_expiry_s)
        async with call_environment(request) as env:
            leg = chromium_consumer(BrowserSettings(decide=scenario(name).decision))
            return await CallRun(settings, env, consumer_leg=leg).run()

    return run_in_namespace(netns, main, 120)


def _media_both_ways(report: CallReport, kinds: tuple[str, ...] = ("audio",)) -> None:
    for kind in kinds:
        flows = {m.direction: m for m in report.stats.media if m.kind == kind}
        # the browser decoded the agent's media (its getStats), the agent decoded the browser's
        assert flows["agent->consumer"].frames_decoded > 0, kind
        assert flows["consumer->agent"].frames_decoded > 0, kind
        assert flows["consumer->agent"].packets_sent > 0 and flows["agent->consumer"].packets_sent > 0


def test_a_video_call_with_a_chromium_consumer_connects_with_media_both_ways(browser_netns: str) -> None:
    report = _call_in(browser_netns, "accept", mode="VIDEO_CALL")
    assert report.ok, (report.failure, report.legs)
    assert report.outcome == "connected"
    assert report.legs["consumer"].kind == "chromium" and report.legs["agent"].kind == "aiortc"
    assert (report.legs["consumer"].version or "")[:1].isdigit()
    _media_both_ways(report, ("audio", "video"))
    marks = report.timeline_ms
    order = [
        "invited",
        "offered",
        "accepted",
        "offer_sent",
        "dtls_connected",
        "first_audio",
        "first_video",
        "closed",
    ]
    assert all(phase in marks for phase in order), marks
    assert (
        marks["invited"]
        <= marks["accepted"]
        <= marks["dtls_connected"]
        <= marks["first_audio"]
        < marks["closed"]
    )
    assert report.selected_pair is not None and report.selected_pair.local.type == "host"
    assert report.interruptions == [] and report.errors == []


def test_the_page_answers_after_the_visitor_read_the_invitation(browser_netns: str) -> None:
    # the call app warms up while the invitation is shown; the call still connects with media
    report = _call_in(browser_netns, "accept", answer_after_s=0.4)
    assert report.ok, (report.failure, report.legs["consumer"].console)
    assert report.outcome == "connected"
    marks = report.timeline_ms
    assert marks["accepted"] - marks["offered"] >= 400.0, marks
    _media_both_ways(report)


def test_a_real_page_reload_resumes_the_call(browser_netns: str) -> None:
    report = _call_in(browser_netns, "resume")
    assert report.ok, (report.failure, report.legs["consumer"].console)
    marks = report.timeline_ms
    assert marks["first_audio"] < marks["resumed"] < marks["media_again"] < marks["closed"]
    assert report.resume_to_media_ms is not None and report.resume_to_media_ms > 0
    _media_both_ways(report)


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("decline", "declined"),
        ("cancel", "cancelled"),
        ("expire", "expired"),
        ("hangup-consumer", "connected"),
    ],
)
def test_scenarios_end_as_expected_with_a_chromium_consumer(
    browser_netns: str, name: str, outcome: str
) -> None:
    report = _call_in(browser_netns, name, invite_expiry_s=2.0)
    assert report.ok, (report.failure, report.legs["consumer"].console)
    assert report.outcome == outcome and "closed" in report.timeline_ms
    if outcome != "connected":
        assert "accepted" not in report.timeline_ms and report.stats.media == []


def test_the_page_raises_agent_disconnected_when_the_agent_vanishes(browser_netns: str) -> None:
    report = _call_in(browser_netns, "agent-disconnect")
    assert report.ok, (report.failure, report.legs["consumer"].console)
    assert [e.id for e in report.errors] == ["AGENT_DISCONNECTED"]
    assert report.outcome == "connected" and "dropped" not in report.timeline_ms


def test_ice_that_cannot_connect_is_unable_to_connect_raised_by_the_page(browser_netns: str) -> None:
    report = _call_in(browser_netns, "ice-fail", ice_timeout_s=3.0)
    assert report.ok, (report.failure, report.legs["consumer"].console)
    assert report.outcome == "failed" and report.policy == "relay"
    assert "UNABLE_TO_CONNECT" in [e.id for e in report.errors]
    assert report.selected_pair is None


def test_callops_call_isolates_itself_when_chromium_could_reach_the_internet() -> None:
    problem = browser_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    from callops.orchestrator.browser.isolation import has_route_out

    if not has_route_out():
        pytest.skip("this namespace has no route out: nothing to isolate from")
    argv = [sys.executable, "-m", "callops", "call", "--consumer", "chromium", "--duration", "1", "--json"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ}, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "isolated network namespace callops-browser-" in res.stderr
    name = res.stderr.split("isolated network namespace ", 1)[1].split()[0]
    report = CallReport.model_validate(json.loads(res.stdout))
    assert report.ok and report.legs["consumer"].kind == "chromium"
    _media_both_ways(report)
    # the namespace is gone afterwards
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    assert name not in listed.stdout


def test_smoke_with_chromium_consumers_runs_each_call_in_its_own_browser(browser_netns: str) -> None:
    from callops.orchestrator.call.smoke import run_smoke

    settings = CallSettings(duration_s=0.5, ice_timeout_s=10.0, media_timeout_s=15.0, step_timeout_s=15.0)

    async def main() -> Any:
        async with call_environment(EnvironmentRequest(embedded_turn=False)) as env:
            leg = chromium_consumer(BrowserSettings())
            return await run_smoke(
                lambda _i: CallRun(settings, env, consumer_leg=leg).run(), calls=2, concurrency=2
            )

    report = run_in_namespace(browser_netns, main, 150)
    assert report.ok, [c.failure for c in report.calls]
    assert report.summary.passed == 2
    assert all(c.legs["consumer"].kind == "chromium" for c in report.calls)


@pytest.mark.parametrize("consumer", ["aiortc", "chromium"])
def test_a_chromium_agent_calls_either_consumer(browser_netns: str, consumer: str) -> None:
    from callops.orchestrator.browser.agent_page import chromium_agent
    from callops.orchestrator.call.runs import aiortc_consumer

    settings = CallSettings(
        mode="VIDEO_CALL", duration_s=1.0, ice_timeout_s=10.0, media_timeout_s=15.0, step_timeout_s=15.0
    )

    async def main() -> CallReport:
        async with call_environment(EnvironmentRequest(embedded_turn=False)) as env:
            browser = BrowserSettings()
            legs: dict[str, Any] = {
                "agent_leg": chromium_agent(browser),
                "consumer_leg": chromium_consumer(browser) if consumer == "chromium" else aiortc_consumer,
            }
            return await CallRun(settings, env, **legs).run()

    report = run_in_namespace(browser_netns, main, 120)
    assert report.ok, (report.failure, report.legs)
    assert report.legs["agent"].kind == "chromium" and report.legs["consumer"].kind == consumer
    _media_both_ways(report, ("audio", "video"))
    assert report.agent_selected_pair is not None and report.selected_pair is not None
