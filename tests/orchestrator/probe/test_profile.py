"""Readiness profiles: the YAML as data, the checklist from typed results, and ``--profile`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from callops.errors import ConfigError, UsageError
from callops.orchestrator.probe.profile import (
    ChecklistItem,
    Profile,
    checklist_items,
    exit_code,
    load_profile,
)
from callops.turn.results import (
    BandwidthData,
    BandwidthResult,
    FlowStats,
    ProbeResult,
    ProbeStatus,
    RelayData,
    RelayTestResult,
    TlsData,
    TlsResult,
)
from callops.turn.uri import parse_uri

STABLE_IDS = [
    "turn-udp-3478",
    "turn-tcp-3478",
    "turn-tls-443",
    "turn-tls-5349",
    "tls-certificate",
    "udp-5004",
    "relay-range",
    "bandwidth-voice",
    "bandwidth-video",
]
T_UDP = "turn:203.0.113.10:3478?transport=udp"
T_TLS = "turns:203.0.113.10:443?transport=tcp"


def test_the_liveperson_profile_ships_with_its_stable_ids_and_published_numbers() -> None:
    profile = load_profile("liveperson")
    assert [i.id for i in profile.items] == STABLE_IDS
    items = {i.id: i for i in profile.items}
    assert (items["bandwidth-voice"].kbps, items["bandwidth-voice"].floor_kbps) == (600, 600)
    assert (items["bandwidth-video"].kbps, items["bandwidth-video"].floor_kbps) == (2600, 1100)
    assert items["relay-range"].ports == (10000, 60000)
    assert all(i.fix for i in profile.items)


def test_a_profile_file_with_a_bad_field_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "brand.yaml"
    bad.write_text(
        "name: b\ntitle: B\nitems:\n  - id: x\n    requirement: r\n    check: bandwidth\n    fix: f\n"
    )
    with pytest.raises(ConfigError, match=r"items\.0.*check 'bandwidth' needs media, kbps, floor_kbps"):
        load_profile(str(bad))
    bad.write_text("name: b\ntitle: B\nitems: [{id: X!, requirement: r, check: relay, fix: f}]\n")
    with pytest.raises(ConfigError, match=r"items\.0\.id"):
        load_profile(str(bad))
    with pytest.raises(UsageError, match="no such built-in profile or file"):
        load_profile(str(tmp_path / "missing.yaml"))


def relay(target: str, status: ProbeStatus, transport: str, **data: Any) -> RelayTestResult:
    return RelayTestResult(
        name=f"relay {target}",
        target=target,
        status=status,
        duration_ms=1.0,
        error=None if status is ProbeStatus.OK else "TURN/UDP 203.0.113.10:3478: no answer within 3.0 s",
        data=RelayData(transport=transport, **data),  # type: ignore[arg-type]
    )


def bandwidth(media: str, kbps: float, status: ProbeStatus, got: float) -> BandwidthResult:
    flow = FlowStats(sent=100, received=100, loss=0.0, achieved_kbps=got, jitter_ms=1.0)
    return BandwidthResult(
        name=f"bandwidth {T_UDP}",
        target=T_UDP,
        status=status,
        duration_ms=1.0,
        detail="" if status is ProbeStatus.FAIL else f"{media}: {got} got through",
        error=f"{media}: too little bandwidth" if status is ProbeStatus.FAIL else None,
        data=BandwidthData(media=media, target_kbps=kbps, flow=flow),
    )


def items_for(results: list[ProbeResult]) -> dict[str, ChecklistItem]:
    profile = load_profile("liveperson")
    stun = [parse_uri("stun:203.0.113.10:3478")]
    turn = [parse_uri(T_UDP), parse_uri(T_TLS)]
    return {i.id: i for i in checklist_items(profile, stun, turn, results)}


def test_checklist_passes_measured_items_skips_unserved_ones_and_fails_with_the_fix() -> None:
    results: list[ProbeResult] = [
        relay(T_UDP, ProbeStatus.FAIL, "udp"),
        relay(T_TLS, ProbeStatus.OK, "tls", sent=3, received=3),
        relay(T_UDP, ProbeStatus.OK, "udp", peer="host", peer_address="203.0.113.10:61000"),
        TlsResult(
            name=f"tls {T_TLS}",
            target=T_TLS,
            status=ProbeStatus.OK,
            duration_ms=1.0,
            detail="CN=turn by CN=ca; browsers accept it",
            data=TlsData(browser_accepts=True),
        ),
        bandwidth("voice", 600, ProbeStatus.OK, 601),
        bandwidth("video", 2600, ProbeStatus.FAIL, 950),
    ]
    items = items_for(results)
    assert items["turn-udp-3478"].status == "fail" and items["turn-udp-3478"].fix
    assert "no answer" in items["turn-udp-3478"].measured
    assert items["turn-tls-443"].status == "pass" and items["turn-tls-443"].fix is None
    assert (
        items["turn-tcp-3478"].status == "skipped"
        and "nothing on tcp/3478" in items["turn-tcp-3478"].measured
    )
    assert items["tls-certificate"].status == "pass"
    assert items["relay-range"].status == "warn" and "61000" in items["relay-range"].measured
    assert items["bandwidth-voice"].status == "pass"
    assert (
        items["bandwidth-video"].status == "fail"
        and "too little bandwidth" in items["bandwidth-video"].measured
    )
    assert exit_code(list(items.values())) == 1


def test_failed_optional_items_only_warn_and_do_not_change_the_exit_code() -> None:
    items = items_for([relay(T_UDP, ProbeStatus.FAIL, "udp", peer="host")])
    assert items["relay-range"].status == "warn" and not items["relay-range"].required
    optional_only = [i for i in items.values() if not i.required]
    assert exit_code(optional_only) == 0


def brand_profile(tmp_path: Path, uris: dict[str, str]) -> Path:
    """The LivePerson items with the loopback server's ports (its real ports are random)."""
    port = urlsplit(uris["turn_udp"].replace("turn:", "turn://")).port
    tls_port = urlsplit(uris["turns"].replace("turns:", "turns://")).port
    profile = load_profile("liveperson").model_dump(mode="json")
    for item in profile["items"]:
        if item["port"] == 3478:
            item["port"] = port
        elif item["port"] == 443:
            item["port"] = tls_port
        if item["check"] == "bandwidth":
            item["duration_s"] = 1.0
    path = tmp_path / "brand.yaml"
    path.write_text(json.dumps(Profile.model_validate(profile).model_dump(mode="json")))
    return path


