"""callops.turn.nat: RFC 5780 classification (pure) and discovery against a real coturn."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn
from callops.turn.nat import Behaviour, classify_filtering, classify_mapping, discover
from callops.turn.probes import ProbeStatus, nat_behaviour

StartCoturn = Callable[..., LoopbackCoturn]

M1 = ("198.51.100.7", 40000)
OTHER = ("203.0.113.20", 3479)


def test_mapping_same_towards_alternate_ip_is_endpoint_independent() -> None:
    assert classify_mapping(M1, OTHER, M1, None).behaviour is Behaviour.ENDPOINT_INDEPENDENT


def test_mapping_changing_with_ip_but_not_port_is_address_dependent() -> None:
    m2 = ("198.51.100.7", 40001)
    assert classify_mapping(M1, OTHER, m2, m2).behaviour is Behaviour.ADDRESS_DEPENDENT


def test_mapping_changing_with_ip_and_port_is_address_and_port_dependent() -> None:
    verdict = classify_mapping(M1, OTHER, ("198.51.100.7", 40001), ("198.51.100.7", 40002))
    assert verdict.behaviour is Behaviour.ADDRESS_AND_PORT_DEPENDENT


def test_mapping_without_other_address_says_server_lacks_rfc5780() -> None:
    verdict = classify_mapping(M1, None, None, None)
    assert verdict.behaviour is Behaviour.UNSUPPORTED
    assert "does not support RFC 5780" in verdict.reason


@pytest.mark.parametrize(("test2", "test3"), [(None, None), (("198.51.100.7", 40001), None)])
def test_mapping_with_a_missing_answer_is_inconclusive(
    test2: tuple[str, int] | None, test3: tuple[str, int] | None
) -> None:
    assert classify_mapping(M1, OTHER, test2, test3).behaviour is Behaviour.INCONCLUSIVE
    assert classify_mapping(None, None, None, None).behaviour is Behaviour.INCONCLUSIVE


def _filtering(both: bool, port: bool, control: bool, nat: bool | None = True) -> Behaviour:
    return classify_filtering(
        test1_answered=True,
        supported=True,
        change_ip_and_port_answered=both,
        change_port_answered=port,
        control_ok=control,
        nat=nat,
    ).behaviour


def test_filtering_answer_from_alternate_ip_and_port_is_endpoint_independent() -> None:
    assert _filtering(True, True, control=False) is Behaviour.ENDPOINT_INDEPENDENT


def test_filtering_answer_only_from_alternate_port_is_address_dependent() -> None:
    assert _filtering(False, True, control=True) is Behaviour.ADDRESS_DEPENDENT


def test_filtering_no_answers_with_a_successful_control_is_address_and_port_dependent() -> None:
    assert _filtering(False, False, control=True) is Behaviour.ADDRESS_AND_PORT_DEPENDENT


def test_filtering_missing_answers_without_a_control_prove_nothing() -> None:
    assert _filtering(False, False, control=False) is Behaviour.INCONCLUSIVE
    assert _filtering(False, True, control=False) is Behaviour.INCONCLUSIVE


def test_filtering_missing_answers_without_a_nat_are_inconclusive() -> None:
    assert _filtering(False, False, control=True, nat=False) is Behaviour.INCONCLUSIVE


def test_filtering_against_a_server_without_rfc5780_is_unsupported() -> None:
    verdict = classify_filtering(
        test1_answered=True,
        supported=False,
        change_ip_and_port_answered=False,
        change_port_answered=False,
        control_ok=False,
        nat=None,
    )
    assert verdict.behaviour is Behaviour.UNSUPPORTED


@pytest.mark.coturn
def test_discovery_on_loopback_finds_no_nat_and_endpoint_independent_behaviour(
    coturn: LoopbackCoturn,
) -> None:
    report = run_bounded(discover((coturn.host, coturn.port), timeout=10), 30)
    assert report.nat is False
    assert report.other_address == f"127.0.0.2:{coturn.other_port}"
    assert report.mapping.behaviour is Behaviour.ENDPOINT_INDEPENDENT
    assert report.filtering.behaviour is Behaviour.ENDPOINT_INDEPENDENT


@pytest.mark.coturn
def test_nat_probe_reports_mapping_and_filtering(coturn: LoopbackCoturn) -> None:
    result = run_bounded(nat_behaviour(coturn.stun_uri, 10), 30)
    assert result.status is ProbeStatus.OK, result.error
    assert result.data.mapping == "endpoint-independent"
    assert result.data.filtering == "endpoint-independent"


@pytest.mark.coturn
def test_nat_probe_says_when_the_server_does_not_support_rfc5780(start_coturn: StartCoturn) -> None:
    server = start_coturn(rfc5780=False)
    result = run_bounded(nat_behaviour(server.stun_uri, 10), 30)
    assert result.status is ProbeStatus.SKIPPED
    assert result.detail == "server does not support RFC 5780 (no OTHER-ADDRESS)"
    assert result.data.mapping == "unsupported"
