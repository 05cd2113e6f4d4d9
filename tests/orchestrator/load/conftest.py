"""Fixtures of the load tests: a real coturn on loopback (loopback peers allowed: the two
allocations of a simulated call relay to each other) and a plan factory for it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.load.plan import LoadPlan
from callops.orchestrator.load.runner import LoadRun
from callops.secret import Secret
from callops.turn.coturn import LoopbackCoturn, find_turnserver, start_loopback_coturn
from callops.turn.credentials import rest_credentials


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[LoopbackCoturn]:
    """coturn on 127.0.0.1 (UDP/TCP and TLS), use-auth-secret, loopback peers allowed."""
    find_turnserver()
    workdir = tmp_path / "coturn"
    workdir.mkdir()
    server = start_loopback_coturn(
        workdir,
        secret=Secret(secrets.token_hex(16), source="test"),
        extra=["allow-loopback-peers"],
        rfc5780=False,
    )
    try:
        yield server
    finally:
        server.process.stop()


def uri_of(relay: LoopbackCoturn, transport: str) -> str:
    return {"udp": relay.turn_udp, "tcp": relay.turn_tcp, "tls": relay.turns}[transport]


@pytest.fixture
def make_plan(relay: LoopbackCoturn) -> Callable[..., LoadPlan]:
    """``make_plan(transport, **fields)``: a short plan against :func:`relay` (CA file set for TLS)."""

    def make(transport: str = "udp", **fields: Any) -> LoadPlan:
        values: dict[str, Any] = {
            "turn": uri_of(relay, transport),
            "calls": 2,
            "duration_s": 1.5,
            "workers": 1,
            "ca_file": str(relay.ca_file),
        }
        values.update(fields)
        return LoadPlan(**values)

    return make


@pytest.fixture
def load_run(relay: LoopbackCoturn) -> Callable[..., LoadRun]:
    def make(**fields: Any) -> LoadRun:
        creds = rest_credentials(relay.secret, "load-test")
        return LoadRun(username=creds.username, password=Secret(creds.credential, source="test"), **fields)

    return make
