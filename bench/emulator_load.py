"""Emulator under load: N concurrent consumer sessions on loopback, and invitation fan-out latency.

Run: ``python -m bench.emulator_load [--sessions 1000] [--runs 3]``.

The emulator runs in its own process (``callops emulator serve``) so that it and the clients
each get a core. Per run, on a fresh account:

1. set-up: N raw websocket consumers connect at once, send InitConnection, request a
   conversation and subscribe (each waits for the immediate listing) -- the wall time until all
   N are ready (target < 5 s);
2. fan-out, paced: every session is invited through the control API (``POST .../call``) by
   ``--concurrency`` workers; latency = POST sent -> that session's UPSERT received (target p99 <
   500 ms);
3. fan-out, burst: every invitation cancelled (``DELETE``) at once; latency = DELETE sent -> CLOSED
   update received; then every session invited again at once (POST -> UPSERT received).

The script raises its file-descriptor limit with :mod:`resource` (children inherit it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench._common import median, percentile, write_result
from callops.orchestrator.emulator import ControlClient, mint_jwt
from callops.turn.coturn import free_port


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, needed) if hard == resource.RLIM_INFINITY else min(max(soft, needed), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def start_emulator(port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "callops", "emulator", "serve", "--port", str(port), "--invite-expiry", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("emulator on "):
        proc.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return proc, line.split()[2]


@dataclass(slots=True)
class Session:
    ws: ClientConnection
    consumer_id: str
    conversation_id: str


async def _answer(ws: ClientConnection, req_id: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("reqId") == req_id:
            assert frame["code"] == 200, frame
            return dict(frame)


async def open_session(url: str, consumer_id: str) -> Session:
    ws = await connect(url, open_timeout=30, ping_interval=None)
    init = {
        "kind": "req",
        "id": "0",
        "type": "InitConnection",
        "headers": [
            {"type": ".ams.headers.ClientProperties", "features": ["CO_BROWSE"]},
            {"type": ".ams.headers.ConsumerAuthentication", "jwt": mint_jwt(consumer_id, now=time.time())},
        ],
    }
    await ws.send(json.dumps(init))
    await _answer(ws, "0")
    await ws.send(json.dumps({"kind": "req", "id": "1", "type": "cm.ConsumerRequestConversation"}))
    conversation_id = (await _answer(ws, "1"))["body"]["conversationId"]
    await ws.send(
        json.dumps(
            {
                "kind": "req",
                "id": "2",
                "type": "cqm.SubscribeExConversations",
                "body": {"convState": ["OPEN"]},
            }
        )
    )
    await _answer(ws, "2")
    listing = json.loads(await ws.recv())
    assert listing["type"] == "cqm.ExConversationChangeNotification", listing
    return Session(ws, consumer_id, conversation_id)


async def one_run(base_url: str, account: str, sessions: int, concurrency: int) -> dict[str, float]:
    url = f"ws{base_url[4:]}/ws_api/account/{account}/messaging/consumer?v=3"
    client = ControlClient(base_url, timeout=60)
    started = time.perf_counter()
    opened = await asyncio.gather(*(open_session(url, f"{account}-c{i}") for i in range(sessions)))
    setup = time.perf_counter() - started

    paced: list[float] = []
    queue = list(opened)

    async def worker() -> None:
        while queue:
            session = queue.pop()
            t0 = time.perf_counter()
            await client.invite(account, session.conversation_id, "VIDEO_CALL")
            note = json.loads(await session.ws.recv())
            paced.append(time.perf_counter() - t0)
            assert note["type"] == "cqm.ExConversationChangeNotification"

    await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def cancel(session: Session) -> float:
        t0 = time.perf_counter()
        await client.end_call(account, session.conversation_id)
        note = json.loads(await session.ws.recv())
        assert note["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][0]["metaData"] == {
            "sessionState": "CLOSED"
        }
        return time.perf_counter() - t0

    async def invite(session: Session) -> float:
        t0 = time.perf_counter()
        await client.invite(account, session.conversation_id, "VOICE_CALL")
        note = json.loads(await session.ws.recv())
        assert note["body"]["changes"][0]["result"]["conversationDetails"]["dialogs"][-1]["metaData"][
            "mode"
        ] == ("VOICE_CALL")
        return time.perf_counter() - t0

    burst_started = time.perf_counter()
    cancels = await asyncio.gather(*(cancel(s) for s in opened))
    cancel_total = time.perf_counter() - burst_started
    burst_started = time.perf_counter()
    invites = await asyncio.gather(*(invite(s) for s in opened))
    invite_total = time.perf_counter() - burst_started
    await asyncio.gather(*(s.ws.close() for s in opened))
    return {
        "setup_s": setup,
        "paced_p50_ms": percentile(paced, 0.5) * 1000,
        "paced_p99_ms": percentile(paced, 0.99) * 1000,
        "burst_invite_p50_ms": percentile(invites, 0.5) * 1000,
        "burst_invite_p99_ms": percentile(invites, 0.99) * 1000,
        "burst_invite_total_s": invite_total,
        "burst_cancel_p50_ms": percentile(cancels, 0.5) * 1000,
        "burst_cancel_p99_ms": percentile(cancels, 0.99) * 1000,
        "burst_cancel_total_s": cancel_total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10, help="paced invitations in flight")
    args = parser.parse_args()
    limit = raise_fd_limit(2 * args.sessions + 512)
    proc, base_url = start_emulator(free_port())
    runs: list[dict[str, float]] = []
    try:
        for run in range(args.runs):
            result = asyncio.run(
                asyncio.wait_for(one_run(base_url, f"bench{run}", args.sessions, args.concurrency), 300)
            )
            print(f"run {run + 1}: " + ", ".join(f"{k}={v:.3f}" for k, v in result.items()), file=sys.stderr)
            runs.append(result)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    summary = {key: median([r[key] for r in runs]) for key in runs[0]}
    write_result(
        "emulator_load",
        {
            "sessions": args.sessions,
            "runs": args.runs,
            "concurrency": args.concurrency,
            "fd_limit": limit,
            "median": summary,
            "targets": {"setup_s": 5.0, "paced_p99_ms": 500.0},
            "met": summary["setup_s"] < 5.0 and summary["paced_p99_ms"] < 500.0,
            "all_runs": runs,
        },
    )


if __name__ == "__main__":
    main()
