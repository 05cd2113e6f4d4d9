# ruff: noqa: E501, ASYNC240 -- a bench script: /proc reads are instant, tables read best unwrapped
"""aiortc<->aiortc vs aiortc<->Chromium calls side by side, browser launch-to-ready, CPU/PSS, concurrency.

Everything runs in one isolated network namespace ``bperf-<hex>`` (only ``lo``; Chromium never in
the root one, the namespace is always removed): the emulator and a coturn on 127.0.0.1, then
``callops call-site`` processes for both sides.

* latency: ``RUNS`` voice calls per row, relay only on the consumer side over TURN udp, tcp and
  tls; rows ``aiortc`` (consumer = aiortc), ``chromium_before`` (Chromium with the call app of
  commit 2962e64, read from git, served in place of today's by this bench's emulator),
  ``chromium_no_warm_up`` (the call app of 10d5abe: no warm-up while the invitation is shown) and
  ``chromium`` (today's call app), one run of each in turn; in every row the visitor answers
  ``ANSWER_AFTER_S`` after the invitation is shown (``--answer-after``: a person reads it before
  clicking; it is before ``accepted``, so outside the figures); accepted->ice_connected and
  accepted->first_audio p50/p95 from the consumer's report (its own clock: ``accepted`` is the
  moment its messaging socket saw the dialog ACCEPTED), and the ratio of each Chromium row's p50
  to the aiortc row's (goal <= 1.5);
* launch: ``RUNS`` browser launches, process start to DevTools ready (goal < 1 s);
* concurrency: 1 .. ``MAX_CONCURRENT`` simultaneous Chromium video calls (the aiortc agent sends
  ``VIDEO_FPS`` = 15 fps); a call runs in real time when the browser decodes >= 90 % of that over
  the call's media time; also the agents' decoded frame rate of the browser's video, CPU (cores)
  and PSS (MiB) per browser (all its processes) and of all agents, sampled over the middle of the
  calls once every browser is up.

Run as root: ``flock /tmp/callops-heavy.lock python -m bench.browser_call [RUNS] [PARTS]``
(PARTS: a comma list of launch, latency, concurrency; default all).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._common import median, percentile, write_result
from callops.orchestrator.browser.chromium import Chromium, ChromiumOptions
from callops.orchestrator.browser.isolation import has_route_out, remove_namespace, run_in_namespace
from callops.orchestrator.call.media import VIDEO_FPS
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig
from callops.secret import Secret
from callops.turn.coturn import LoopbackCoturn, start_loopback_coturn

_ARGV = sys.argv[1:] if __name__ == "__main__" else []
RUNS = int(_ARGV[0]) if _ARGV else 5
PARTS = _ARGV[1].split(",") if len(_ARGV) > 1 else ["launch", "latency", "concurrency"]
MAX_CONCURRENT = int(os.environ.get("CALLOPS_BENCH_MAX_BROWSERS", "7"))
CONCURRENT_S = 12.0
#: the window CPU is sampled over (once every browser of a level is up)
SAMPLE_S = 4.0
#: a call runs in real time when its browser decodes at least this share of the agent's VIDEO_FPS
REAL_TIME = 0.9
#: the call app of commit 2962e64 (media and peer connection after the offer), the "before" row,
#: the call apps of earlier rows, read from this checkout's git history (row -> commit)
BASELINE_COMMITS = {"chromium_before": "2962e64", "chromium_no_warm_up": "10d5abe"}
#: the visitor's reading time before answering (every row)
ANSWER_AFTER_S = 1.0


@functools.cache
def baseline_callapp(commit: str) -> bytes:
    """An earlier call app, from git (the bench runs in a checkout with its history)."""
    return subprocess.run(
        ["git", "show", f"{commit}:orchestrator/emulator/web/callapp.js"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        check=True,
        timeout=20,
    ).stdout


@contextlib.contextmanager
def bperf_namespace() -> Iterator[str]:
    """A fresh network namespace ``bperf-<hex>`` with only ``lo`` (up); always removed."""
    name = f"bperf-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=20)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=20)
        if has_route_out(name):
            raise RuntimeError(f"namespace {name} has a default route")
        yield name
    finally:
        remove_namespace(name)


@contextlib.contextmanager
def served_callapp(which: dict[str, str]) -> Iterator[None]:
    """This process's emulator serves the call app of commit ``which["callapp"]`` (``today``: this
    checkout's)."""
    from callops.orchestrator.emulator import server

    current: Callable[[str], tuple[str, bytes] | None] = vars(server)["web_asset"]

    def web_asset(path: str) -> tuple[str, bytes] | None:
        commit = which.get("callapp", "today")
        if commit != "today" and path.partition("?")[0] == "/web/callapp.js":
            return "text/javascript; charset=utf-8", baseline_callapp(commit)
        return current(path)

    vars(server)["web_asset"] = web_asset
    try:
        yield
    finally:
        vars(server)["web_asset"] = current


