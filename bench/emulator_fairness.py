"""Emulator fairness: a good client's invitation latency while a hog holds its subscription cap.

Run: ``python -m bench.emulator_fairness [--invitations 200] [--runs 5]``.

The emulator runs in its own process (``callops emulator serve``), the hog in another (this
script with ``--hog``): one consumer connection holding ``MAX_SUBSCRIPTIONS`` (100) subscriptions
to its open conversation, reading every frame, while its agent invites and cancels that
conversation's call as fast as the control API answers -- each change a fan-out of 100 frames
carrying the whole (growing) conversation. Meanwhile the good client (this process) invites its
own consumer ``--invitations`` times in a row; latency = ``POST .../call`` sent -> that
consumer's UPSERT received. Baseline: the same without the hog. Target: p99 < 50 ms with the hog.
The hog stops after ``--hog-seconds`` or 20,000 cycles, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection

from bench._common import median, percentile, write_result
from bench.emulator_load import open_session, start_emulator
from callops.orchestrator.emulator import ControlClient
from callops.orchestrator.emulator.model import MAX_SUBSCRIPTIONS
from callops.turn.coturn import free_port

MAX_HOG_CYCLES = 20_000


async def _answer(ws: ClientConnection, req_id: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("reqId") == req_id:
            return dict(frame)


async def hog(base_url: str, account: str, seconds: float) -> None:
    """Hold the subscription cap and make every change fan out to it, until ``seconds`` pass."""
    url = f"ws{base_url[4:]}/ws_api/account/{account}/messaging/consumer?v=3"
    session = await open_session(url, f"{account}-hog")
    for i in range(MAX_SUBSCRIPTIONS - 1):
        await session.ws.send(
            json.dumps({"kind": "req", "id": f"s{i}", "type": "cqm.SubscribeExConversations", "body": {}})
        )
        assert (await _answer(session.ws, f"s{i}"))["code"] == 200
    await session.ws.send(json.dumps({"kind": "req", "id": "over", "type": "cqm.SubscribeExConversations"}))
    assert (await _answer(session.ws, "over"))["code"] == 429
    frames = 0

    async def drain() -> None:
        nonlocal frames
        async for _ in session.ws:
            frames += 1

    reader = asyncio.create_task(drain())
    # the bench closes our stdin when its good client is done
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    cycles = 0
    async with ControlClient(base_url, timeout=30) as control:
        while time.monotonic() < deadline and cycles < MAX_HOG_CYCLES and not stop.is_set():
            await control.invite(account, session.conversation_id, "VIDEO_CALL")
            await control.end_call(account, session.conversation_id)
            cycles += 1
    await session.ws.close()
    reader.cancel()
    print(json.dumps({"hog_cycles": cycles, "hog_frames": frames}), flush=True)


def start_hog(base_url: str, account: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.emulator_fairness",
            "--hog",
            base_url,
            "--account",
            account,
            "--hog-seconds",
            str(seconds),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise SystemExit("the hog did not start")
    return proc


async def good_client(base_url: str, account: str, invitations: int) -> list[float]:
    url = f"ws{base_url[4:]}/ws_api/account/{account}/messaging/consumer?v=3"
    session = await open_session(url, f"{account}-good")
    latencies: list[float] = []
    async with ControlClient(base_url, timeout=30) as control:
        for _ in range(invitations):
            t0 = time.perf_counter()
            await control.invite(account, session.conversation_id, "VOICE_CALL")
            note = json.loads(await session.ws.recv())
            latencies.append(time.perf_counter() - t0)
            assert note["type"] == "cqm.ExConversationChangeNotification", note
            await control.end_call(account, session.conversation_id)
            closed = json.loads(await session.ws.recv())
            assert closed["type"] == "cqm.ExConversationChangeNotification", closed
    await session.ws.close()
    return latencies


def one_run(
    base_url: str, account: str, invitations: int, with_hog: bool, hog_seconds: float
) -> dict[str, float]:
    proc = start_hog(base_url, f"{account}h", hog_seconds) if with_hog else None
    load = {"hog_cycles": 0.0, "hog_frames": 0.0}
    try:
        latencies = asyncio.run(asyncio.wait_for(good_client(base_url, account, invitations), 120))
    finally:
        if proc is not None:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=60)
                out = proc.stdout.read()
                load = {k: float(v) for k, v in json.loads(out.strip().splitlines()[-1]).items()}
            except (subprocess.TimeoutExpired, ValueError, IndexError):
                proc.kill()
                proc.wait(timeout=30)
    return {
        **load,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invitations", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hog-seconds", type=float, default=30.0)
    parser.add_argument("--hog", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--account", default="hog", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hog:
        asyncio.run(hog(args.hog, args.account, args.hog_seconds))
        return
    proc, base_url = start_emulator(free_port())
    baseline: list[dict[str, float]] = []
    hogged: list[dict[str, float]] = []
    try:
        for run in range(args.runs):
            for with_hog, results in ((False, baseline), (True, hogged)):
                result = one_run(
                    base_url, f"fair{run}{int(with_hog)}", args.invitations, with_hog, args.hog_seconds
                )
                label = "with hog" if with_hog else "baseline"
                print(
                    f"run {run + 1} {label}: " + ", ".join(f"{k}={v:.2f}" for k, v in result.items()),
                    file=sys.stderr,
                )
                results.append(result)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = {
        "baseline": {key: median([r[key] for r in baseline]) for key in baseline[0]},
        "with_hog": {key: median([r[key] for r in hogged]) for key in hogged[0]},
    }
    summary["p99_ratio_vs_baseline"] = {
        "ratio": summary["with_hog"]["p99_ms"] / summary["baseline"]["p99_ms"]
    }
    write_result(
        "emulator_fairness",
        {
            "invitations": args.invitations,
            "runs": args.runs,
            "hog_subscriptions": MAX_SUBSCRIPTIONS,
            "median": summary,
            "target": {"with_hog_p99_ms": 50.0},
            "met": summary["with_hog"]["p99_ms"] < 50.0,
            "all_runs": {"baseline": baseline, "with_hog": hogged},
        },
    )


if __name__ == "__main__":
    main()
