"""``callops probe --profile liveperson`` in the NAT lab: bandwidth through the relay, with and without
a 1 Mbit/s limit (``tc tbf``) on the consumer site's link; and the same flows peer to peer
(``callops probe peer --bandwidth``, the agent echoing).

The consumer site is a cone NAT; its router's WAN (upload) and LAN (download) interfaces get a token
bucket at 1 Mbit/s for the second run. Voice (600 kbit/s) fits, video (2.6 Mbit/s, 1.1 at the least)
does not: the checklist says so with the numbers, and the exit code is 1. The lab's TURN certificate
is self-signed, so ``tls-certificate`` fails in both runs (what a browser would decide).
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.lab.lifecycle import LabState
from callops.orchestrator.lab.netns import exec_argv, run
from callops.orchestrator.lab.topology import SIGNALLING_PORT

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


@contextmanager
def responder(lab: LabState, token: Path) -> Iterator[None]:
    """``callops probe serve`` on the agent, until the block ends."""
    argv = [sys.executable, "-m", "callops", "probe", "serve", "--listen", f"0.0.0.0:{SIGNALLING_PORT}"]
    argv += ["--token-file", str(token), "--config", lab.config_file]
    serve = subprocess.Popen(
        exec_argv(lab.namespace("agent"), argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert serve.stderr is not None
        ready, _, _ = select.select([serve.stderr], [], [], PROCESS_TIMEOUT)
        assert ready, "probe serve did not start listening in time"
        line = serve.stderr.readline()
        assert "listening" in line, line
        yield
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=10)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(timeout=10)
        if serve.stderr is not None:
            serve.stderr.close()


def p2p_flow(lab: LabState, token: Path, media: str) -> dict[str, Any]:
    """``callops probe peer --path srflx --bandwidth MEDIA`` from the consumer: the srflx path's result."""
    argv = [sys.executable, "-m", "callops", "probe", "peer", lab.signalling_url("agent")]
    argv += ["--token-file", str(token), "--config", lab.config_file, "--path", "srflx"]
    argv += ["--bandwidth", media, "--timeout", "15", "--json"]
    res = subprocess.run(
        exec_argv(lab.namespace("consumer"), argv), capture_output=True, text=True, timeout=PROCESS_TIMEOUT
    )
    assert res.stdout, res.stderr
    (path,) = json.loads(res.stdout)["paths"]
    assert path["connected"], path
    return dict(path)


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
def test_liveperson_bandwidth_passes_unlimited_and_fails_video_at_one_megabit(
    lab: LabState, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("bandwidth-token-0123456789\n")
    doc = checklist(lab)
    items = {i["id"]: i for i in doc["items"]}
    assert items["bandwidth-voice"]["status"] == "pass", items["bandwidth-voice"]
    assert items["bandwidth-video"]["status"] == "pass", items["bandwidth-video"]
    assert items["turn-udp-3478"]["status"] == "pass" and items["turn-tls-443"]["status"] == "pass"
    assert items["relay-range"]["status"] in ("pass", "warn"), items["relay-range"]
    assert items["tls-certificate"]["status"] == "fail"  # the lab's certificate is self-signed
    assert doc["_exit"] == 1
    assert doc["duration_ms"] < 10_000, doc["duration_ms"]
    with responder(lab, token):
        p2p = p2p_flow(lab, token, "video")
    assert p2p["bandwidth_status"] == "ok", p2p

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
    # Peer to peer the same link gives the same answer.
    with responder(lab, token):
        voice, video = p2p_flow(lab, token, "voice"), p2p_flow(lab, token, "video")
    assert voice["bandwidth_status"] == "ok", voice
    assert video["bandwidth_status"] == "fail" and "too little bandwidth" in video["bandwidth_detail"], video
