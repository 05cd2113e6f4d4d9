"""``callops probe --profile liveperson`` in the NAT lab: bandwidth through the relay, with and without
a 1 Mbit/s limit (``tc tbf``) on the consumer site's link.

The consumer site is a cone NAT; its router's WAN (upload) and LAN (download) interfaces get a token
bucket at 1 Mbit/s for the second run. Voice (600 kbit/s) fits, video (2.6 Mbit/s, 1.1 at the least)
does not: the checklist says so with the numbers, and the exit code is 1. The lab's TURN certificate
is self-signed, so ``tls-certificate`` fails in both runs (what a browser would decide).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from callops.orchestrator.lab.lab import LabState
from callops.orchestrator.lab.netns import exec_argv, run

pytestmark = [pytest.mark.netns, pytest.mark.coturn, pytest.mark.slow]

#: lab prefix, read by the shared ``lab`` fixture (tests/orchestrator/conftest.py)
PREFIX = "probe"
PROCESS_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sites:
    agent: str
    consumer: str


def checklist(lab: LabState) -> dict[str, Any]:
    argv = [sys.executable, "-m", "callops", "probe", "--config", lab.config_file, "--profile", "liveperson"]
    res = subprocess.run(
        exec_argv(lab.namespace("consumer"), [*argv, "--json"]),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert res.stdout, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    doc["_exit"] = res.returncode
    return doc


def limit(lab: LabState, rate: str) -> None:
    router = lab.namespaces["consumer-router"]
    for dev in ("wan", "lan"):
        run(
            [
                "ip",
                "netns",
                "exec",
                router,
                "tc",
                "qdisc",
                "add",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                rate,
                "burst",
                "32kbit",
                "latency",
                "100ms",
            ]
        )


@pytest.mark.parametrize("lab", [Sites("open", "cone")], ids=["open-cone"], indirect=True)
def test_liveperson_bandwidth_passes_unlimited_and_fails_video_at_one_megabit(lab: LabState) -> None:
    doc = checklist(lab)
    items = {i["id"]: i for i in doc["items"]}
    assert items["bandwidth-voice"]["status"] == "pass", items["bandwidth-voice"]
    assert items["bandwidth-video"]["status"] == "pass", items["bandwidth-video"]
    assert items["turn-udp-3478"]["status"] == "pass" and items["turn-tls-443"]["status"] == "pass"
    assert items["relay-range"]["status"] in ("pass", "warn"), items["relay-range"]
    assert items["tls-certificate"]["status"] == "fail"  # the lab's certificate is self-signed
    assert doc["_exit"] == 1
    assert doc["duration_ms"] < 10_000, doc["duration_ms"]

    limit(lab, "1mbit")
    doc = checklist(lab)
    items = {i["id"]: i for i in doc["items"]}
    assert items["bandwidth-voice"]["status"] == "pass", items["bandwidth-voice"]
    video = items["bandwidth-video"]
    assert video["status"] == "fail", video
    assert "too little bandwidth" in video["measured"] and "of 2600 kbit/s got through" in video["measured"]
    assert "1100 kbit/s" in video["measured"] and video["fix"]
    failed = {i["id"] for i in doc["items"] if i["required"] and i["status"] == "fail"}
    assert failed == {"tls-certificate", "bandwidth-video"}
    assert doc["_exit"] == 1