async def _side(role: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callops", "call-site", "--role", role, "--json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _ready(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    async with asyncio.timeout(60):
        while True:
            line = await proc.stderr.readline()
            if not line:
                raise RuntimeError("consumer exited before it was ready")
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == "ready":
                    return str(event["conversation_id"])


async def one_call(emu: Emulator, turn: LoopbackCoturn, secret_file: Path, consumer: list[str], *,
                   mode: str = "VOICE_CALL", duration: float = 0.5) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    common = ["--emulator", emu.base_url, "--duration", str(duration), "--secret-file", str(secret_file),
              "--mode", mode, "--ice-timeout", "10"]  # fmt: skip
    c = await _side("consumer", *common, *consumer)
    procs = [c]
    try:
        conversation = await _ready(c)
        a = await _side(
            "agent", "--conversation", conversation, "--loopback-only", "--turn", turn.turn_udp, *common
        )
        procs.append(a)
        (c_out, _), (a_out, _) = await asyncio.wait_for(asyncio.gather(c.communicate(), a.communicate()), 90)
        return json.loads(c_out), json.loads(a_out)
    finally:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


def _turn_url(turn: LoopbackCoturn, transport: str) -> str:
    return {"udp": turn.turn_udp, "tcp": turn.turn_tcp, "tls": turn.turns}[transport]


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(median(values), 1), "p95": round(percentile(values, 0.95), 1)}


async def latency(
    emu: Emulator, turn: LoopbackCoturn, secret_file: Path, which: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = ("aiortc", *BASELINE_COMMITS, "chromium")
    for transport in ("udp", "tcp", "tls"):
        figures: dict[str, dict[str, list[float]]] = {
            row: {"ice": [], "audio": [], "launch": []} for row in rows
        }
        failures: dict[str, list[str]] = {row: [] for row in rows}
        for _ in range(RUNS):
            for row in rows:  # one run of each row in turn: drifts of the machine hit every row alike
                leg = "aiortc" if row == "aiortc" else "chromium"
                which["callapp"] = BASELINE_COMMITS.get(row, "today")
                args = ["--leg", leg, "--policy", "relay", "--turn", _turn_url(turn, transport),
                        "--ca-file", str(turn.ca_file), "--answer-after", str(ANSWER_AFTER_S)]  # fmt: skip
                if leg == "aiortc":
                    args.append("--loopback-only")
                consumer, _agent = await one_call(emu, turn, secret_file, args)
                ms = consumer["timeline_ms"]
                if not consumer["ok"] or "ice_connected" not in ms or "first_audio" not in ms:
                    failures[row].append(str(consumer.get("failure") or consumer.get("outcome")))
                    continue
                figures[row]["ice"].append(ms["ice_connected"] - ms["accepted"])
                figures[row]["audio"].append(ms["first_audio"] - ms["accepted"])
                ready = consumer.get("legs", {}).get("consumer", {}).get("launch_to_ready_ms")
                if ready is not None:
                    figures[row]["launch"].append(ready)
        for row in rows:
            f = figures[row]
            out[f"{row}_relay_{transport}"] = {
                "runs": RUNS,
                "failures": len(failures[row]),
                **({"failure_reasons": failures[row]} if failures[row] else {}),
                "accepted_to_ice_connected_ms": _summary(f["ice"]),
                "accepted_to_first_audio_ms": _summary(f["audio"]),
                **({"launch_to_ready_ms_p50": round(median(f["launch"]), 1)} if f["launch"] else {}),
            }
        a = out[f"aiortc_relay_{transport}"]
        for row in rows[1:]:
            c = out[f"{row}_relay_{transport}"]
            out[f"ratio_{row}_over_aiortc_{transport}"] = {
                key: round(c[key]["p50"] / a[key]["p50"], 2) if a[key]["p50"] else None
                for key in ("accepted_to_ice_connected_ms", "accepted_to_first_audio_ms")
            }
        print(transport, json.dumps({k: v for k, v in out.items() if transport in k}), file=sys.stderr)
    which["callapp"] = "today"
    return out


async def launches() -> dict[str, Any]:
    ready: list[float] = []
    for _ in range(RUNS):
        browser = await Chromium.launch(ChromiumOptions())
        try:
            assert browser.launch_to_ready_s is not None
            ready.append(browser.launch_to_ready_s * 1000.0)
        finally:
            await browser.close()
    return {
        "runs": RUNS,
        "launch_to_ready_ms": {"p50": median(ready), "p95": percentile(ready, 0.95)},
        "goal_ms": 1000,
    }


#: the bench's namespace: only its processes are counted (other people's browsers are not ours)
NAMESPACE: dict[str, str] = {}


def _pids(marker: bytes, *, first_arg: bool = False) -> list[int]:
    """Processes of this bench's namespace whose command line holds ``marker`` (its first argument
    only, if ``first_arg``)."""
    ns_inode = os.stat(f"/run/netns/{NAMESPACE['name']}").st_ino
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}/ns/net").st_ino != ns_inode:
                    continue
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if marker in (cmdline.split(b"\0")[0] if first_arg else cmdline):
                    pids.append(int(entry))
    return pids


def _chromium_pids() -> list[int]:
    return _pids(b"/usr/lib/chromium/chromium", first_arg=True)


def _browsers() -> int:
    """Browsers running in the bench's namespace: each runs in its own session (all its processes)."""
    sessions = set()
    for pid in _chromium_pids():
        with contextlib.suppress(OSError):
            sessions.add(os.getsid(pid))
    return len(sessions)


def _cpu_s(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def _busy_s() -> float:
    """CPU seconds of the whole machine (all cores, not idle/iowait) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def _sample(count: int, started: float) -> dict[str, Any]:
    """CPU and PSS over ``SAMPLE_S`` once ``count`` browsers and agents are up (bounded wait)."""
    deadline = started + CONCURRENT_S
    while time.monotonic() < deadline:
        if _browsers() >= count and len(_pids(b"--role\0agent")) >= count:
            break
        await asyncio.sleep(0.25)  # bounded poll of /proc (a measurement, not a synchronisation)
    await asyncio.sleep(2.0)  # every call past its set-up: media flowing
    browsers = _browsers()
    groups = {
        "browser": _chromium_pids(),
        "agent": _pids(b"--role\0agent"),
        "consumer_driver": _pids(b"--role\0consumer"),
        "coturn": _pids(b"turnserver", first_arg=True),
        "bench_process": [os.getpid()],  # the emulator (signalling) and the drivers of the calls
    }
    cpu0 = {name: {pid: _cpu_s(pid) for pid in pids} for name, pids in groups.items()}
    busy0, t0 = _busy_s(), time.monotonic()
    await asyncio.sleep(SAMPLE_S)
    elapsed = time.monotonic() - t0
    out: dict[str, Any] = {
        "browsers_at_sample": browsers,
        "machine_cpu_cores": round((_busy_s() - busy0) / elapsed, 2),
    }
    ours = 0.0
    for name, start in cpu0.items():
        cores = sum(_cpu_s(pid) - at for pid, at in start.items() if Path(f"/proc/{pid}").exists()) / elapsed
        out[f"{name}_cpu_cores"] = round(cores, 2)
        ours += cores
    # whatever else ran on the machine meanwhile (other people's work)
    out["other_cpu_cores"] = round(max(0.0, out["machine_cpu_cores"] - ours), 2)
    out["browser_pss_mib"] = round(sum(_pss_kib(pid) for pid in groups["browser"]) / 1024.0, 1)
    out["agent_pss_mib"] = round(sum(_pss_kib(pid) for pid in groups["agent"]) / 1024.0, 1)
    return out


def _fps(report: dict[str, Any], direction: str) -> float | None:
    duration = report.get("stats", {}).get("duration_s") or 0.0
    for m in report.get("stats", {}).get("media", []):
        if m["kind"] == "video" and m["direction"] == direction and duration > 0:
            return float(m["frames_decoded"]) / duration
    return None


async def concurrent(emu: Emulator, turn: LoopbackCoturn, secret_file: Path, count: int) -> dict[str, Any]:
    """``count`` simultaneous Chromium video calls (relay over TURN udp), ``CONCURRENT_S`` of media each."""
    args = ["--leg", "chromium", "--policy", "relay", "--turn", turn.turn_udp]
    leftover = _browsers()  # a previous level's browsers still running would skew the figures
    started = time.monotonic()
    calls = [asyncio.create_task(one_call(emu, turn, secret_file, args, mode="VIDEO_CALL", duration=CONCURRENT_S))
             for _ in range(count)]  # fmt: skip
    sample = await _sample(count, started)
    results = await asyncio.gather(*calls, return_exceptions=True)
    browser_fps: list[float] = []
    agent_fps: list[float] = []
    ok = 0
    failures: list[str] = []
    for result in results:
        if isinstance(result, BaseException):
            failures.append(f"{result.__class__.__name__}: {result}"[:200])
            continue
        consumer, agent = result
        ok += bool(consumer["ok"] and agent["ok"])
        failures += [str(r["failure"])[:200] for r in (consumer, agent) if not r["ok"]]
        if (fps := _fps(consumer, "agent->consumer")) is not None:
            browser_fps.append(fps)
        if (fps := _fps(agent, "consumer->agent")) is not None:
            agent_fps.append(fps)
    browsers = sample["browsers_at_sample"] or count
    return {
        "calls": count,
        "connected": ok,
        "browser_decoded_fps": {"min": round(min(browser_fps), 1), "p50": round(median(browser_fps), 1)}
        if browser_fps
        else None,
        "agent_decoded_fps_p50": round(median(agent_fps), 1) if agent_fps else None,
        "real_time": ok == count and len(browser_fps) == count and min(browser_fps) >= REAL_TIME * VIDEO_FPS,
        "cpu_cores_per_browser": round(sample["browser_cpu_cores"] / browsers, 2),
        "pss_mib_per_browser": round(sample["browser_pss_mib"] / browsers, 1),
        **sample,
        "browsers_before": leftover,
        "failures": failures[:4],
    }


async def concurrency(emu: Emulator, turn: LoopbackCoturn, secret_file: Path) -> list[dict[str, Any]]:
    """Levels 1, 2, 4, 5, ... up to ``MAX_CONCURRENT``; stops after two levels that miss real time."""
    out: list[dict[str, Any]] = []
    for count in [1, 2, *range(4, MAX_CONCURRENT + 1)]:
        level = await concurrent(emu, turn, secret_file, count)
        print("concurrency", json.dumps(level), file=sys.stderr)
        out.append(level)
        if len(out) >= 2 and not out[-1]["real_time"] and not out[-2]["real_time"]:
            break
    return out


async def main(ns: str) -> dict[str, Any]:
    NAMESPACE["name"] = ns
    workdir = Path(tempfile.mkdtemp(prefix="callops-bench-browser-"))
    secret = Secret(secrets.token_hex(16), source="bench")
    turn = start_loopback_coturn(workdir / "coturn", secret=secret, extra=["allow-loopback-peers"])
    secret_file = workdir / "turn-secret"
    secret_file.write_text(secret.reveal())
    which = {"callapp": "today"}
    result: dict[str, Any] = {"namespace": ns, "cpus": os.cpu_count(), "runs": RUNS}
    try:
        with served_callapp(which):
            async with Emulator(EmulatorConfig()) as emu:
                if "launch" in PARTS:
                    result["launch"] = await launches()
                if "latency" in PARTS:
                    result["latency"] = await latency(emu, turn, secret_file, which)
                if "concurrency" in PARTS:
                    result["concurrency"] = await concurrency(emu, turn, secret_file)
                    result["max_real_time_browser_calls"] = max(
                        [c["calls"] for c in result["concurrency"] if c["real_time"]], default=0
                    )
            return result
    finally:
        turn.process.stop()


if __name__ == "__main__":
    with bperf_namespace() as namespace:
        name = "browser_call" if len(PARTS) == 3 else "browser_call-" + "-".join(PARTS)
        write_result(name, run_in_namespace(namespace, lambda: main(namespace), 3600))
