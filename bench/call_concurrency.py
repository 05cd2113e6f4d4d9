"""Concurrency: many simultaneous relayed voice calls (2 peers each) through one local coturn.

For each level N (default 50; pass more as arguments, e.g. ``50 75 100``): N calls start at once
on the whole invitation path (in-process emulator, ``policy=relay``, embedded coturn), each with
``DURATION`` s of media. Senders send a pre-encoded Opus tone (``pre_encoded_audio``): all 2N
peers live in this one Python process, and per-frame encoding (an executor hop per 20 ms frame
and aiortc's pure-Python audio-level computation) would make the senders, not the path, the
bottleneck; receivers still decode every packet. The first level is repeated with per-frame
encoding for comparison. ``audio_packets_per_s`` shows whether media kept real time (50/s).

Reported: success rate, p50/p95 time from ``accepted`` (and from the invitation) to
``ice_connected``, CPU seconds per call-minute (this process + coturn, from
getrusage and /proc), and the largest level that held 100 % success.

Relay-side reference: coturn's own load generator ``turnutils_uclient -m N -y`` (N client pairs,
20 ms packet interval like Opus, 200-byte messages) against a fresh coturn, with coturn's CPU.

With ``CALL_WORKERS=W`` the calls of a level are spread over W worker processes (Python peers are
bound to one core per process by the GIL); this process then runs only the emulator and coturn
and sums the workers' CPU.

Run: ``[CALL_WORKERS=2] [CALL_DURATION=10] python -m bench.call_concurrency [N ...]`` from the
repository root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator

from bench._common import median, percentile, write_result
from callops.orchestrator.call.embedded import EmbeddedTurn
from callops.orchestrator.call.environment import EnvironmentRequest, call_environment
from callops.orchestrator.call.report import CallReport
from callops.orchestrator.call.runs import CallSettings, run_call
from callops.orchestrator.call.smoke import SmokeReport, run_smoke, summarize
from callops.secret import Secret, read_secret_file

DURATION = float(os.environ.get("CALL_DURATION", "10"))
#: worker processes sharing one emulator and coturn (1: every call in this process)
WORKERS = int(os.environ.get("CALL_WORKERS", "1"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def settings_for(pre_encoded_audio: bool) -> CallSettings:
    return CallSettings(
        policy="relay",
        duration_s=DURATION,
        ice_timeout_s=20.0,
        media_timeout_s=20.0,
        step_timeout_s=30.0,
        pre_encoded_audio=pre_encoded_audio,
    )


async def level(n: int, *, pre_encoded_audio: bool = True, workers: int = 1) -> dict[str, object]:
    """N simultaneous calls: in this process (``workers=1``), or spread over worker processes that
    share this process's emulator and coturn (``workers>1``)."""
    from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

    turn = EmbeddedTurn()
    turn.start()
    try:
        assert turn.process is not None and turn.process.process is not None
        coturn_pid = turn.process.process.pid
        if workers == 1:
            request = EnvironmentRequest(embedded_turn=False, turn_url=turn.url, turn_secret=turn.secret)
            async with call_environment(request) as env:
                cpu0, coturn0, wall0 = self_cpu(), process_cpu(coturn_pid), time.monotonic()
                report = await run_smoke(
                    lambda _i: run_call(settings_for(pre_encoded_audio), env), calls=n, concurrency=n
                )
                cpu1, coturn1, wall1 = self_cpu(), process_cpu(coturn_pid), time.monotonic()
            calls, worker_cpu = report.calls, 0.0
        else:
            async with Emulator(EmulatorConfig()) as emulator, _secret_file(turn.secret) as secret_file:
                cpu0, coturn0, wall0 = self_cpu(), process_cpu(coturn_pid), time.monotonic()
                shares = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
                outputs = await asyncio.gather(
                    *(
                        _worker(emulator.base_url, turn.url, secret_file, share, pre_encoded_audio)
                        for share in shares
                    )
                )
                cpu1, coturn1, wall1 = self_cpu(), process_cpu(coturn_pid), time.monotonic()
            calls = [call for report, _ in outputs for call in report.calls]
            worker_cpu = sum(cpu for _, cpu in outputs)
    finally:
        turn.stop()
    return analyse(
        n,
        calls,
        pre_encoded_audio=pre_encoded_audio,
        workers=workers,
        cpu_callops=cpu1 - cpu0 + worker_cpu,
        cpu_coturn=coturn1 - coturn0,
        wall=wall1 - wall0,
    )


@contextlib.asynccontextmanager
async def _secret_file(secret: Secret) -> AsyncIterator[str]:
    """The TURN secret in a private temporary file, for worker processes (never on a command line)."""
    with tempfile.TemporaryDirectory(prefix="callops-bench-") as tmp:
        path = os.path.join(tmp, "turn-secret")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret.reveal())
        yield path


async def _worker(
    emulator_url: str, turn_url: str, secret_file: str, calls: int, pre_encoded_audio: bool
) -> tuple[SmokeReport, float]:
    argv = [sys.executable, "-m", "bench.call_concurrency", "--worker", emulator_url, turn_url, secret_file]
    argv += [str(calls), "1" if pre_encoded_audio else "0"]
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(process.communicate(), DURATION * 10 + 300)
    document = json.loads(out)
    return SmokeReport.model_validate(document["report"]), float(document["cpu_s"])


