"""Bench: the full STUN/TURN probe set against a local coturn, and the same checks with coturn's tools.

Run as ``python -m bench.turn_probes [--runs N]`` from the repository root. It starts its own coturn on
loopback (REST secret, UDP/TCP + TLS listeners, loopback peers allowed) and measures:

* ``set_ms``: ``run_probe_set`` in-process after imports -- STUN over UDP and TCP, TURN allocation
  over UDP, TCP and TLS, and the relay data test (10 packets), all concurrently under one deadline;
* ``cli_ms``: the ``callops turn probe`` process for the same URIs, from start to exit;
* coturn's own tools for the same checks: ``turnutils_stunclient`` (STUN/UDP) and
  ``turnutils_uclient`` over UDP, TCP (``-t``) and TLS (``-S``) with REST credentials (``-W``)
  against a ``turnutils_peer`` -- run concurrently, so their figure is the slowest tool.

Medians of several runs and the ratio coturn-tools / callops go to ``bench/results/turn_probes.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import median, percentile, write_result
from callops.secret import Secret
from callops.turn.coturn import LoopbackCoturn, free_port, start_loopback_coturn
from callops.turn.credentials import rest_credentials
from callops.turn.probes import ProbeSet, run_probe_set


def _uris(server: LoopbackCoturn) -> list[str]:
    return [server.stun_uri, server.turn_udp, server.turn_tcp, server.turns]


async def _set_once(server: LoopbackCoturn) -> ProbeSet:
    creds = rest_credentials(server.secret, "bench", ttl=600)
    return await run_probe_set(
        _uris(server),
        username=creds.username,
        password=creds.credential,
        timeout=5,
        ca_file=server.ca_file,
    )


def bench_set(server: LoopbackCoturn, runs: int) -> dict[str, Any]:
    async def all_runs() -> list[ProbeSet]:
        await _set_once(server)  # warm-up: lazy imports, first TLS context
        return [await _set_once(server) for _ in range(runs)]

    results = asyncio.run(all_runs())
    failed = [r.name for s in results for r in s.results if r.status.value != "ok"]
    times = [s.duration_ms for s in results]
    per_kind: dict[str, list[float]] = {}
    for s in results:
        for r in s.results:
            per_kind.setdefault(r.kind, []).append(r.duration_ms)
    return {
        "median_ms": round(median(times), 2),
        "p90_ms": round(percentile(times, 0.9), 2),
        "runs": runs,
        "failed": failed,
        "per_probe_median_ms": {k: round(median(v), 2) for k, v in per_kind.items()},
    }


def bench_cli(server: LoopbackCoturn, runs: int) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "callops",
        "turn",
        "probe",
        *_uris(server),
        "--ca-file",
        str(server.ca_file),
    ]
    env = {**os.environ, "CALLOPS_TURN_SECRET": server.secret.reveal()}
    times: list[float] = []
    codes: list[int] = []
    for _ in range(runs):
        started = time.monotonic()
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        times.append((time.monotonic() - started) * 1000)
        codes.append(res.returncode)
    return {
        "median_ms": round(median(times), 1),
        "min_ms": round(min(times), 1),
        "exit_codes": sorted(set(codes)),
    }


def _tool(argv: list[str]) -> tuple[float, int, str]:
    started = time.monotonic()
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return (time.monotonic() - started) * 1000, -1, "timed out after 30 s"
    return (time.monotonic() - started) * 1000, res.returncode, res.stdout[-300:] + res.stderr[-300:]


def bench_coturn_tools(server: LoopbackCoturn, runs: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    peer_port = free_port()
    peer = subprocess.Popen(
        ["turnutils_peer", "-p", str(peer_port), "-L", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    secret = server.secret.reveal()
    common = ["-W", secret, "-u", "bench", "-n", "10", "-e", "127.0.0.1", "-r", str(peer_port)]
    tools = {
        "stunclient_udp": ["turnutils_stunclient", "-p", str(server.port), "127.0.0.1"],
        "uclient_udp": ["turnutils_uclient", *common, "-p", str(server.port), "127.0.0.1"],
        "uclient_tcp": ["turnutils_uclient", "-t", *common, "-p", str(server.port), "127.0.0.1"],
        # coturn 4.6.1's uclient stalls on TLS with its default AES256-GCM-SHA384 suite against
        # turnserver 4.6.1 (socket buffer error, then a 60 s hang); AES128-GCM works.
        "uclient_tls": [
            "turnutils_uclient",
            "-t",
            "-S",
            "-F",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            *common,
            "-p",
            str(server.tls_port),
            "127.0.0.1",
        ],
    }
    per_tool: dict[str, list[float]] = {name: [] for name in tools}
    wall: list[float] = []
    failures: list[str] = []
    try:
        with ThreadPoolExecutor(len(tools)) as pool:
            for _ in range(runs):
                started = time.monotonic()
                outcomes = dict(zip(tools, pool.map(_tool, tools.values()), strict=True))
                wall.append((time.monotonic() - started) * 1000)
                for name, (ms, code, tail) in outcomes.items():
                    per_tool[name].append(ms)
                    if code != 0:
                        failures.append(f"{name}: exit {code}: {tail.strip()[-200:]}")
    finally:
        peer.terminate()
        peer.wait(10)
    return {
        "median_ms": round(median(wall), 1),
        "per_tool_median_ms": {k: round(median(v), 1) for k, v in per_tool.items()},
        "sequential_sum_ms": round(sum(median(v) for v in per_tool.values()), 1),
        "failures": failures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="runs of the in-process set and the CLI")
    parser.add_argument("--tool-runs", type=int, default=3, help="runs of coturn's tools (about 5 s each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="callops-bench-") as tmp:
        server = start_loopback_coturn(
            Path(tmp), secret=Secret(secrets.token_hex(16), source="bench"), extra=["allow-loopback-peers"]
        )
        try:
            in_process = bench_set(server, args.runs)
            cli = bench_cli(server, args.runs)
            tools = bench_coturn_tools(server, args.tool_runs)
        finally:
            server.process.stop()
    write_result(
        "turn_probes",
        {
            "probes": ["stun-udp", "stun-tcp", "turn-udp", "turn-tcp", "turn-tls", "relay(10 packets)"],
            "callops_set_after_imports": in_process,
            "callops_cli_process": cli,
            "coturn_tools_concurrent": tools,
            "ratio_tools_over_set": round(tools["median_ms"] / in_process["median_ms"], 1),
            "ratio_tools_over_cli": round(tools["median_ms"] / cli["median_ms"], 1),
            "goals": {"set_ms": 150, "cli_ms": 600},
            "cpu_count": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
    )


if __name__ == "__main__":
    main()
