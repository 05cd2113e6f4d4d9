"""RFC 4787 hole punching between NAT types: the table the one-site ``peers`` prediction rests on."""

from __future__ import annotations

import pytest

from callops.turn import nat_behaviour as nat

EI, AD, APD = nat.PROVEN

#: The classic table (e.g. RFC 5128 section 3.3 and its references): which cone/symmetric pairs punch.
EXPECTED: dict[tuple[nat.PeerClass, nat.PeerClass], bool] = {
    ("open", "open"): True,
    ("open", "address-restricted"): True,
    ("open", "port-restricted"): True,
    ("open", "symmetric"): True,
    ("address-restricted", "address-restricted"): True,
    ("address-restricted", "port-restricted"): True,
    ("address-restricted", "symmetric"): True,
    ("port-restricted", "port-restricted"): True,
    ("port-restricted", "symmetric"): False,
    ("symmetric", "symmetric"): False,
}


@pytest.mark.parametrize(("a", "b"), list(EXPECTED))
def test_hole_punching_between_classes_follows_the_table_both_ways(
    a: nat.PeerClass, b: nat.PeerClass
) -> None:
    assert nat.hole_punch(nat.CLASS_TYPES[a], nat.CLASS_TYPES[b]) is EXPECTED[(a, b)]
    assert nat.hole_punch(nat.CLASS_TYPES[b], nat.CLASS_TYPES[a]) is EXPECTED[(a, b)]


def test_a_symmetric_nat_that_filters_nothing_still_lets_peers_in() -> None:
    assert nat.hole_punch(nat.NatType(APD, EI), nat.CLASS_TYPES["symmetric"])


def test_no_nat_means_endpoint_independent_mapping_with_any_unproven_filtering() -> None:
    types = nat.possible_types(False, None, nat.Behaviour.INCONCLUSIVE)
    assert {t.mapping for t in types} == {EI} and {t.filtering for t in types} == {EI, AD, APD}


def test_proven_behaviours_leave_one_type() -> None:
    assert nat.possible_types(True, EI, APD) == [nat.NatType(EI, APD)]


def test_class_of_names_dependent_mappings_symmetric() -> None:
    assert nat.class_of(nat.NatType(AD, AD)) == "symmetric"
    assert nat.class_of(nat.NatType(EI, AD)) == "address-restricted"