async def worker_main(emulator_url: str, turn_url: str, secret_file: str, calls: int, pre: bool) -> None:
    """A worker process: ``calls`` simultaneous calls against the parent's emulator and coturn."""
    request = EnvironmentRequest(
        emulator_url=emulator_url,
        turn_url=turn_url,
        turn_secret=read_secret_file(secret_file, what="TURN secret"),
        embedded_turn=False,
    )
    async with call_environment(request) as env:
        report = await run_smoke(lambda _i: run_call(settings_for(pre), env), calls=calls, concurrency=calls)
    print(json.dumps({"report": report.model_dump(mode="json"), "cpu_s": self_cpu()}))


def analyse(
    n: int,
    calls: list[CallReport],
    *,
    pre_encoded_audio: bool,
    workers: int,
    cpu_callops: float,
    cpu_coturn: float,
    wall: float,
) -> dict[str, object]:
    to_ice = [
        c.timeline_ms["ice_connected"] - c.timeline_ms["accepted"]
        for c in calls
        if "ice_connected" in c.timeline_ms
    ]
    from_invite = [c.timeline_ms["ice_connected"] for c in calls if "ice_connected" in c.timeline_ms]
    call_minutes = sum(c.stats.duration_s for c in calls) / 60.0
    # media health: received audio packets per second and direction (Opus at 20 ms: 50/s)
    pps = [
        m.packets_received / c.stats.duration_s
        for c in calls
        if c.stats.duration_s > 0
        for m in c.stats.media
        if m.kind == "audio"
    ]
    loss = [m.loss_percent for c in calls for m in c.stats.media if m.kind == "audio"]
    summary = summarize(calls)
    return {
        "calls": n,
        "peers": 2 * n,
        "processes": workers,
        "audio_source": "pre-encoded Opus tone" if pre_encoded_audio else "tone encoded per 20 ms frame",
        "passed": summary.passed,
        "success_rate": summary.success_rate if len(calls) == n else round(summary.passed / n, 4),
        "accepted_to_ice_connected_ms": {"p50": median(to_ice), "p95": percentile(to_ice, 0.95)},
        "invited_to_ice_connected_ms": {"p50": median(from_invite), "p95": percentile(from_invite, 0.95)},
        "first_media_p95_ms": summary.first_media_p95_ms,
        "audio_packets_per_s": {"p50": median(pps), "p5": percentile(pps, 0.05)},
        "audio_loss_percent_max": max(loss, default=0.0),
        "pair_types": summary.pair_types,
        "wall_s": round(wall, 2),
        "cpu_s_callops": round(cpu_callops, 2),
        "cpu_s_coturn": round(cpu_coturn, 2),
        "cpu_s_per_call_minute": round((cpu_callops + cpu_coturn) / call_minutes, 2)
        if call_minutes
        else None,
        "coturn_cpu_s_per_call_minute": round(cpu_coturn / call_minutes, 3) if call_minutes else None,
        "sample_failures": [c.failure for c in calls if not c.ok][:5],
    }


def uclient_reference(n: int) -> dict[str, object]:
    """coturn's own load: ``turnutils_uclient -m n -y`` for DURATION s of 20 ms packets."""
    uclient = shutil.which("turnutils_uclient")
    if uclient is None:
        return {"skipped": "turnutils_uclient not installed"}
    messages = int(DURATION / 0.02)
    with EmbeddedTurn() as turn:
        assert turn.process is not None and turn.process.process is not None
        pid = turn.process.process.pid
        cpu0, wall0 = process_cpu(pid), time.monotonic()
        result = subprocess.run(
            [
                uclient,
                "-y",
                "-c",
                "-m",
                str(n),
                "-n",
                str(messages),
                "-l",
                "200",
                "-z",
                "20",
                "-W",
                turn.secret.reveal(),
                "-u",
                "uclient",
                "-p",
                str(turn.port),
                "127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=DURATION * 6 + 60,
        )
        cpu1, wall1 = process_cpu(pid), time.monotonic()
    tail = [line for line in result.stdout.splitlines() if "lost" in line.lower() or "loss" in line.lower()][
        -3:
    ]
    minutes = n * DURATION / 60.0
    return {
        "clients": n,
        "exit": result.returncode,
        "wall_s": round(wall1 - wall0, 2),
        "coturn_cpu_s": round(cpu1 - cpu0, 2),
        "coturn_cpu_s_per_session_minute": round((cpu1 - cpu0) / minutes, 3),
        "summary": tail,
    }


async def main() -> None:
    levels = [int(a) for a in sys.argv[1:]] or [50]
    results = []
    largest = None
    for n in levels:
        result = await level(n, workers=WORKERS)
        results.append(result)
        print(result, flush=True)
        if result["success_rate"] == 1.0:
            largest = n
        else:
            break
    # the same first level with per-frame Opus encoding in every sender, for comparison
    per_frame = await level(levels[0], pre_encoded_audio=False, workers=WORKERS)
    print(per_frame, flush=True)
    reference = uclient_reference(levels[0])
    write_result(
        "call_concurrency",
        {
            "duration_s": DURATION,
            "worker_processes": WORKERS,
            "levels": results,
            "largest_level_at_100_percent": largest,
            "per_frame_encoding_at_first_level": per_frame,
            "uclient_reference": reference,
        },
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        url, turn_url, secret_path, count, pre = sys.argv[2:7]
        asyncio.run(worker_main(url, turn_url, secret_path, int(count), pre == "1"))
    else:
        asyncio.run(main())
