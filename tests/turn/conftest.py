"""Fixtures of the turn tests: real coturn processes on loopback with per-test ports and configs.

``coturn``: use-auth-secret, UDP/TCP + TLS (self-signed) listeners, RFC 5780 on 127.0.0.1 and
127.0.0.2, loopback peers allowed (the relay tests use local echo peers). ``start_coturn`` starts
more, with other config lines (``start_coturn(extra=[...], rfc5780=False)``). Every process is
stopped after its test.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from callops.secret import Secret
from callops.turn.coturn import CoturnProcess, LoopbackCoturn, find_turnserver, start_loopback_coturn

StartCoturn = Callable[..., LoopbackCoturn]


@pytest.fixture
def start_coturn(tmp_path: Path) -> Iterator[StartCoturn]:
    """Factory: ``start_coturn(extra=[...], rfc5780=True)`` -> :class:`LoopbackCoturn`."""
    find_turnserver()
    started: list[CoturnProcess] = []

    def start(
        extra: Sequence[str] = (), rfc5780: bool = True, users: Sequence[tuple[str, str]] = ()
    ) -> LoopbackCoturn:
        workdir = tmp_path / f"coturn{len(started)}"
        workdir.mkdir()
        secret = Secret(secrets.token_hex(16), source="test")
        server = start_loopback_coturn(workdir, secret=secret, extra=extra, rfc5780=rfc5780, users=users)
        started.append(server.process)
        return server

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def coturn(start_coturn: StartCoturn) -> LoopbackCoturn:
    """use-auth-secret, UDP/TCP, TLS, RFC 5780 (127.0.0.1 + 127.0.0.2), loopback peers allowed."""
    return start_coturn(extra=["allow-loopback-peers"])