@pytest.mark.coturn
def test_profile_file_against_loopback_coturn_prints_the_checklist_json_and_exits_0(
    loopback_turn: dict[str, str], tmp_path: Path
) -> None:
    args = [
        "--stun",
        loopback_turn["stun"],
        "--turn",
        loopback_turn["turn_udp"],
        "--turn",
        loopback_turn["turn_tcp"],
        "--turn",
        loopback_turn["turns"],
        "--secret-file",
        loopback_turn["secret_file"],
        "--ca-file",
        loopback_turn["ca_file"],
        "--profile",
        str(brand_profile(tmp_path, loopback_turn)),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLOPS_")}
    command = [sys.executable, "-m", "callops", "probe", *args]
    res = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=60, env=env, cwd="/")
    doc = json.loads(res.stdout)
    assert res.returncode == 0, doc
    assert doc["profile"] == "liveperson" and doc["exit_code"] == 0
    status = {i["id"]: i["status"] for i in doc["items"]}
    assert status == {
        "turn-udp-3478": "pass",
        "turn-tcp-3478": "pass",
        "turn-tls-443": "pass",
        "turn-tls-5349": "skipped",
        "tls-certificate": "pass",
        "udp-5004": "skipped",
        "relay-range": status["relay-range"],  # the loopback relay ports may fall above 60000
        "bandwidth-voice": "pass",
        "bandwidth-video": "pass",
    }
    assert status["relay-range"] in ("pass", "warn")
    assert set(doc["items"][0]) == {"id", "requirement", "measured", "status", "required", "fix"}
    assert doc["probe"]["verdict"] == "p2p-likely"
    text = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert text.returncode == 0, text.stderr
    assert "bandwidth-video" in text.stdout and "ready" in text.stdout


@pytest.mark.coturn
def test_an_unknown_profile_is_a_usage_error(loopback_turn: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLOPS_")}
    res = subprocess.run(
        [sys.executable, "-m", "callops", "probe", "--stun", loopback_turn["stun"], "--profile", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd="/",
    )
    assert res.returncode == 2 and "no such built-in profile or file" in res.stderr
    assert "Traceback" not in res.stderr
