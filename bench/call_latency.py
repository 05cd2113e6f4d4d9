"""Single-call latency: time from ``accepted`` to ``ice_connected`` and to ``first_audio``.

Three setups, each ``RUNS`` sequential voice calls:

* ``relay``: the whole invitation path (in-process emulator) through a local coturn with
  ``policy=relay`` -- the figure the issue targets (p50 < 150 ms to ICE, < 250 ms to audio);
* ``relay_without_early_check_retransmits``: the same with aioice's RFC 5389 check timing only;
* ``host``: the same path, host candidates on loopback;
* ``floor``: aiortc alone, host to host on loopback, offer/answer in memory (no emulator): the
  floor to approach (time from the offer to ``ice_connected``).

Run: ``python -m bench.call_latency`` from the repository root.
"""

from __future__ import annotations

import asyncio
import sys
import time

from bench._common import median, percentile, write_result
from callops.orchestrator.call.environment import EnvironmentRequest, call_environment
from callops.orchestrator.call.leg import CallLeg, connect_in_memory
from callops.orchestrator.call.peer import PeerConfig
from callops.orchestrator.call.report import IcePolicy
from callops.orchestrator.call.runs import CallSettings, run_call
from callops.orchestrator.call.timeline import Timeline

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


async def path_runs(policy: IcePolicy, turn: bool, *, rfc_timing: bool = False) -> dict[str, object]:
    to_ice: list[float] = []
    to_audio: list[float] = []
    failures = 0
    settings = CallSettings(policy=policy, duration_s=0.2)
    if rfc_timing:
        settings.check_retransmits = ()
    async with call_environment(EnvironmentRequest(embedded_turn=turn)) as env:
        for _ in range(RUNS):
            report = await run_call(settings, env)
            ms = report.timeline_ms
            if not report.ok:
                failures += 1
                continue
            to_ice.append(ms["ice_connected"] - ms["accepted"])
            to_audio.append(ms["first_audio"] - ms["accepted"])
            pair = report.selected_pair
            assert pair is not None
            assert pair.local.type == ("relay" if policy == "relay" else "host")
    return {
        "runs": RUNS,
        "failures": failures,
        "accepted_to_ice_connected_ms": {"p50": median(to_ice), "p95": percentile(to_ice, 0.95)},
        "accepted_to_first_audio_ms": {"p50": median(to_audio), "p95": percentile(to_audio, 0.95)},
    }


async def floor_runs() -> dict[str, object]:
    to_ice: list[float] = []
    for _ in range(RUNS):
        timeline = Timeline(time.monotonic())
        leg = CallLeg("VOICE_CALL", PeerConfig(), timeline)
        try:
            started = time.monotonic()
            await connect_in_memory(leg)
            assert await leg.wait_connected(10.0)
            ice = timeline.at("ice_connected")
            assert ice is not None
            to_ice.append((ice - started) * 1000.0)
        finally:
            await leg.close()
    return {
        "runs": RUNS,
        "offer_to_ice_connected_ms": {"p50": median(to_ice), "p95": percentile(to_ice, 0.95)},
    }


async def main() -> None:
    relay = await path_runs("relay", turn=True)
    relay_rfc = await path_runs("relay", turn=True, rfc_timing=True)
    host = await path_runs("all", turn=False)
    floor = await floor_runs()
    relay_ice = relay["accepted_to_ice_connected_ms"]
    relay_audio = relay["accepted_to_first_audio_ms"]
    assert isinstance(relay_ice, dict) and isinstance(relay_audio, dict)
    write_result(
        "call_latency",
        {
            "relay": relay,
            "relay_without_early_check_retransmits": relay_rfc,
            "host": host,
            "aiortc_floor": floor,
            "targets": {"accepted_to_ice_connected_p50_ms": 150, "accepted_to_first_audio_p50_ms": 250},
            "meets_targets": relay_ice["p50"] < 150 and relay_audio["p50"] < 250,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
