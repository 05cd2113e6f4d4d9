"""Fixtures of the deploy tests: one deployment model, rendered bundles, network namespaces.

``deploy_netns`` creates a namespace ``callops-deploy-XXXX`` with loopback and a veth pair whose
``veth0`` holds 198.51.100.1/24 (TEST-NET-2): the install script binds coturn there on its default
ports without touching the host, and every process left in the namespace is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from callops.deploy.render import DeployOptions, render_bundle, write_bundle
from callops.turn.config import TurnDeployment

#: the relay's address inside the namespace
NETNS_ADDRESS = "198.51.100.1"


@pytest.fixture
def netns_address() -> str:
    return NETNS_ADDRESS


@pytest.fixture
def netns_deployment() -> TurnDeployment:
    """A relay on 198.51.100.1 that may relay to itself (the probe's relay-to-relay echo)."""
    return TurnDeployment.model_validate(
        {
            "realm": "callops.test",
            "listening_ips": [NETNS_ADDRESS],
            "relay_ips": [NETNS_ADDRESS],
            "allowed_peer_ips": [f"{NETNS_ADDRESS}/32"],
            "min_port": 49152,
            "max_port": 49999,
            "total_quota": 800,
            "log_file": None,
            "secret_file": "/etc/coturn/turn-secret",
        }
    )


#: a relay behind a 1:1 NAT (external IP 203.0.113.10)
_NATTED_RELAY = {
    "realm": "turn.example.com",
    "listening_ips": ["10.0.0.5"],
    "relay_ips": ["10.0.0.5"],
    "external_ips": [{"public": "203.0.113.10", "private": "10.0.0.5"}],
}


@pytest.fixture
def deployment() -> TurnDeployment:
    """The NATted relay with TLS on 443."""
    return TurnDeployment.model_validate(
        {
            **_NATTED_RELAY,
            "tls_listening_port": 443,
            "tls_cert_file": "/etc/coturn/tls/fullchain.pem",
            "tls_key_file": "/etc/coturn/tls/privkey.pem",
        }
    )


@pytest.fixture
def relay_without_tls() -> TurnDeployment:
    """The NATted relay, TURN over UDP and TCP only."""
    return TurnDeployment.model_validate(_NATTED_RELAY)


@pytest.fixture
def systemd_bundle(tmp_path: Path, netns_deployment: TurnDeployment) -> Path:
    """The systemd bundle of ``netns_deployment``, in ``tmp_path / "bundle"``."""
    out = tmp_path / "bundle"
    write_bundle(render_bundle(netns_deployment, "systemd", DeployOptions(probe_timeout=15)), out)
    return out


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def create_netns() -> str:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace")
    name = f"callops-deploy-{secrets.token_hex(3)}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        _ip("-n", name, "addr", "add", f"{NETNS_ADDRESS}/24", "dev", "veth0")
        _ip("-n", name, "link", "set", "veth0", "up")
        _ip("-n", name, "link", "set", "veth1", "up")
    except BaseException:
        delete_netns(name)
        raise
    return name


def delete_netns(name: str) -> None:
    """Kill what still runs in the namespace (only processes this test started), then delete it."""
    pids = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, check=False, timeout=20
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False, timeout=20)


@pytest.fixture
def deploy_netns() -> Iterator[str]:
    name = create_netns()
    try:
        yield name
    finally:
        delete_netns(name)
