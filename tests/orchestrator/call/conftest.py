"""Fixtures of the call tests: a real coturn on loopback with a fresh shared secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callops.orchestrator.call.embedded import EmbeddedTurn, available


@pytest.fixture
def local_turn() -> Iterator[EmbeddedTurn]:
    if not available():
        pytest.skip("coturn's turnserver is not installed")
    with EmbeddedTurn() as turn:
        yield turn
