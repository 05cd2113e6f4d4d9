"""callops.turn.allocation: TURN allocations over UDP, TCP and TLS against a real coturn."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from callops.errors import AuthenticationError, NetworkError
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.allocation import Allocation, TurnRequestFailed, describe_failure
from callops.turn.coturn import LoopbackCoturn, free_port
from callops.turn.credentials import rest_credentials
from callops.turn.tls import client_context
from callops.turn.uri import parse_uri

pytestmark = pytest.mark.coturn

StartCoturn = Callable[..., LoopbackCoturn]


@pytest.mark.parametrize("which", ["turn_udp", "turn_tcp", "turns"])
def test_allocation_over_each_transport_gives_relayed_and_mapped_addresses(
    coturn: LoopbackCoturn, which: str
) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)
    uri = parse_uri(getattr(coturn, which))

    async def allocate() -> Allocation:
        allocation = await Allocation.open(
            uri, creds.username, creds.credential, timeout=10, ssl_context=client_context(coturn.ca_file)
        )
        await allocation.release(timeout=2)
        return allocation

    allocation = run_bounded(allocate(), 30)
    assert allocation.relayed is not None and allocation.relayed[0] == "127.0.0.1"
    assert allocation.mapped is not None and allocation.mapped[0] == "127.0.0.1"
    assert allocation.allocate_ms is not None and 0 < allocation.allocate_ms < 10_000
    assert allocation.lifetime and allocation.lifetime > 0
    assert allocation.state == "released"


def test_allocation_with_long_term_credentials(start_coturn: StartCoturn) -> None:
    server = start_coturn(users=[("carol", "lt-password")], rfc5780=False)

    async def allocate(password: str) -> Allocation:
        allocation = await Allocation.open(parse_uri(server.turn_tcp), "carol", password, timeout=10)
        await allocation.release(timeout=2)
        return allocation

    assert run_bounded(allocate("lt-password"), 30).relayed is not None
    with pytest.raises(AuthenticationError, match="401: credentials rejected"):
        run_bounded(allocate("wrong"), 30)


def test_tls_to_a_server_with_an_unknown_certificate_is_rejected_with_the_fix(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)

    async def allocate() -> None:
        # The system CAs do not know the self-signed test certificate.
        await Allocation.open(
            parse_uri(coturn.turns),
            creds.username,
            creds.credential,
            timeout=10,
            ssl_context=client_context(),
        )

    with pytest.raises(NetworkError) as info:
        run_bounded(allocate(), 30)
    assert f"TURN/TLS 127.0.0.1:{coturn.tls_port}: TLS certificate rejected" in str(info.value)
    assert "--ca-file" in str(info.value)


def test_tls_insecure_mode_skips_verification(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(coturn.secret, "alice", ttl=300)

    async def allocate() -> Allocation:
        allocation = await Allocation.open(
            parse_uri(coturn.turns),
            creds.username,
            creds.credential,
            timeout=10,
            ssl_context=client_context(insecure=True),
        )
        await allocation.aclose()
        return allocation

    assert run_bounded(allocate(), 30).relayed is not None


@pytest.mark.parametrize(
    ("scheme", "message"),
    [
        ("turn:127.0.0.1:{port}?transport=tcp", "TURN/TCP 127.0.0.1:{port}: connection refused"),
        ("turns:127.0.0.1:{port}", "TURN/TLS 127.0.0.1:{port}: connection refused"),
        ("turn:127.0.0.1:{port}", "TURN/UDP 127.0.0.1:{port}: port unreachable"),
    ],
)
def test_nothing_listening_fails_fast_with_the_servers_label(scheme: str, message: str) -> None:
    port = free_port()

    async def allocate() -> None:
        await Allocation.open(parse_uri(scheme.format(port=port)), "u", "p", timeout=5)

    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        run_bounded(allocate(), 30)
    assert str(info.value).startswith(message.format(port=port))
    assert time.monotonic() - started < 3


def test_create_permission_to_a_loopback_peer_is_refused_without_allow_loopback_peers(
    start_coturn: StartCoturn,
) -> None:
    server = start_coturn(rfc5780=False)
    creds = rest_credentials(server.secret, "alice", ttl=300)

    async def permission() -> None:
        allocation = await Allocation.open(
            parse_uri(server.turn_udp), creds.username, creds.credential, timeout=10
        )
        async with allocation:
            await allocation.create_permission("127.0.0.1", timeout=5)

    with pytest.raises(TurnRequestFailed) as info:
        run_bounded(permission(), 30)
    assert info.value.code == 403
    assert "CreatePermission 127.0.0.1 failed: 403: forbidden" in str(info.value)


def test_describe_failure_reports_expiry_of_rest_usernames() -> None:
    from aioice import stun

    response = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.ERROR)
    response.attributes["ERROR-CODE"] = (401, "Unauthorized")
    exc = describe_failure(
        "TURN/UDP h:1", "Allocate", stun.TransactionFailed(response), "1000:alice", now=1060.0
    )
    assert isinstance(exc, AuthenticationError)
    assert "expired 60 s ago" in str(exc)
    response.attributes["ERROR-CODE"] = (486, "Allocation Quota Reached")
    quota = describe_failure("TURN/UDP h:1", "Allocate", stun.TransactionFailed(response), "u", now=0)
    assert isinstance(quota, TurnRequestFailed)
    assert str(quota) == "TURN/UDP h:1: Allocate failed: 486: allocation quota reached for this user"


def test_secret_never_appears_in_an_allocation_error(coturn: LoopbackCoturn) -> None:
    creds = rest_credentials(Secret("hunter2-secret"), "alice", ttl=300)

    async def allocate() -> None:
        await Allocation.open(parse_uri(coturn.turn_udp), creds.username, creds.credential, timeout=10)

    with pytest.raises(AuthenticationError) as info:
        run_bounded(allocate(), 30)
    assert creds.credential not in str(info.value)
    assert "hunter2" not in str(info.value)
