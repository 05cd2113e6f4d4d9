"""RFC 5780: the classification (callops.turn.nat_behaviour, pure) and discovery against a real coturn."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn
from callops.turn.nat import discover
from callops.turn.nat_behaviour import (
    AlternateTests,
    Behaviour,
    BindingAnswer,
    alternate_to_test,
    classify_filtering,
    classify_mapping,
    nat_report,
)
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


def _filtering(
    both: bool, port: bool, control: bool, nat: bool | None = True, supported: bool = True
) -> Behaviour:
    return classify_filtering(
        test1_answered=True,
        supported=supported,
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
    assert _filtering(False, False, control=False, nat=None, supported=False) is Behaviour.UNSUPPORTED


# -- nat_report: every answer to the report, without sockets ------------------------------------------

SERVER = ("203.0.113.10", 3478)
LOCAL = ("192.0.2.5", 50000)


def test_a_public_server_naming_a_loopback_alternate_skips_tests_two_and_three() -> None:
    first = BindingAnswer(mapped=M1, other=("127.0.0.1", 3479), source=SERVER)
    assert alternate_to_test(SERVER, first) is None
    report = nat_report(SERVER, LOCAL, first, None)
    assert report.mapping.behaviour is report.filtering.behaviour is Behaviour.SKIPPED
    assert report.other_address_refused is not None and "loopback" in report.other_address_refused
    assert (report.mapped, report.nat) == ("198.51.100.7:40000", True)


def test_test_one_alone_decides_when_the_server_names_no_alternate() -> None:
    first = BindingAnswer(mapped=LOCAL, source=SERVER)
    assert alternate_to_test(SERVER, first) is None
    report = nat_report(SERVER, LOCAL, first, None)
    assert report.mapping.behaviour is report.filtering.behaviour is Behaviour.UNSUPPORTED
    assert report.nat is False


def test_the_alternate_answers_classify_a_port_restricted_cone_and_name_wrong_answers() -> None:
    first = BindingAnswer(mapped=M1, other=OTHER, source=SERVER)
    assert alternate_to_test(SERVER, first) == OTHER
    answers = AlternateTests(
        mapping2=BindingAnswer(mapped=M1, source=(OTHER[0], SERVER[1])),
        mapping3=BindingAnswer(mapped=M1, source=OTHER),  # the control: the alternate answered
        filtering2=BindingAnswer(),
        filtering3=BindingAnswer(error="answer for another transaction"),
    )
    report = nat_report(SERVER, LOCAL, first, answers)
    assert report.mapping.behaviour is Behaviour.ENDPOINT_INDEPENDENT
    assert report.filtering.behaviour is Behaviour.ADDRESS_AND_PORT_DEPENDENT
    assert report.test_errors == {"filtering3": "answer for another transaction"}


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
