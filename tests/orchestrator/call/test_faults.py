"""Calls under real faults (docs/call.md "Mid-call health"): each test asserts on the call report.

The relay is a real coturn, killed with SIGKILL or paused with SIGSTOP; the emulator is a real
``callops emulator serve`` process, killed mid-call; packet loss is injected with iptables
(``-m statistic --mode random``) inside a network namespace that holds the whole call.
Run with ``flock /tmp/callops-heavy.lock`` (timing bounds, network namespaces).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.call.embedded import EmbeddedTurn
from callops.orchestrator.call.environment import turn_server
from callops.orchestrator.call.quality import estimate_mos
from callops.orchestrator.call.report import CallReport
from callops.orchestrator.call.runs import CallEnvironment, CallRun, CallSettings
from callops.orchestrator.lab.netns import lab_environment_problem
from callops.testing import run_bounded

#: the issue's bound: a dropped call is reported within this many seconds of the fault
DROP_REPORT_BOUND_S = 5.0
MEDIA_MARK = "media decoded both ways"


def _settings(**overrides: Any) -> CallSettings:
    values: dict[str, Any] = {"ice_timeout_s": 20.0, "media_timeout_s": 20.0, "step_timeout_s": 20.0}
    values.update(overrides)
    return CallSettings(**values)


async def _media_flowing(run: CallRun, frames: int, within: float = 30.0) -> None:
    """Until both directions decoded ``frames`` audio frames (bounded)."""
    deadline = time.monotonic() + within
    while True:
        peers = [getattr(role.leg, "peer", None) for role in run.roles]
        if all(p is not None and "audio" in p.sinks and p.sinks["audio"].frames >= frames for p in peers):
            return
        assert time.monotonic() < deadline, f"no {frames} decoded frames each way within {within:g} s"
        if run.failure is not None:
            raise AssertionError(f"the call failed before its media phase: {run.failure}")
        await asyncio.sleep(0.02)  # polling a condition, bounded above


def _relay_env(turn: EmbeddedTurn, base_url: str) -> CallEnvironment:
    return CallEnvironment(
        base_url=base_url,
        ice_servers=[turn_server(turn.url, secret=turn.secret, user=None, password=None)],
        turn_url=turn.url,
    )


@pytest.fixture
def relay(local_turn: EmbeddedTurn) -> EmbeddedTurn:
    return local_turn


def _pid(turn: EmbeddedTurn) -> int:
    assert turn.process is not None and turn.process.process is not None
    return turn.process.process.pid


# -- the relay dies or stalls ---------------------------------------------------------------------


def test_relay_killed_5s_into_a_20s_relayed_call_ends_dropped_with_real_loss_within_5s(
    relay: EmbeddedTurn, tmp_path: Path, callops_cli: Callable[..., Any]
) -> None:
    secret_file = tmp_path / "turn-secret"
    secret_file.write_text(relay.secret.reveal())
    secret_file.chmod(0o600)
    child = callops_cli(
        "-v", "call", "--turn", relay.url, "--secret-file", str(secret_file),
        "--policy", "relay", "--duration", "20", "--ice-timeout", "20", "--json",
    )  # fmt: skip
    child.err.wait_for(MEDIA_MARK, 60)
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(timeout=5.0)  # five seconds of a healthy call: it must not end by itself
    os.kill(_pid(relay), signal.SIGKILL)
    killed = time.monotonic()
    code = child.wait(timeout=30)
    after = time.monotonic() - killed
    out = child.out.text()
    report = CallReport.model_validate_json(out)
    assert code == 1, child.err.text()
    assert after < DROP_REPORT_BOUND_S, f"report {after:.2f} s after the kill"
    assert (report.ok, report.outcome) == (False, "dropped")
    assert report.failure is not None and report.failure.startswith("call dropped: media ")
    assert "dropped" in report.timeline_ms
    assert {(i.direction, i.to_ms) for i in report.interruptions} == {
        ("agent->consumer", None),
        ("consumer->agent", None),
    }
    for media in report.stats.media:
        # the tail that stopped is lost: at 50 packets/s, 3 s before the verdict are >= 100 packets
        assert media.packets_lost >= 100 and media.loss_percent > 20, media
        assert media.packets_lost == media.packets_sent - media.packets_received
    assert all(q.band == "bad" for q in report.stats.audio_quality)


def test_relay_paused_for_2s_is_one_interruption_per_direction_and_the_call_stays_connected(
    relay: EmbeddedTurn,
) -> None:
    async def body() -> tuple[CallReport, float]:
        from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

        emulator = Emulator(EmulatorConfig())
        await emulator.start()
        try:
            run = CallRun(_settings(policy="relay", duration_s=6.0), _relay_env(relay, emulator.base_url))
            task = asyncio.create_task(run.run())
            await _media_flowing(run, 50)
            os.kill(_pid(relay), signal.SIGSTOP)
            try:
                await asyncio.sleep(2.0)  # the fault itself: the relay is paused for 2 s
            finally:
                os.kill(_pid(relay), signal.SIGCONT)
            report = await task
            return report, run.settings.duration_s
        finally:
            await emulator.stop()

    report, _ = run_bounded(body(), 90)
    assert (report.ok, report.outcome) == (True, "connected"), report.failure
    assert sorted(i.direction for i in report.interruptions) == ["agent->consumer", "consumer->agent"]
    for gap in report.interruptions:
        assert gap.to_ms is not None and 1500 <= gap.to_ms - gap.from_ms <= 3500, gap
    for media in report.stats.media:
        assert 1.5 <= media.interrupted_s <= 3.5
    for quality in report.stats.audio_quality:
        # the 2 s gap counts as lost in the estimate (a packet 2 s late is lost to the listener)
        assert quality.loss_percent >= 15.0 and quality.band != "good", quality


# -- the emulator dies ---------------------------------------------------------------------------


def test_emulator_killed_mid_call_media_continues_and_the_report_says_closed_never_arrived(
    callops_cli: Callable[..., Any],
) -> None:
    emulator = callops_cli("emulator", "serve", "--port", "0")
    line = emulator.out.wait_for("emulator on ", 30)
    base_url = line.split("emulator on ", 1)[1].split()[0]

    async def body() -> CallReport:
        run = CallRun(_settings(duration_s=3.0), CallEnvironment(base_url=base_url))
        task = asyncio.create_task(run.run())
        await _media_flowing(run, 10)
        emulator.proc.kill()
        return await task

    report = run_bounded(body(), 90)
    assert report.ok is False and report.outcome == "connected"
    assert report.failure is not None
    assert (
        "CLOSED never arrived" in report.failure and "connection to the emulator was lost" in report.failure
    )
    assert "media kept flowing" in report.failure
    assert "closed" not in report.timeline_ms
    assert report.interruptions == [] and report.transport_events == []
    for media in report.stats.media:
        assert media.packets_received > 100 and media.loss_percent < 5.0, media


# -- random packet loss in a network namespace --------------------------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    name = f"callops-fault-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@pytest.mark.parametrize(
    ("probability", "low", "high"),
    [(0.05, 1.5, 10.0), (0.20, 12.0, 30.0)],
    ids=["5%", "20%"],
)
def test_random_loss_injected_with_iptables_shows_in_loss_and_mos(
    netns: str, probability: float, low: float, high: float, callops_cli: Callable[..., Any]
) -> None:
    # The whole call (emulator, coturn, both peers) on the namespace's loopback; once media flows
    # each UDP datagram into the namespace is dropped with the given probability.
    prefix = ("ip", "netns", "exec", netns)
    child = callops_cli("-v", "call", "--duration", "6", "--json", prefix=prefix)
    child.err.wait_for(MEDIA_MARK, 60)
    subprocess.run(
        [*prefix, "iptables", "-A", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "random",
         "--probability", f"{probability}", "-j", "DROP"],
        check=True, timeout=10,
    )  # fmt: skip
    assert child.wait(timeout=60) == 0, child.err.text()
    out = child.out.text()
    report = CallReport.model_validate_json(out)
    assert report.ok and report.outcome == "connected", report.failure
    for media in report.stats.media:
        assert low <= media.loss_percent <= high, media
        assert media.packets_lost == media.packets_sent - media.packets_received
    for quality in report.stats.audio_quality:
        media = next(m for m in report.stats.media if m.direction == quality.direction)
        assert quality.loss_percent >= media.loss_percent
        assert quality.mos == estimate_mos(media.rtt_ms or 0.0, media.jitter_ms, quality.loss_percent)
        assert quality.mos < 4.3  # a clean loopback call estimates about 4.4
        if probability >= 0.2:
            assert quality.band == "bad"
    json.dumps(report.model_dump())  # the report stays serialisable
