"""callops.turn.uri: STUN/TURN URIs parse strictly and print back."""

from __future__ import annotations

import pytest

from callops.errors import UsageError
from callops.turn.uri import ServerUri, parse_uri


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "transport", "secure"),
    [
        ("stun:stun.example.com", "stun", "stun.example.com", 3478, "udp", False),
        ("stuns:stun.example.com", "stuns", "stun.example.com", 5349, "tcp", True),
        ("turn:203.0.113.10:3479", "turn", "203.0.113.10", 3479, "udp", False),
        ("turn:turn.example.com?transport=tcp", "turn", "turn.example.com", 3478, "tcp", False),
        ("turns:turn.example.com:443?transport=tcp", "turns", "turn.example.com", 443, "tcp", True),
        ("TURN:[2001:db8::1]:3478", "turn", "2001:db8::1", 3478, "udp", False),
    ],
)
def test_parse_uri_gives_scheme_host_port_transport_with_rfc_defaults(
    text: str, scheme: str, host: str, port: int, transport: str, secure: bool
) -> None:
    uri = parse_uri(text)
    assert (uri.scheme, uri.host, uri.port, uri.transport, uri.secure) == (
        scheme,
        host,
        port,
        transport,
        secure,
    )


@pytest.mark.parametrize(
    "text",
    [
        "turns:turn.example.com:443?transport=tcp",
        "turn:203.0.113.10:3478",
        "turn:203.0.113.10:3478?transport=udp",
        "turn:[2001:db8::1]:3478?transport=tcp",
        "stun:stun.example.com:19302",
    ],
)
def test_str_of_a_parsed_uri_is_the_uri(text: str) -> None:
    assert str(parse_uri(text)) == text
    assert parse_uri(str(parse_uri(text))) == parse_uri(text)


def test_str_adds_the_default_port() -> None:
    assert str(parse_uri("turns:turn.example.com")) == "turns:turn.example.com:5349"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("http://x", "scheme"),
        ("turn.example.com", "scheme"),
        ("turn:", "host"),
        ("turn://turn.example.com", "'//'"),
        ("turn:turn.example.com:0", "port"),
        ("turn:turn.example.com:70000", "port"),
        ("turn:turn.example.com:abc", "port"),
        ("turn:turn.example.com?transport=sctp", "transport"),
        ("turn:turn.example.com?proto=tcp", "query"),
        ("stun:stun.example.com?transport=tcp", "query"),
        ("turns:turn.example.com?transport=udp", "DTLS"),
        ("turn:2001:db8::1", "brackets"),
        ("turn:[2001:db8::1", "']'"),
        ("turn:[not-v6]:3478", "IPv6"),
        ("turn:bad host:3478", "host"),
    ],
)
def test_parse_uri_rejects_bad_uris_naming_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_uri(text)
    assert named in str(info.value)
    assert info.value.exit_code == 2


def test_label_names_protocol_and_address_as_an_engineer_writes_it() -> None:
    assert parse_uri("turns:203.0.113.10:443?transport=tcp").label == "TURN/TLS 203.0.113.10:443"
    assert parse_uri("stun:[2001:db8::1]").label == "STUN/UDP [2001:db8::1]:3478"
    assert isinstance(parse_uri("turn:x"), ServerUri)
