"""Fixtures of the load tests: a real coturn on loopback (loopback peers allowed: the two
allocations of a simulated call relay to each other) and a plan factory for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.load.plan import LoadPlan
from callops.orchestrator.load.runner import LoadRun
from callops.secret import Secret
from callops.turn.coturn import LoopbackCoturn
from callops.turn.credentials import rest_credentials


@pytest.fixture
def relay(start_relay: Callable[..., LoopbackCoturn]) -> LoopbackCoturn:
    """coturn on 127.0.0.1 (UDP/TCP and TLS), use-auth-secret, loopback peers allowed."""
    return start_relay(rfc5780=False)


@pytest.fixture
def load_command(relay: LoopbackCoturn, tmp_path: Path) -> list[str]:
    """``load --turn <relay's UDP URI> --secret-file <its secret, written to a file>``: callops' argv."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(relay.secret.reveal())
    return ["load", "--turn", relay.turn_udp, "--secret-file", str(secret_file)]


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
