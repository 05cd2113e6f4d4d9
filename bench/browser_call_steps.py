"""Where the time of a call goes: each step of accepted->ice_connected on both sides, epoch ms.

The same call as ``bench/browser_call.py`` (relay on the consumer side over TURN udp/tcp/tls, the
aiortc agent with a host and a relay candidate), but instrumented: the agent runs in its own
process (``python -m bench.browser_call_steps agent``) with hooks that stamp the arrival of each
CoBrowse signal, the application of the answer and of each trickled candidate, the first ICE
checks sent and received; the consumer (aiortc, or Chromium with the call app's phases) runs in
the bench process. Every stamp is wall-clock ms relative to the consumer's ``accepted``.

Run as root: ``flock /tmp/callops-heavy.lock python -m bench.browser_call_steps [RUNS]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench._common import median, write_result
from bench.browser_call import bperf_namespace

VERBOSE = bool(os.environ.get("CALLOPS_BENCH_VERBOSE"))
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "agent" else 5


def _epoch_ms(monotonic: float | None = None) -> float:
    now = time.time() * 1000.0
    return now if monotonic is None else now - (time.monotonic() - monotonic) * 1000.0


# -- the instrumented agent (a subprocess) --------------------------------------------------------


def _hook_agent(events: list[dict[str, Any]]) -> None:
    """Stamp what the agent sees (monkeypatches in this process only)."""
    import aioice.ice as ice

    from callops.orchestrator.call import peer as peer_mod
    from callops.orchestrator.call import roles, trickle
    from callops.orchestrator.emulator.channel import CoBrowseChannel

    def ev(name: str, at: float | None = None, **extra: Any) -> None:
        events.append({"e": name, "t": _epoch_ms() if at is None else at, **extra})

    mark = roles.CallState.mark

    def _mark(self: Any, phase: str, now: float | None = None) -> None:
        mark(self, phase, now)
        ev(f"agent_{phase}", _epoch_ms(now))

    roles.CallState.mark = _mark  # type: ignore[method-assign]

    receive = CoBrowseChannel.receive

    async def _receive(self: Any, *args: Any) -> Any:
        frame = await receive(self, *args)
        if isinstance(frame, dict) and frame.get("type") == "signal":
            raw = frame.get("data")
            data = raw if isinstance(raw, dict) else {}
            ev(
                f"agent_in_{data.get('kind')}",
                typ=str(data.get("candidate", "")).split(" typ ")[-1].split()[0]
                if data.get("candidate")
                else None,
            )
        elif isinstance(frame, dict) and frame.get("type") == "state":
            ev(f"agent_in_state_{frame.get('sessionState')}")
        return frame

    CoBrowseChannel.receive = _receive  # type: ignore[method-assign,assignment]

    accept_answer = peer_mod.HeadlessPeer.accept_answer

    async def _accept_answer(self: Any, sdp: str) -> None:
        ev("agent_answer_apply_start")
        await accept_answer(self, sdp)
        ev("agent_answer_applied")

    peer_mod.HeadlessPeer.accept_answer = _accept_answer  # type: ignore[method-assign]

    add: Callable[..., Awaitable[bool]] = vars(trickle)["add_remote_candidate"]

    async def _add(peer: Any, candidate: str, mid: Any, index: Any) -> bool:
        ok = await add(peer, candidate, mid, index)
        ev("agent_candidate_applied", typ=candidate.rsplit(" typ ", maxsplit=1)[-1].split(maxsplit=1)[0])
        return ok

    vars(trickle)["add_remote_candidate"] = _add

    check_start = ice.Connection.check_start

    async def _check_start(self: Any, pair: Any) -> None:
        ev("agent_check_start", pair=f"{pair.local_candidate.type}->{pair.remote_candidate.type}")
        await check_start(self, pair)
        ev(
            "agent_check_done",
            pair=f"{pair.local_candidate.type}->{pair.remote_candidate.type}",
            state=str(pair.state),
        )

    ice.Connection.check_start = _check_start  # type: ignore[method-assign]

    request_received = ice.Connection.request_received

    def _request_received(self: Any, message: Any, addr: Any, protocol: Any) -> None:
        ev("agent_check_in", local=protocol.local_candidate.type, use="USE-CANDIDATE" in message.attributes)
        request_received(self, message, addr, protocol)

    ice.Connection.request_received = _request_received  # type: ignore[method-assign]

    connect = ice.Connection.connect

    async def _connect(self: Any) -> None:
        ev("agent_ice_connect_start", remote=len(self._remote_candidates))
        await connect(self)

    ice.Connection.connect = _connect  # type: ignore[method-assign]


def agent_main(args: dict[str, Any]) -> None:
    from callops.orchestrator.call.runs import SiteRun

    events: list[dict[str, Any]] = []
    _hook_agent(events)
    settings, env = _settings(args)
    report = asyncio.run(SiteRun("agent", settings, env, conversation_id=args.get("conversation")).run())
    print(json.dumps({"report": json.loads(report.model_dump_json()), "events": events}))


def _settings(args: dict[str, Any]) -> tuple[Any, Any]:
    """One side's (CallSettings, CallEnvironment), as ``call-site`` builds them."""
    from callops.orchestrator.call.runs import CallEnvironment, CallSettings
    from callops.orchestrator.cli.call_site import _ice_servers
    from callops.turn.tls import client_context

    settings = CallSettings(
        mode=args.get("mode", "VOICE_CALL"),
        policy=args["policy"],
        host_addresses=("127.0.0.1",),
        duration_s=args.get("duration", 0.5),
        ice_timeout_s=10.0,
    )
    env = CallEnvironment(
        base_url=args["emulator"],
        ice_servers=_ice_servers((), (args["turn"],), args["secret_file"], None, None),
        ssl_context=client_context(args["ca_file"]) if args.get("ca_file") else None,
    )
    return settings, env


