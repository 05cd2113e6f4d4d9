"""From probe results to the report document: facts, NAT summary, ICE servers."""

from __future__ import annotations

from typing import Any

from callops.orchestrator.probe.report import build_report, facts_from_results
from callops.turn.probes import ProbeResult, ProbeStatus


def result(kind: str, target: str, status: ProbeStatus, **data: Any) -> ProbeResult:
    return ProbeResult(
        name=f"{kind} {target}", kind=kind, target=target, status=status, duration_ms=1.0, data=data
    )


RESULTS = [
    result("stun-udp", "stun:203.0.113.10:3478", ProbeStatus.OK, mapped="203.0.113.30:1000"),
    result(
        "nat",
        "stun:203.0.113.10:3478",
        ProbeStatus.OK,
        nat=True,
        mapping="address-and-port-dependent",
        filtering="address-and-port-dependent",
        mapped="203.0.113.30:1000",
    ),
    result("relay", "turn:203.0.113.10:3478?transport=udp", ProbeStatus.FAIL),
    result("relay", "turns:203.0.113.10:443?transport=tcp", ProbeStatus.OK),
]


def test_facts_take_tls_relays_from_turns_uris_and_skip_failed_ones() -> None:
    facts = facts_from_results(RESULTS)
    assert facts.relays_working == (("tls", "turns:203.0.113.10:443?transport=tcp"),)
    assert facts.mapping == "address-and-port-dependent" and facts.nat is True


def test_a_failed_nat_probe_leaves_the_behaviour_unknown() -> None:
    facts = facts_from_results([result("nat", "stun:203.0.113.10", ProbeStatus.FAIL, mapping="x")])
    assert (facts.mapping, facts.nat) == ("unknown", None)


def test_report_document_has_the_documented_fields_and_rest_credentials_on_turn_only() -> None:
    report = build_report(RESULTS, timeout_s=5, duration_ms=10, username="1:u", credential="c", insecure=True)
    doc = report.model_dump(mode="json")
    assert {"verdict", "relay_transports", "nat", "checks", "ice_servers"} <= set(doc)
    assert doc["verdict"] == "relay-required" and doc["relay_transports"] == ["tls"]
    assert doc["exit_code"] == 1
    assert doc["nat"]["mapping"] == "address-and-port-dependent"
    assert set(doc["checks"][0]) == {"name", "status", "duration_ms", "detail", "error"}
    assert doc["ice_servers"] == [
        {"urls": ["stun:203.0.113.10:3478"], "username": None, "credential": None},
        {"urls": ["turns:203.0.113.10:443?transport=tcp"], "username": "1:u", "credential": "c"},
    ]
    assert doc["insecure"] is True and "NOT verified" in doc["warnings"][0]
