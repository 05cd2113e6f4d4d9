"""A real coturn on loopback (UDP/TCP and TLS with a certificate from a test CA) for the probe tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callops.secret import Secret
from callops.turn.config import TurnDeployment, write_turnserver_conf
from callops.turn.coturn import CoturnProcess, free_port
from callops.turn.tls import make_ca, make_certificate


@pytest.fixture
def loopback_turn(tmp_path: Path) -> Iterator[dict[str, str]]:
    """URIs (``stun``, ``turn_udp``, ``turn_tcp``, ``turns``) and files (``secret_file``, ``ca_file``)."""
    port, tls_port = free_port(), free_port()
    relay = free_port()
    secret_file = tmp_path / "secret"
    secret_file.write_text("probe-test-secret\n")
    ca = make_ca(tmp_path / "ca")
    cert, key = make_certificate(tmp_path / "server", ca, ["127.0.0.1"])
    deployment = TurnDeployment.loopback(
        port=port,
        min_port=relay,
        max_port=relay + 40,
        secret_file=secret_file,
        allow_loopback_peers=True,
        tls_port=tls_port,
        tls_cert_file=cert,
        tls_key_file=key,
    )
    conf = write_turnserver_conf(deployment, tmp_path / "turnserver.conf", secret=Secret("probe-test-secret"))
    with CoturnProcess(conf, workdir=tmp_path / "coturn", ready_address=("127.0.0.1", port)):
        yield {
            "stun": f"stun:127.0.0.1:{port}",
            "turn_udp": f"turn:127.0.0.1:{port}?transport=udp",
            "turn_tcp": f"turn:127.0.0.1:{port}?transport=tcp",
            "turns": f"turns:127.0.0.1:{tls_port}?transport=tcp",
            "secret_file": str(secret_file),
            "ca_file": str(ca[0]),
        }
