"""From typed probe results to the report document: facts, NAT summary, peers, ICE servers."""

from __future__ import annotations

import json

from callops.orchestrator.probe.onesite_report import build_report
from callops.orchestrator.probe.verdict import ProbeFacts
from callops.turn.nat_behaviour import Behaviour
from callops.turn.results import (
    PROBE_RESULT,
    NatData,
    NatResult,
    ProbeResult,
    ProbeStatus,
    RelayData,
    RelayTestResult,
    StunData,
    StunResult,
)

APD = Behaviour.ADDRESS_AND_PORT_DEPENDENT
RESULTS: list[ProbeResult] = [
    StunResult(
        name="stun-udp stun:203.0.113.10:3478",
        kind="stun-udp",
        target="stun:203.0.113.10:3478",
        status=ProbeStatus.OK,
        duration_ms=1.0,
        data=StunData(mapped="203.0.113.30:1000", rtt_ms=0.5),
    ),
    NatResult(
        name="nat stun:203.0.113.10:3478",
        target="stun:203.0.113.10:3478",
        status=ProbeStatus.OK,
        duration_ms=1.0,
        data=NatData(nat=True, mapping=APD, filtering=APD, mapped="203.0.113.30:1000"),
    ),
    RelayTestResult(
        name="relay turn:203.0.113.10:3478?transport=udp",
        target="turn:203.0.113.10:3478?transport=udp",
        status=ProbeStatus.FAIL,
        duration_ms=1.0,
        data=RelayData(transport="udp"),
    ),
    RelayTestResult(
        name="relay turns:203.0.113.10:443?transport=tcp",
        target="turns:203.0.113.10:443?transport=tcp",
        status=ProbeStatus.OK,
        duration_ms=1.0,
        data=RelayData(sent=3, received=3, loss=0.0, transport="tls"),
    ),
]


def test_facts_take_the_relay_transport_from_the_typed_result_and_skip_failed_ones() -> None:
    facts = ProbeFacts.from_results(RESULTS)
    assert facts.relays_working == (("tls", "turns:203.0.113.10:443?transport=tcp"),)
    assert facts.mapping is APD and facts.nat is True
    assert facts.stun_answered == ("stun:203.0.113.10:3478",)


def test_a_failed_nat_probe_leaves_the_behaviour_unknown() -> None:
    failed = NatResult(
        name="nat x", target="stun:203.0.113.10", status=ProbeStatus.FAIL, duration_ms=1.0, data=NatData()
    )
    facts = ProbeFacts.from_results([failed])
    assert (facts.mapping, facts.nat) == (None, None)


def test_results_round_trip_through_json_with_their_types() -> None:
    for result in RESULTS:
        again = PROBE_RESULT.validate_json(result.model_dump_json())
        assert type(again) is type(result) and again == result


def test_unset_data_fields_stay_out_of_the_json() -> None:
    doc = json.loads(RESULTS[2].model_dump_json())
    assert doc["data"] == {"transport": "udp"}
    assert list(doc)[:3] == ["name", "kind", "target"]


def test_report_document_has_the_documented_fields_and_rest_credentials_on_turn_only() -> None:
    report = build_report(RESULTS, timeout_s=5, duration_ms=10, username="1:u", credential="c", insecure=True)
    doc = report.model_dump(mode="json")
    assert {"verdict", "relay_transports", "nat", "checks", "ice_servers", "peers", "site_class"} <= set(doc)
    assert doc["verdict"] == "relay-required" and doc["relay_transports"] == ["tls"]
    assert doc["exit_code"] == 1
    assert doc["nat"]["mapping"] == "address-and-port-dependent"
    assert set(doc["checks"][0]) == {"name", "status", "duration_ms", "detail", "error"}
    assert doc["ice_servers"] == [
        {"urls": ["stun:203.0.113.10:3478"], "username": None, "credential": None},
        {"urls": ["turns:203.0.113.10:443?transport=tcp"], "username": "1:u", "credential": "c"},
    ]
    assert doc["insecure"] is True and "NOT verified" in doc["warnings"][0]


def test_report_peers_have_the_documented_shape() -> None:
    doc = json.loads(build_report(RESULTS, timeout_s=5, duration_ms=10).model_dump_json())
    assert doc["site_class"] == "symmetric"
    assert doc["peers"] == {
        "open": {"path": "p2p"},
        "address-restricted": {"path": "p2p"},
        "port-restricted": {"path": "relay", "transport": "tls"},
        "symmetric": {"path": "relay", "transport": "tls"},
        "relay-only": {"path": "relay", "transport": "tls"},
    }
