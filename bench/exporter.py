"""Bench: ``callops exporter`` against a local coturn, side by side with blackbox_exporter.

Run as ``python -m bench.exporter [--runs N] [--quick]`` from the repository root. It starts its own
coturn on loopback and ``callops exporter`` as a process (as deployed), then measures:

* ``latency``: ``/probe`` round trip per module (p50/p95 of ``--runs`` sequential scrapes on one
  keep-alive connection) -- goal: ``stun`` and ``turn_udp`` under 50 ms p50 on loopback;
* ``sustained``: open-loop scrapes per second spread over 20 targets, doubling the rate every step
  (each step ``STEP_S`` seconds, bounded), until p99 exceeds 1 s or over 1 % fail; the figure is
  the last rate whose p99 stayed within 1 s (per module: ``stun`` and ``turn_udp``);
* ``steady``: 50 targets (a mix of modules) each scraped every 15 s, staggered like Prometheus
  does, for ``STEADY_S`` seconds: the exporter's RSS and CPU share (from ``/proc``).

The baseline is Debian's ``prometheus-blackbox-exporter`` probing the same coturn with its
``tcp_connect`` and ``icmp`` probers (latency), and the same 50-target steady run with
``tcp_connect`` (RSS and CPU). Results go to ``bench/results/exporter.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import h11
import yaml

from bench._common import median, percentile, write_result
from callops.secret import Secret
from callops.testing import logged_process
from callops.turn.coturn import LoopbackCoturn, free_port, start_loopback_coturn

BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
STEP_S = 4.0
MAX_RATE = 1280
STEADY_S = 60.0
STEADY_TARGETS = 50
STEADY_INTERVAL = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


async def fetch(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One GET on a fresh connection (h11 frames it); ``(status, body)``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    conn = h11.Connection(h11.CLIENT)
    try:
        request = h11.Request(
            method="GET",
            target=path,
            headers=[("Host", f"{host}:{port}"), ("X-Prometheus-Scrape-Timeout-Seconds", "10")],
        )
        writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
        status, body = 0, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await asyncio.wait_for(reader.read(65536), timeout))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status, body
    finally:
        writer.close()


class KeepAlive:
    """Sequential GETs over one keep-alive connection (as Prometheus scrapes)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.conn = h11.Connection(h11.CLIENT)

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = h11.Request(
            method="GET",
            target=path,
            headers=[("Host", f"{self.host}:{self.port}"), ("X-Prometheus-Scrape-Timeout-Seconds", "10")],
        )
        self.writer.write(self.conn.send(request) + self.conn.send(h11.EndOfMessage()))
        status, body = 0, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await asyncio.wait_for(self.reader.read(65536), 15))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.conn.start_next_cycle()
                return status, body
            else:
                raise RuntimeError(f"unexpected {event!r}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def probe_path(module: str, target: str, blackbox: bool = False) -> str:
    return "/probe?" + urllib.parse.urlencode({"module": module, "target": target})


def succeeded(body: bytes) -> bool:
    return b"\nprobe_success 1" in b"\n" + body


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {timeout} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def targets_for(server: LoopbackCoturn) -> dict[str, str]:
    return {
        "stun": f"127.0.0.1:{server.port}",
        "stun_tcp": f"127.0.0.1:{server.port}",
        "nat": f"127.0.0.1:{server.port}",
        "tls": f"127.0.0.1:{server.tls_port}",
        "turn_udp": f"127.0.0.1:{server.port}",
        "turn_tcp": f"127.0.0.1:{server.port}",
        "turn_tls": f"127.0.0.1:{server.tls_port}",
        "relay": f"127.0.0.1:{server.port}",
    }


async def latency(port: int, module_targets: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for module, target in module_targets.items():
        client = KeepAlive("127.0.0.1", port)
        try:
            await client.get(probe_path(module, target))  # warm-up: lazy imports, TLS context
            times, ok = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                status, body = await client.get(probe_path(module, target))
                times.append((time.perf_counter() - started) * 1000)
                ok += status == 200 and succeeded(body)
        finally:
            client.close()
        out[module] = {
            "p50_ms": round(median(times), 2),
            "p95_ms": round(percentile(times, 0.95), 2),
            "success": ok / runs,
        }
    return out


async def open_loop(
    port: int, module: str, targets: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    """``rate`` scrapes/s for ``seconds``, round-robin over ``targets``; p99 and failures."""
    count = int(rate * seconds)
    started = time.monotonic()
    times: list[float] = []
    failed = 0
    reasons: list[str] = []

    async def one(i: int) -> None:
        nonlocal failed
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        t0 = time.monotonic()
        try:
            status, body = await fetch("127.0.0.1", port, probe_path(module, targets[i % len(targets)]), 15)
            if status != 200 or not succeeded(body):
                failed += 1
                reasons.append(f"{status} " + body.decode(errors="replace").partition("reason=")[2][:160])
        except (OSError, TimeoutError, h11.ProtocolError) as exc:
            # the exporter closes connections beyond its MAX_CONNECTIONS without an answer
            failed += 1
            reasons.append(repr(exc))
        times.append(time.monotonic() - t0)

    await asyncio.gather(*(one(i) for i in range(count)))
    return {
        "rate": rate,
        "p50_s": round(median(times), 4),
        "p99_s": round(percentile(times, 0.99), 4),
        "failed": failed,
        "first_failure": reasons[0] if reasons else "",
        "achieved": round(count / (time.monotonic() - started), 1),
    }


async def sustained(port: int, module: str, target: str) -> dict[str, Any]:
    targets = [target] * 20  # 20 targets of one relay: each scrape is a full probe
    steps, best = [], 0.0
    rate = 10.0
    while rate <= MAX_RATE:
        step = await open_loop(port, module, targets, rate, STEP_S)
        steps.append(step)
        if step["p99_s"] > 1.0 or step["failed"] > 0.01 * rate * STEP_S:
            break
        best = rate
        rate *= 2
    return {"max_rate_p99_under_1s": best, "steps": steps}


async def steady(port: int, jobs: list[tuple[str, str]], pid: int, seconds: float) -> dict[str, float]:
    """Every (module, target) scraped each ``STEADY_INTERVAL`` s, offsets spread like Prometheus."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    peak = rss_mib(pid)
    failures = 0
    scrapes = 0

    async def target_loop(index: int, module: str, target: str) -> None:
        nonlocal failures, scrapes, peak
        offset = STEADY_INTERVAL * index / len(jobs)
        n = 0
        while True:
            at = t0 + offset + n * STEADY_INTERVAL
            if at > t0 + seconds:
                return
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            status, body = await fetch("127.0.0.1", port, probe_path(module, target), 15)
            scrapes += 1
            failures += not (status == 200 and succeeded(body))
            peak = max(peak, rss_mib(pid))
            n += 1

    await asyncio.gather(*(target_loop(i, m, t) for i, (m, t) in enumerate(jobs)))
    wall = time.monotonic() - t0
    return {
        "targets": len(jobs),
        "interval_s": STEADY_INTERVAL,
        "seconds": round(wall, 1),
        "scrapes": scrapes,
        "failures": failures,
        "cpu_percent": round(100 * (cpu_seconds(pid) - cpu0) / wall, 2),
        "rss_mib_end": round(rss_mib(pid), 1),
        "rss_mib_peak": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="scrapes per module for the latency figures")
    parser.add_argument("--quick", action="store_true", help="short steady run (20 s) for a smoke check")
    args = parser.parse_args()
    steady_s = 20.0 if args.quick else STEADY_S
    root = Path(tempfile.mkdtemp(prefix="callops-bench-exporter-"))
    server = start_loopback_coturn(
        root, secret=Secret(secrets.token_hex(16), "bench"), extra=["allow-loopback-peers", "total-quota=0"]
    )
    try:
        secret_file = root / "turn-secret"
        secret_file.write_text(server.secret.reveal())
        common = {"secret_file": str(secret_file), "concurrency": 64}
        modules = {
            "stun": {"prober": "stun", "concurrency": 64},
            "stun_tcp": {"prober": "stun", "transport": "tcp", "concurrency": 64},
            "tls": {"prober": "tls", "ca_file": str(server.ca_file), "concurrency": 64},
            "turn_udp": {"prober": "turn", "transport": "udp", **common},
            "turn_tcp": {"prober": "turn", "transport": "tcp", **common},
            "turn_tls": {"prober": "turn", "transport": "tls", "ca_file": str(server.ca_file), **common},
            "relay": {"prober": "relay", "transport": "udp", "packets": 10, **common},
        }
        config = root / "callops.yaml"
        config.write_text(yaml.safe_dump({"exporter": {"modules": modules, "max_pending": 1024}}))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        command = [
            sys.executable,
            "-m",
            "callops",
            "exporter",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ]
        result: dict[str, Any] = {}
        module_targets = targets_for(server)
        steady_jobs = [
            (m, module_targets[m])
            for m in (["stun", "turn_udp", "turn_tcp", "turn_tls", "relay", "tls"] * 9)[:STEADY_TARGETS]
        ]
        with logged_process(command, root / "exporter.log", env) as exporter:
            wait_http(f"http://127.0.0.1:{port}/metrics")
            result["idle_rss_mib"] = round(rss_mib(exporter.pid), 1)
            result["latency"] = asyncio.run(latency(port, module_targets, args.runs))
            result["sustained"] = {
                module: asyncio.run(sustained(port, module, module_targets[module]))
                for module in ("stun", "turn_udp")
            }
            result["steady"] = asyncio.run(steady(port, steady_jobs, exporter.pid, steady_s))
        if Path(BLACKBOX).exists():
            result["blackbox"] = bench_blackbox(root, server, args.runs, steady_s)
        goal = {m: result["latency"][m]["p50_ms"] < 50 for m in ("stun", "turn_udp")}
        result["goal_p50_under_50ms"] = goal
        if "blackbox" in result:
            bb = result["blackbox"]
            result["ratio_rss_callops_over_blackbox"] = round(
                result["steady"]["rss_mib_peak"] / bb["steady"]["rss_mib_peak"], 2
            )
            result["ratio_p50_stun_over_blackbox_tcp"] = round(
                result["latency"]["stun"]["p50_ms"] / bb["latency"]["tcp_connect"]["p50_ms"], 2
            )
        write_result("exporter", result)
    finally:
        server.process.stop()
        shutil.rmtree(root, ignore_errors=True)


def bench_blackbox(root: Path, server: LoopbackCoturn, runs: int, steady_s: float) -> dict[str, Any]:
    config = root / "blackbox.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "modules": {
                    "tcp_connect": {"prober": "tcp", "timeout": "5s"},
                    "icmp": {"prober": "icmp", "timeout": "5s", "icmp": {"preferred_ip_protocol": "ip4"}},
                }
            }
        )
    )
    port = free_port()
    command = [
        BLACKBOX,
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    out: dict[str, Any] = {}
    with logged_process(command, root / "blackbox.log") as blackbox:
        wait_http(f"http://127.0.0.1:{port}/metrics")
        out["idle_rss_mib"] = round(rss_mib(blackbox.pid), 1)
        targets = {"tcp_connect": f"127.0.0.1:{server.port}", "icmp": "127.0.0.1"}
        out["latency"] = asyncio.run(latency(port, targets, runs))
        jobs = [("tcp_connect", f"127.0.0.1:{server.port}")] * STEADY_TARGETS
        out["steady"] = asyncio.run(steady(port, jobs, blackbox.pid, steady_s))
    return out


if __name__ == "__main__":
    main()