# -- the bench --------------------------------------------------------------------------------------


async def _agent(args: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.browser_call_steps", "agent", json.dumps(args),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0 and not out:
        raise RuntimeError(err.decode()[-2000:])
    return dict(json.loads(out))


async def one(emu: Any, turn: Any, secret_file: Path, transport: str, leg: str) -> dict[str, float] | None:
    from callops.orchestrator.browser.consumer_page import BrowserSettings, chromium_consumer
    from callops.orchestrator.call.runs import SiteRun, aiortc_consumer

    url = {"udp": turn.turn_udp, "tcp": turn.turn_tcp, "tls": turn.turns}[transport]
    args = {"emulator": emu.base_url, "policy": "relay", "turn": url, "secret_file": str(secret_file),
            "ca_file": str(turn.ca_file)}  # fmt: skip
    settings, env = _settings(args)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    consumer_events: dict[str, float] = {}
    factory = (
        chromium_consumer(BrowserSettings(trusted_ca=[turn.ca_file]))
        if leg == "chromium"
        else aiortc_consumer
    )
    run: Any = SiteRun("consumer", settings, env, consumer_leg=factory, on_ready=ready.set_result)
    if leg == "chromium":
        page = run.consumer.leg
        close = page.close

        async def _close() -> None:
            with contextlib.suppress(Exception):
                state = await page.app_state()
                consumer_events.update({f"page_{k}": float(v) for k, v in state.get("phases", {}).items()})
                for entry in await page.handler_history():
                    consumer_events.setdefault(f"handler_{entry['type']}", float(entry["at"]))
            await close()

        # the role releases its leg through its clean-up list: read the page just before
        run.consumer.cleanup = [_close if c == close else c for c in run.consumer.cleanup]
    else:
        mark = run.state.mark

        def _mark(phase: str, now: float | None = None) -> None:
            mark(phase, now)
            consumer_events.setdefault(f"consumer_{phase}", _epoch_ms(now))

        run.state.mark = _mark
    consumer = asyncio.create_task(run.run())
    conversation = await asyncio.wait_for(asyncio.shield(ready), 60)
    agent = await _agent({**args, "policy": "all", "turn": turn.turn_udp, "conversation": conversation})
    report = await consumer
    if not report.ok or not agent["report"]["ok"]:
        print(f"failed: {report.failure} / {agent['report']['failure']}", file=sys.stderr)
        return None
    accepted = consumer_events.get("handler_accepted", consumer_events.get("consumer_accepted"))
    assert accepted is not None
    steps: dict[str, float] = {}
    for e in agent["events"]:
        key = e["e"] + (f"[{e['typ']}]" if e.get("typ") else "") + (f"[{e['pair']}]" if e.get("pair") else "")
        steps.setdefault(key, round(e["t"] - accepted, 1))
    for key, at in consumer_events.items():
        steps.setdefault(key, round(at - accepted, 1))
    steps["measured_accepted_to_ice_connected"] = (
        report.timeline_ms["ice_connected"] - report.timeline_ms["accepted"]
    )
    if VERBOSE:
        print(
            leg,
            transport,
            " ".join(f"{k}={v:g}" for k, v in sorted(steps.items(), key=lambda kv: kv[1]) if -30 < v < 300),
            file=sys.stderr,
        )
    return steps


async def main(ns: str) -> dict[str, Any]:
    from callops.orchestrator.emulator.server import Emulator, EmulatorConfig
    from callops.secret import Secret
    from callops.turn.coturn import start_loopback_coturn

    workdir = Path(tempfile.mkdtemp(prefix="callops-bench-steps-"))
    secret = Secret(secrets.token_hex(16), source="bench")
    turn = start_loopback_coturn(workdir / "coturn", secret=secret, extra=["allow-loopback-peers"])
    secret_file = workdir / "turn-secret"
    secret_file.write_text(secret.reveal())
    out: dict[str, Any] = {"namespace": ns}
    try:
        async with Emulator(EmulatorConfig()) as emu:
            for transport in sys.argv[2].split(",") if len(sys.argv) > 2 else ("udp", "tcp", "tls"):
                for leg in ("aiortc", "chromium"):
                    runs = [
                        s
                        for s in [await one(emu, turn, secret_file, transport, leg) for _ in range(RUNS)]
                        if s
                    ]
                    keys: dict[str, None] = {}
                    for s in runs:
                        keys.update(dict.fromkeys(s))
                    table = {k: median([s[k] for s in runs if k in s]) for k in keys}
                    out[f"{leg}_{transport}"] = dict(sorted(table.items(), key=lambda kv: kv[1]))
                    print(leg, transport, json.dumps(out[f"{leg}_{transport}"], indent=1), file=sys.stderr)
    finally:
        turn.process.stop()
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "agent":
        agent_main(json.loads(sys.argv[2]))
    else:
        from callops.orchestrator.browser.isolation import run_in_namespace

        with bperf_namespace() as namespace:
            write_result("browser_call_steps", run_in_namespace(namespace, lambda: main(namespace), 1800))
