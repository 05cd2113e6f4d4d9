"""The IANA special-purpose ranges (callops.turn.ranges) used by the renderer and the lint."""

from __future__ import annotations

import ipaddress

import pytest

from callops.turn.ranges import (
    SPECIAL_RANGES,
    RangeSet,
    denied_by_default,
    is_private_address,
    parse_coturn_range,
    special_range_of,
)


def test_every_range_cites_an_rfc_and_is_a_proper_network() -> None:
    for entry in SPECIAL_RANGES:
        assert entry.rfc.startswith("RFC "), entry
        assert entry.network == ipaddress.ip_network(str(entry.network))


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.31.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.1",
        "224.0.0.251",
        "255.255.255.255",
        "::1",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2001:db8::1",
    ],
)
def test_special_addresses_are_denied_by_default(address: str) -> None:
    denied = RangeSet((r.first, r.last) for r in denied_by_default())
    assert ipaddress.ip_address(address) in denied


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "192.31.196.1"])
def test_global_addresses_are_not_denied(address: str) -> None:
    denied = RangeSet((r.first, r.last) for r in denied_by_default())
    assert ipaddress.ip_address(address) not in denied


def test_most_specific_range_wins() -> None:
    found = special_range_of("169.254.169.254")
    assert found is not None and found.kind == "link-local"
    assert special_range_of("8.8.8.8") is None
    assert is_private_address("10.0.0.5") and is_private_address("100.64.1.1")
    assert not is_private_address("127.0.0.1") and not is_private_address("203.0.113.9")


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("10.0.0.1", "10.0.0.1", "10.0.0.1"),
        ("10.0.0.0-10.255.255.255", "10.0.0.0", "10.255.255.255"),
        ("10.0.0.0/8", "10.0.0.0", "10.255.255.255"),
        ('"fc00::-fdff::"', "fc00::", "fdff::"),
    ],
)
def test_parse_coturn_range_accepts_coturn_forms(text: str, first: str, last: str) -> None:
    lo, hi = parse_coturn_range(text)
    assert (str(lo), str(hi)) == (first, last)


@pytest.mark.parametrize("text", ["10.0.0.9-10.0.0.1", "10.0.0.1-::1", "not-an-ip", ""])
def test_parse_coturn_range_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_coturn_range(text)


def test_range_set_merges_adjacent_spans() -> None:
    ranges = RangeSet()
    ranges.add(*parse_coturn_range("10.0.0.0-10.127.255.255"))
    ranges.add(*parse_coturn_range("10.128.0.0-10.255.255.255"))
    assert ranges.covers(ipaddress.ip_network("10.0.0.0/8"))
    assert not ranges.covers(ipaddress.ip_network("11.0.0.0/8"))
    assert ranges.overlaps(ipaddress.ip_network("10.5.0.0/16"))
