"""Pure parts of the two-site ICE glue: which TURN URI a class uses, which addresses are public."""

from __future__ import annotations

import pytest

from callops.errors import UsageError
from callops.orchestrator.probe.ice import IceSettings, is_public, make_connection
from callops.turn.uri import parse_uri

TURNS = [
    parse_uri("turn:203.0.113.10:3478?transport=udp"),
    parse_uri("turn:203.0.113.10:3478?transport=tcp"),
    parse_uri("turns:203.0.113.10:443?transport=tcp"),
]


def test_each_relay_class_takes_the_turn_uri_of_its_transport() -> None:
    ice = IceSettings(turn=TURNS)
    assert ice.turn_over("udp") == TURNS[0]
    assert ice.turn_over("tcp") == TURNS[1]
    assert ice.turn_over("tls") == TURNS[2]
    assert IceSettings(turn=TURNS[2:]).turn_over("tcp") is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("198.51.100.2", True),
        ("203.0.113.30", True),
        ("10.201.2.2", False),
        ("192.168.1.5", False),
        ("127.0.0.1", False),
        ("100.64.0.1", False),
        ("not-an-ip", False),
    ],
)
def test_public_addresses_are_those_outside_private_shared_and_loopback_ranges(
    address: str, public: bool
) -> None:
    assert is_public(address) is public


def test_a_relay_class_without_its_turn_uri_or_credentials_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no TURN URI over tls"):
        make_connection(
            "relay-tls", IceSettings(turn=TURNS[:1], username="u", password="p"), controlling=True
        )
    with pytest.raises(UsageError, match="no TURN credentials"):
        make_connection("relay-udp", IceSettings(turn=TURNS), controlling=True)
    with pytest.raises(UsageError, match="needs a STUN server"):
        make_connection("srflx", IceSettings(), controlling=True)
