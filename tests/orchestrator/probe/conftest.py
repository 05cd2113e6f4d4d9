"""A real coturn on loopback (UDP/TCP and TLS with a certificate from a test CA) for the probe tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callops.testing import tls_coturn
from callops.turn.tls import make_ca, make_certificate


@pytest.fixture
def loopback_turn(tmp_path: Path) -> Iterator[dict[str, str]]:
    """URIs (``stun``, ``turn_udp``, ``turn_tcp``, ``turns``) and files (``secret_file``, ``ca_file``)."""
    ca = make_ca(tmp_path / "ca")
    certificate = make_certificate(tmp_path / "server", ca, ["127.0.0.1"])
    process, port, tls_port = tls_coturn(
        tmp_path, certificate, "probe-test-secret", relay_ports=40, allow_loopback_peers=True
    )
    with process:
        yield {
            "stun": f"stun:127.0.0.1:{port}",
            "turn_udp": f"turn:127.0.0.1:{port}?transport=udp",
            "turn_tcp": f"turn:127.0.0.1:{port}?transport=tcp",
            "turns": f"turns:127.0.0.1:{tls_port}?transport=tcp",
            "secret_file": str(tmp_path / "secret"),
            "ca_file": str(ca[0]),
        }
