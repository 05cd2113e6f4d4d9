"""``callops probe --profile liveperson`` in the NAT lab: bandwidth through the relay, with and without
a 1 Mbit/s limit (``tc tbf``) on the consumer site's link; and the same flows peer to peer
(``callops probe peer --bandwidth``, the agent echoing).

The consumer site is a cone NAT; its router's WAN (upload) and LAN (download) interfaces get a token
bucket at 1 Mbit/s for the second run. Voice (600 kbit/s) fits, video (2.6 Mbit/s, 1.1 at the least)
does not: the checklist says so with the numbers, and the exit code is 1. The lab's TURN certificate
is self-signed, so ``tls-certificate`` fails in both runs (what a browser would decide).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from callops.orchestrator.lab.lifecycle import LabState
from callops.orchestrator.lab.netns import run

if TYPE_CHECKING:
    from tests.orchestrator.conftest import LabKit

pytestmark = [pytest.mark.netns, pytest.mark.coturn, pytest.mark.slow]

#: lab prefix, read by the shared ``lab`` fixture (tests/orchestrator/conftest.py)
PREFIX = "probe"


@dataclass(frozen=True)
class Sites:
    agent: str
    consumer: str


def checklist(kit: LabKit, lab: LabState) -> dict[str, Any]:
    """``callops probe --profile liveperson --json`` from the consumer."""
    return kit.run_json(
        lab, "consumer", "probe", "--config", lab.config_file, "--profile", "liveperson", "--json"
    )


def token_args(lab: LabState, token: Path) -> list[str]:
    """The token and lab config options of ``probe serve`` (agent) and ``probe peer`` (consumer)."""
    return ["--token-file", str(token), "--config", lab.config_file]


def p2p_flow(kit: LabKit, lab: LabState, token: Path, media: str) -> dict[str, Any]:
    """``callops probe peer --path srflx --bandwidth MEDIA`` from the consumer: the srflx path's result."""
    argv = ["probe", "peer", lab.signalling_url("agent"), *token_args(lab, token), "--path", "srflx"]
    report = kit.run_json(lab, "consumer", *argv, "--bandwidth", media, "--timeout", "15", "--json")
    (path,) = report["paths"]
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
    lab: LabState, tmp_path: Path, lab_kit: LabKit
) -> None:
    token = tmp_path / "token"
    token.write_text("bandwidth-token-0123456789\n")
    doc = checklist(lab_kit, lab)
    items = {i["id"]: i for i in doc["items"]}
    assert items["bandwidth-voice"]["status"] == "pass", items["bandwidth-voice"]
    assert items["bandwidth-video"]["status"] == "pass", items["bandwidth-video"]
    assert items["turn-udp-3478"]["status"] == "pass" and items["turn-tls-443"]["status"] == "pass"
    assert items["relay-range"]["status"] in ("pass", "warn"), items["relay-range"]
    assert items["tls-certificate"]["status"] == "fail"  # the lab's certificate is self-signed
    assert doc["_exit"] == 1
    assert doc["duration_ms"] < 10_000, doc["duration_ms"]
    with lab_kit.responder(lab, *token_args(lab, token)):
        p2p = p2p_flow(lab_kit, lab, token, "video")
    assert p2p["bandwidth_status"] == "ok", p2p

    limit(lab, "1mbit")
    doc = checklist(lab_kit, lab)
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
    with lab_kit.responder(lab, *token_args(lab, token)):
        voice, video = p2p_flow(lab_kit, lab, token, "voice"), p2p_flow(lab_kit, lab, token, "video")
    assert voice["bandwidth_status"] == "ok", voice
    assert video["bandwidth_status"] == "fail" and "too little bandwidth" in video["bandwidth_detail"], video
