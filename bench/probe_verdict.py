"""Wall time of ``callops probe`` to a verdict, against coturn's own tools for the same facts.

In the NAT lab (consumer behind a ``cone`` NAT, the agent ``open``), each run is a whole process,
start to exit: ``callops probe`` (STUN, RFC 5780 NAT discovery, relay data over UDP, TCP and TLS,
all concurrently) against ``turnutils_natdiscovery -m -f``, ``turnutils_stunclient`` and
``turnutils_uclient`` over UDP, TCP and TLS run one after the other. Then the deadline case:
``callops probe --timeout T`` against servers that never answer; ``callops probe --profile
liveperson`` (the one-site probes, the relay-range test and both bandwidth flows, 2.5 s each) as a
whole process; and the bandwidth test's own CPU cost: one 2.6 Mbit/s video flow through coturn on
loopback, the process CPU time of this (the client) process over the flow's wall time -- coturn's
CPU is not counted.

Needs root (network namespaces) and coturn. Run as ``python -m bench.probe_verdict [runs]``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import median, percentile, write_result
from callops.orchestrator.lab.lifecycle import LabState, lab_down, lab_up
from callops.orchestrator.lab.netns import exec_argv, require_lab_environment

PREFIX = "probe"
SILENT = "203.0.113.99"  # on the lab's internet segment, but nobody has it: no answer, no ICMP
DEADLINE = 2.0


def timed(argv: list[str], *, ok_codes: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if res.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(argv)} exited {res.returncode}: {res.stderr[-500:]}")
    return elapsed


def timed_until(argv: list[str], marker: str, limit: float = 30.0) -> float:
    """Seconds until ``marker`` appears in the output (the process is then stopped)."""
    started = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if marker in line:
                    return time.perf_counter() - started
                if time.perf_counter() - started > limit:
                    break
        finally:
            proc.kill()
    raise SystemExit(f"{' '.join(argv)}: no {marker!r} within {limit} s")


def commands(state: LabState) -> dict[str, list[str]]:
    ns = state.namespace("consumer")
    turn = state.turn_addresses[0]
    secret = Path(state.secret_file).read_text().strip()
    uclient = [
        "turnutils_uclient",
        "-y",
        "-n",
        "3",
        "-m",
        "1",
        "-l",
        "100",
        "-W",
        secret,
        "-r",
        "lab.callops.test",
    ]
    return {
        "callops_probe": exec_argv(
            ns, [sys.executable, "-m", "callops", "probe", "--config", state.config_file, "--json"]
        ),
        "natdiscovery": exec_argv(ns, ["turnutils_natdiscovery", "-m", "-f", turn]),
        "stunclient": exec_argv(ns, ["turnutils_stunclient", turn]),
        "uclient_udp": exec_argv(ns, [*uclient, turn]),
        "uclient_tcp": exec_argv(ns, [*uclient, "-t", turn]),
        "uclient_tls": exec_argv(ns, [*uclient, "-S", "-p", "443", turn]),
    }


def main(runs: int = 7) -> None:
    require_lab_environment()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            state = lab_up("open", "cone", prefix=PREFIX, root=root)
            cmds = commands(state)
            times: dict[str, list[float]] = {name: [] for name in cmds}
            for _ in range(runs):
                for name, argv in cmds.items():
                    if name == "stunclient":
                        # It never exits behind a filtering NAT (it waits for CHANGE-REQUEST answers
                        # forever): timed to its first mapped address, the fact the probe needs.
                        times[name].append(timed_until(argv, "reflexive addr"))
                    else:
                        times[name].append(timed(argv))
            silent = exec_argv(
                state.namespace("consumer"),
                [
                    sys.executable,
                    "-m",
                    "callops",
                    "probe",
                    "--stun",
                    f"stun:{SILENT}:3478",
                    "--turn",
                    f"turn:{SILENT}:3478?transport=udp",
                    "--turn",
                    f"turns:{SILENT}:443?transport=tcp",
                    "--secret-file",
                    state.secret_file,
                    "--timeout",
                    str(DEADLINE),
                    "--json",
                ],
            )
            deadline_times = [timed(silent, ok_codes=(3,)) for _ in range(max(3, runs // 2))]
            profile = exec_argv(
                state.namespace("consumer"),
                [
                    sys.executable,
                    "-m",
                    "callops",
                    "probe",
                    "--config",
                    state.config_file,
                    "--profile",
                    "liveperson",
                ],
            )
            # exit 1: the lab's self-signed certificate fails the tls-certificate item
            profile_times = [timed(profile, ok_codes=(0, 1)) for _ in range(max(3, runs // 2))]
        finally:
            lab_down(PREFIX, root=root)
    medians = {name: round(median(values), 3) for name, values in times.items()}
    baseline = round(sum(medians[n] for n in medians if n != "callops_probe"), 3)
    result = {
        "runs": runs,
        "topology": {"agent": "open", "consumer": "cone"},
        "median_s": medians,
        "p90_s": {name: round(percentile(values, 0.9), 3) for name, values in times.items()},
        "coturn_tools_sequential_median_s": baseline,
        "ratio_probe_to_coturn_tools": round(medians["callops_probe"] / baseline, 3),
        "ratio_probe_to_natdiscovery": round(medians["callops_probe"] / medians["natdiscovery"], 3),
        "target_verdict_s": 1.5,
        "deadline": {
            "timeout_s": DEADLINE,
            "median_s": round(median(deadline_times), 3),
            "max_s": round(max(deadline_times), 3),
            "overrun_median_s": round(median(deadline_times) - DEADLINE, 3),
        },
        "profile_liveperson": {
            "median_s": round(median(profile_times), 3),
            "max_s": round(max(profile_times), 3),
            "target_s": 10.0,
        },
        "bandwidth_cpu": bandwidth_cpu(runs=max(3, runs // 2)),
    }
    write_result("probe_verdict", result)


def bandwidth_cpu(runs: int, seconds: float = 4.0) -> dict[str, float]:
    """CPU share of one core that the bandwidth test's client uses for a 2.6 Mbit/s video flow."""
    from callops.secret import Secret
    from callops.turn.bandwidth import FlowSpec, bandwidth_test
    from callops.turn.coturn import start_loopback_coturn
    from callops.turn.credentials import rest_credentials

    shares, achieved = [], []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_loopback_coturn(
            Path(tmp), secret=Secret("bench-bandwidth-secret", "bench"), extra=["allow-loopback-peers"]
        )
        try:
            creds = rest_credentials(server.secret, "bench", ttl=600)
            spec = FlowSpec("video", 2600, 1100, duration_s=seconds)
            for _ in range(runs):
                cpu, wall = time.process_time(), time.perf_counter()
                result = asyncio.run(
                    bandwidth_test(server.turn_udp, creds.username, creds.credential, seconds + 3, spec)
                )
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if result.data.flow is None:
                    raise SystemExit(f"bandwidth test failed: {result.error}")
                shares.append(cpu / wall)
                achieved.append(result.data.flow.achieved_kbps)
        finally:
            server.process.stop()
    return {
        "runs": runs,
        "flow_s": seconds,
        "target_kbps": 2600,
        "achieved_kbps_median": round(median(achieved), 1),
        "cpu_share_of_one_core_median": round(median(shares), 3),
        "cpu_share_of_one_core_max": round(max(shares), 3),
    }


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
