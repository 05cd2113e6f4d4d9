"""``callops load`` against a real coturn on loopback: traffic, refreshes, faults, shards, signals, caps."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from callops.orchestrator.load.plan import LoadPlan, Ramp
from callops.orchestrator.load.reporting import LoadReport, StepReport
from callops.orchestrator.load.runner import LoadRun, run_load
from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn

if TYPE_CHECKING:
    from tests.conftest import CallopsRun

pytestmark = pytest.mark.coturn

PlanFactory = Callable[..., LoadPlan]
RunFactory = Callable[..., LoadRun]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("profile", ["voice", "video"])
def test_calls_on_an_idle_relay_lose_nothing(
    transport: str, profile: str, make_plan: PlanFactory, load_run: RunFactory
) -> None:
    plan = make_plan(transport, profile=profile)
    report = run_bounded(run_load(plan, load_run()), 30)
    assert report.ok and report.capacity == 2 and report.transport == transport
    (step,) = report.steps
    assert (step.active, step.failed) == (2, 0)
    expected_per_direction = plan.media.packets_per_second * plan.duration_s
    for call in step.call_results:
        for direction in (call.a_to_b, call.b_to_a):
            assert direction.sent >= 0.8 * expected_per_direction
            assert direction.lost == 0 and direction.received == direction.sent
            assert direction.rtt_p50_ms is not None and direction.rtt_p50_ms < 20
    assert report.loss_percent == 0.0
    assert report.jitter_ms.p99 is not None and report.jitter_ms.p99 < 30
    assert step.relay_cpu_percent is not None  # local coturn found through /proc
    assert report.model_dump()["rtt_ms"].keys() == {"p50", "p99"}


def test_allocations_and_channels_are_refreshed_while_calls_run(
    make_plan: PlanFactory, load_run: RunFactory
) -> None:
    plan = make_plan("udp", calls=1, duration_s=2.0, refresh_s=0.4, rebind_s=0.5)
    report = run_bounded(run_load(plan, load_run()), 30)
    (call,) = report.steps[0].call_results
    assert call.refreshes >= 4 and call.rebinds >= 4  # two allocations, several rounds each
    assert call.a_to_b.lost == 0 and call.b_to_a.lost == 0 and report.ok


def test_a_killed_relay_shows_up_as_loss_and_ends_the_ramp(
    relay: LoopbackCoturn, make_plan: PlanFactory, load_run: RunFactory
) -> None:
    plan = make_plan("udp", ramp=Ramp(start=2, step=1, max=4, step_s=2.0))
    assert relay.process.process is not None
    pid = relay.process.process.pid

    async def scenario() -> LoadReport:
        loop = asyncio.get_running_loop()

        def on_step(step: StepReport) -> None:
            if step.index == 0:  # step 1 runs: kill the relay half way through it
                loop.call_later(0.5, os.kill, pid, signal.SIGKILL)

        return await run_load(plan, load_run(progress=on_step))

    report = run_bounded(scenario(), 30)
    first, second = report.steps[0], report.steps[1]
    assert first.ok and first.loss_percent == 0.0
    assert not second.ok and second.loss_percent > 10
    assert any("lost" in problem for problem in second.problems)
    assert report.capacity == 2 and report.stopped_by == "capacity"
    assert [s.index for s in report.steps if not s.partial] == [0, 1]  # the ramp went no further
    assert report.bottleneck is not None


def test_shards_merge_into_one_report_with_recomputed_percentiles(
    load_command: list[str], tmp_path: Path, callops_run: CallopsRun
) -> None:
    common = [*load_command, "--calls", "4", "--duration", "1.5"]
    shards = []
    for index in (0, 1):
        path = tmp_path / f"shard{index}.json"
        done = callops_run(*common, "--workers", "1", "--shard", f"{index}/2", "--report", str(path))
        assert done.returncode == 0, done.stderr
        shards.append(LoadReport.model_validate_json(path.read_text()))
    assert [sorted(c.call for c in s.steps[0].call_results) for s in shards] == [[1, 3], [2, 4]]
    merged_path = tmp_path / "merged.json"
    chart = tmp_path / "merged.png"
    done = callops_run(
        "load",
        "merge",
        *(str(tmp_path / f"shard{i}.json") for i in (0, 1)),
        "--report",
        str(merged_path),
        "--chart",
        str(chart),
    )
    assert done.returncode == 0, done.stderr
    merged = LoadReport.model_validate_json(merged_path.read_text())
    assert merged.shards == [0, 1] and merged.capacity == 4 and merged.completed == 4
    step = merged.steps[0]
    assert sorted(c.call for c in step.call_results) == [1, 2, 3, 4]
    assert step.packets_sent == sum(s.steps[0].packets_sent for s in shards)
    # pooled histograms, not an average of the shards' percentiles
    pooled = sum(int(v) for k, v in step.histograms.rtt_us.items() if k.isdigit())
    assert pooled == sum(
        int(v) for s in shards for k, v in s.steps[0].histograms.rtt_us.items() if k.isdigit()
    )
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert "capacity: 4 concurrent voice calls" in done.stdout
    bad = callops_run("load", "merge", str(merged_path), str(tmp_path / "shard0.json"))
    assert bad.returncode == 2 and "a shard appears in more than one report" in bad.stderr


def test_sigterm_stops_within_a_second_and_writes_the_report(load_command: list[str], tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    junit = tmp_path / "junit.xml"
    argv = [
        sys.executable,
        "-m",
        "callops",
        *load_command,
        "--ramp",
        "--ramp-start",
        "2",
        "--ramp-step",
        "2",
        "--ramp-max",
        "20",
        "--step-duration",
        "2",
        "--workers",
        "2",
        "--report",
        str(report_path),
        "--junit",
        str(junit),
    ]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            lines = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # wait for the first finished step: load is running
                line = process.stdout.readline()
                lines.append(line)
                if line.split()[:1] == ["0"]:
                    break
            else:
                pytest.fail(f"no step row: {lines}")
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
            elapsed = time.monotonic() - sent
            process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert elapsed < 1.0, f"took {elapsed:.2f} s to stop"
    assert process.returncode == 1
    report = json.loads(report_path.read_text())
    assert report["stopped_by"] == "signal"
    assert report["steps"][0]["ok"] and report["steps"][-1]["partial"]
    assert "<testsuite" in junit.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calls", "700"], "the plan reaches 700 concurrent calls, over the cap of 600"),
        (["--calls", "300", "--profile", "video"], "packets/s at its peak, over the cap of 60000"),
        (["--duration", "1000"], "the plan runs 1000 s, over the cap of 900 s"),
        (["--ramp", "--step-duration", "60"], "the plan runs 1200 s, over the cap of 900 s"),
    ],
)
def test_caps_refuse_an_over_limit_plan_with_exit_2(
    relay: LoopbackCoturn, args: list[str], message: str, callops_run: CallopsRun
) -> None:
    done = callops_run(
        "load", "--turn", relay.turn_udp, *args, env={"CALLOPS_TURN_SECRET": relay.secret.reveal()}
    )
    assert done.returncode == 2
    assert message in done.stderr and "hint:" in done.stderr
    assert relay.secret.reveal() not in done.stderr + done.stdout


def test_raised_cap_allows_the_plan(relay: LoopbackCoturn, callops_run: CallopsRun) -> None:
    done = callops_run(
        "load",
        "--turn",
        relay.turn_udp,
        "--calls",
        "3",
        "--duration",
        "1",
        "--max-calls",
        "3",
        "--workers",
        "1",
        "--json",
        env={"CALLOPS_TURN_SECRET": relay.secret.reveal()},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for key in (
        "profile",
        "transport",
        "calls",
        "completed",
        "loss_percent",
        "jitter_ms",
        "rtt_ms",
        "capacity",
        "steps",
        "sample_calls",
    ):
        assert key in report
    assert report["calls"] == 3 and report["completed"] == 3 and report["capacity"] == 3


def test_a_sampled_real_call_through_the_loaded_relay_reports_mos(
    make_plan: PlanFactory, load_run: RunFactory, relay: LoopbackCoturn
) -> None:
    from callops.orchestrator.load.runner import SampleCallAuth

    plan = make_plan("udp", calls=4, duration_s=8.0)
    report = run_bounded(
        run_load(plan, load_run(sample_calls=1, sample_auth=SampleCallAuth(secret=relay.secret))), 60
    )
    (sample,) = report.sample_calls
    assert sample.ok, sample.failure
    assert sample.mos is not None and sample.mos > 4.0 and sample.calls_running == 4
    assert report.ok and report.steps[0].loss_percent == 0.0


def test_an_allocation_quota_is_named_as_the_bottleneck(tmp_path: Path) -> None:
    import secrets as _secrets

    from callops.secret import Secret
    from callops.turn.coturn import start_loopback_coturn
    from callops.turn.credentials import rest_credentials

    secret = Secret(_secrets.token_hex(16), source="test")
    quota = start_loopback_coturn(
        tmp_path / "quota", secret=secret, extra=["allow-loopback-peers", "user-quota=3"], rfc5780=False
    )
    try:
        creds = rest_credentials(secret, "load-test")
        plan = LoadPlan(turn=quota.turn_udp, calls=2, duration_s=1.0, workers=1)
        report = run_bounded(run_load(plan, LoadRun(creds.username, Secret(creds.credential, "test"))), 30)
    finally:
        quota.process.stop()
    (step,) = report.steps
    assert (step.active, step.failed) == (1, 1) and step.allocation_failures == {"486": 1}
    assert report.capacity is None and report.bottleneck is not None
    assert report.bottleneck.startswith("relay allocation limit (1x 486")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_relay_that_does_not_listen_fails_the_calls_with_the_reason(transport: str) -> None:
    from callops.secret import Secret
    from callops.turn.coturn import free_port

    plan = LoadPlan(
        turn=f"turn:127.0.0.1:{free_port()}?transport={transport}", calls=1, duration_s=1.0, workers=1
    )
    report = run_bounded(run_load(plan, LoadRun("1:nobody", Secret("x", "test"))), 30)
    (step,) = report.steps
    assert step.failed == 1 and "Connection refused" in step.problems[0]
    assert report.capacity is None and report.bottleneck is not None
    assert report.bottleneck.startswith("call failures")
