"""Time from a fault to the ``dropped`` verdict: the relay of a relayed call killed mid-call.

Each run: a fresh loopback coturn, one voice call with ``policy=relay`` and ``--duration 20``
through the in-process emulator; once both sides decoded 1 s of audio the coturn is killed with
SIGKILL. Measured from the kill:

* ``kill_to_verdict_ms``: to the ``dropped`` mark on the call's timeline (the health watcher's
  verdict: last frame + 3 s + up to one 100 ms poll);
* ``kill_to_report_ms``: to the report in hand (hang-up and release of the peers included).

Baseline: before mid-call health, the call ran its whole duration and said ``connected``: the
verdict came at the planned hang-up (``baseline_ms``, 19 s after the kill), and it was wrong.

Run: ``python -m bench.call_faults [RUNS]`` from the repository root (as one heavy job:
``flock /tmp/callops-heavy.lock``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from bench._common import median, percentile, write_result
from callops.orchestrator.call.embedded import EmbeddedTurn
from callops.orchestrator.call.environment import turn_server
from callops.orchestrator.call.runs import CallEnvironment, CallRun, CallSettings
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
DURATION_S = 20.0


async def one_run(base_url: str) -> tuple[float, float, str]:
    with EmbeddedTurn() as turn:
        env = CallEnvironment(
            base_url=base_url,
            ice_servers=[turn_server(turn.url, secret=turn.secret, user=None, password=None)],
            turn_url=turn.url,
        )
        run = CallRun(CallSettings(policy="relay", duration_s=DURATION_S), env)
        task = asyncio.create_task(run.run())
        deadline = time.monotonic() + 30
        while not all(
            (peer := getattr(role.leg, "peer", None)) is not None
            and "audio" in peer.sinks
            and peer.sinks["audio"].frames >= 50
            for role in run.roles
        ):
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"no media: {(await task).failure}")
            await asyncio.sleep(0.01)
        assert turn.process is not None and turn.process.process is not None
        os.kill(turn.process.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        report = await task
        reported = time.monotonic()
        verdict = run.timeline.at("dropped")
        if verdict is None:
            raise RuntimeError(f"not dropped: {report.outcome} {report.failure}")
        return (verdict - killed) * 1000.0, (reported - killed) * 1000.0, report.outcome


async def main() -> None:
    emulator = Emulator(EmulatorConfig())
    await emulator.start()
    verdicts: list[float] = []
    reports: list[float] = []
    try:
        for _ in range(RUNS):
            to_verdict, to_report, outcome = await one_run(emulator.base_url)
            assert outcome == "dropped"
            verdicts.append(round(to_verdict, 1))
            reports.append(round(to_report, 1))
    finally:
        await emulator.stop()
    baseline = (DURATION_S - 1.0) * 1000.0
    write_result(
        "call_faults",
        {
            "runs": RUNS,
            "kill_to_verdict_ms": {"p50": median(verdicts), "max": max(verdicts), "all": verdicts},
            "kill_to_report_ms": {"p50": median(reports), "p95": percentile(reports, 0.95), "all": reports},
            "baseline_ms": baseline,
            "report_vs_baseline": round(median(reports) / baseline, 3),
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
