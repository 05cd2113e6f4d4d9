"""``callops load`` figures on this machine, against a local coturn (Debian's, default threads).

1. Generator cost: CPU per 1,000 relayed packets of ``callops load`` vs coturn's
   ``turnutils_uclient -y`` (client-to-client over channels) at the same packet count and the same
   nominal rate (50 packets/s per direction, 120-byte payloads); median of ``--runs``; the ratio
   (target: within 3x). Both the workers' steady-state CPU (from the report) and the whole
   process tree (Python start-up included) are given.
2. 500 concurrent voice calls (50,000 packets/s) from this 2-core machine: loss, relay and generator CPU.
3. Capacity ramps for voice and video (bounded: at most 12 and 20 steps of ``--step`` seconds).
4. Sampled aiortc calls' MOS at 50 %, 80 % and 100 % of the voice capacity.

The machine is shared: the load average and the machine's busy share are recorded before each
part. Usage: ``flock /tmp/callops-heavy.lock python3 bench/load_capacity.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import median, write_result
from callops.orchestrator.load.cpu import busy_percent, machine_cpu
from callops.secret import Secret
from callops.turn.coturn import LoopbackCoturn, start_loopback_coturn


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_state(window_s: float = 1.0) -> dict[str, float | None]:
    before = machine_cpu()
    time.sleep(window_s)
    return {"loadavg_1m": round(os.getloadavg()[0], 2), "busy_percent": busy_percent(before, machine_cpu())}


def _load(
    relay: LoopbackCoturn, secret_file: Path, *args: str, timeout: float = 400
) -> tuple[dict[str, Any], float]:
    """Run ``callops load ... --json``; the report and the CPU of the whole process tree."""
    cpu = _children_cpu()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "callops",
            "load",
            "--turn",
            relay.turn_udp,
            "--secret-file",
            str(secret_file),
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if not done.stdout.strip():
        raise RuntimeError(f"callops load failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout), _children_cpu() - cpu


def _uclient(relay: LoopbackCoturn, clients: int, messages: int) -> tuple[int, float, float]:
    """turnutils_uclient client-to-client: (packets received, CPU s, wall s)."""
    cpu, started = _children_cpu(), time.monotonic()
    done = subprocess.run(
        [
            "turnutils_uclient",
            "-y",
            "-c",
            "-m",
            str(clients),
            "-n",
            str(messages),
            "-l",
            "120",
            "-z",
            "20",
            "-W",
            relay.secret.reveal(),
            "-u",
            "bench",
            "-p",
            str(relay.port),
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall, used = time.monotonic() - started, _children_cpu() - cpu
    found = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n", done.stdout)
    if not found:
        raise RuntimeError(f"uclient output without totals: {done.stdout[-500:]} {done.stderr[-500:]}")
    return int(found[-1][1]), used, wall


def _worker_cpu_s(report: dict[str, Any]) -> float:
    return float(sum(s["generator_cpu_percent"] / 100 * s["duration_s"] for s in report["steps"]))


def _received(report: dict[str, Any]) -> int:
    return sum(int(s["packets_received"]) for s in report["steps"])


def generator_vs_uclient(
    relay: LoopbackCoturn, secret_file: Path, clients: int, messages: int, runs: int
) -> dict[str, Any]:
    """uclient first (its achieved rate decides ours: uclient does not keep its nominal -z 20),
    then callops load with as many voice calls (100 packets/s each) and as long as gives the same
    packet rate and count."""
    ours_steady, ours_total, theirs, rates = [], [], [], []
    for _ in range(runs):
        got, cpu, wall = _uclient(relay, clients, messages)
        theirs.append(1_000_000 * cpu / got)  # CPU ms per 1000 packets
        pps = got / wall
        calls = max(1, round(pps / 100))
        seconds = round(got / (calls * 100), 1)
        report, total_cpu = _load(
            relay, secret_file, "--calls", str(calls), "--duration", f"{seconds:g}", "--workers", "1"
        )
        received = _received(report)
        ours_steady.append(1_000_000 * _worker_cpu_s(report) / received)
        ours_total.append(1_000_000 * total_cpu / received)
        rates.append(
            {
                "uclient_pps": round(pps),
                "uclient_packets": got,
                "callops_calls": calls,
                "callops_seconds": seconds,
                "callops_pps": round(received / seconds),
                "callops_packets": received,
            }
        )
    result = {
        "uclient": f"turnutils_uclient -y -c -m {clients} -n {messages} -l 120 -z 20",
        "callops_worker_cpu_ms_per_1000_packets": round(median(ours_steady), 1),
        "callops_process_tree_cpu_ms_per_1000_packets": round(median(ours_total), 1),
        "uclient_cpu_ms_per_1000_packets": round(median(theirs), 1),
        "rates": rates,
    }
    result["ratio_worker_vs_uclient"] = round(median(ours_steady) / median(theirs), 2)
    result["ratio_process_tree_vs_uclient"] = round(median(ours_total) / median(theirs), 2)
    return result


def _step_summary(step: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "calls",
        "active",
        "failed",
        "loss_percent",
        "jitter_ms",
        "rtt_ms",
        "generator_cpu_percent",
        "relay_cpu_percent",
        "machine_cpu_percent",
        "skipped_frames",
        "send_drops",
        "packets_sent",
        "duration_s",
        "ok",
    )
    return {k: step[k] for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller, shorter runs (a smoke test of the bench)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=float, default=6.0, help="seconds per ramp step")
    parser.add_argument("--parts", default="ratio,500,capacity,mos")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    out: dict[str, Any] = {"machine_cpus": os.cpu_count(), "coturn": "Debian 4.6.1, default threads"}
    with tempfile.TemporaryDirectory() as tmp:
        secret = Secret(secrets.token_hex(16), source="bench")
        relay = start_loopback_coturn(
            Path(tmp) / "coturn", secret=secret, extra=["allow-loopback-peers"], rfc5780=False
        )
        secret_file = Path(tmp) / "secret"
        secret_file.write_text(secret.reveal())
        try:
            if "ratio" in parts:
                out["machine_before_ratio"] = _machine_state()
                clients, messages = (10, 200) if args.quick else (40, 500)
                out["generator_vs_uclient"] = generator_vs_uclient(
                    relay, secret_file, clients, messages, 1 if args.quick else args.runs
                )
            if "500" in parts:
                out["machine_before_500"] = _machine_state()
                calls = 50 if args.quick else 500
                report, tree_cpu = _load(
                    relay, secret_file, "--calls", str(calls), "--duration", "15", "--workers", "2"
                )
                out["voice_500_calls"] = {
                    **_step_summary(report["steps"][0]),
                    "packets_per_second_sent": round(
                        report["steps"][0]["packets_sent"] / report["steps"][0]["duration_s"]
                    ),
                    "process_tree_cpu_s": round(tree_cpu, 2),
                    "ok": report["ok"],
                }
            capacity: dict[str, int | None] = {}
            if "capacity" in parts:
                ramps = (("voice", 50, 50, 600), ("video", 5, 5, 100))
                if args.quick:
                    ramps = (("voice", 10, 10, 60), ("video", 1, 1, 10))
                for profile, start, step, top in ramps:
                    out[f"machine_before_{profile}_ramp"] = _machine_state()
                    report, _ = _load(
                        relay,
                        secret_file,
                        "--profile",
                        profile,
                        "--ramp",
                        "--ramp-start",
                        str(start),
                        "--ramp-step",
                        str(step),
                        "--ramp-max",
                        str(top),
                        "--step-duration",
                        f"{args.step:g}",
                        "--workers",
                        "2",
                    )
                    capacity[profile] = report["capacity"]
                    out[f"capacity_{profile}"] = {
                        "capacity": report["capacity"],
                        "bottleneck": report["bottleneck"],
                        "steps": [_step_summary(s) for s in report["steps"]],
                    }
            if "mos" in parts and capacity.get("voice"):
                cap = int(capacity["voice"] or 0)
                out["machine_before_mos"] = _machine_state()
                mos: dict[str, Any] = {}
                for share in (0.5, 0.8, 1.0):
                    calls = max(1, int(cap * share))
                    report, _ = _load(
                        relay,
                        secret_file,
                        "--calls",
                        str(calls),
                        "--duration",
                        "14",
                        "--workers",
                        "2",
                        "--sample-calls",
                        "2",
                    )
                    mos[f"{int(share * 100)}%"] = {
                        "calls": calls,
                        "loss_percent": report["loss_percent"],
                        "jitter_ms": report["jitter_ms"],
                        "samples": [
                            {k: s[k] for k in ("ok", "mos", "rtt_ms", "jitter_ms", "loss_percent", "failure")}
                            for s in report["sample_calls"]
                        ],
                    }
                out["sampled_mos"] = mos
        finally:
            relay.process.stop()
    out["machine_after"] = _machine_state()
    write_result("load_capacity", out)


if __name__ == "__main__":
    main()
