"""RFC 5780 discovery through a real Linux NAT (iptables MASQUERADE) in network namespaces.

Three namespaces: a client on 10.99.0.2, a NAT router (MASQUERADE to 203.0.113.1) and a coturn
listening on 203.0.113.10 and 203.0.113.11. Linux NAT keeps the source port (endpoint-independent
mapping) and lets in only answers from the address and port a packet went to (conntrack):
address-and-port-dependent filtering -- which callops may only conclude because the control
(an answer from the alternate address in mapping test III) succeeded.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callops.secret import Secret
from callops.turn.coturn import CoturnProcess, loopback_config_lines
from callops.turn.tls import make_self_signed

pytestmark = [pytest.mark.netns, pytest.mark.coturn, pytest.mark.slow]

SERVER_IPS = ("203.0.113.10", "203.0.113.11")
PORT, ALT_PORT = 3478, 3479


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture
def nat_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None:
        pytest.skip("needs root, ip and iptables")
    tag = secrets.token_hex(3)
    ns = {"cli": f"c5780c{tag}", "nat": f"c5780n{tag}", "srv": f"c5780s{tag}"}
    try:
        for name in ns.values():
            _run("ip", "netns", "add", name)
            _run("ip", "-n", name, "link", "set", "lo", "up")
        _run(
            "ip",
            "link",
            "add",
            f"cn{tag}",
            "netns",
            ns["cli"],
            "type",
            "veth",
            "peer",
            "name",
            f"nc{tag}",
            "netns",
            ns["nat"],
        )
        _run(
            "ip",
            "link",
            "add",
            f"ns{tag}",
            "netns",
            ns["nat"],
            "type",
            "veth",
            "peer",
            "name",
            f"sn{tag}",
            "netns",
            ns["srv"],
        )
        _run("ip", "-n", ns["cli"], "addr", "add", "10.99.0.2/24", "dev", f"cn{tag}")
        _run("ip", "-n", ns["nat"], "addr", "add", "10.99.0.1/24", "dev", f"nc{tag}")
        _run("ip", "-n", ns["nat"], "addr", "add", "203.0.113.1/24", "dev", f"ns{tag}")
        for ip in SERVER_IPS:
            _run("ip", "-n", ns["srv"], "addr", "add", f"{ip}/24", "dev", f"sn{tag}")
        for name, dev in (
            (ns["cli"], f"cn{tag}"),
            (ns["nat"], f"nc{tag}"),
            (ns["nat"], f"ns{tag}"),
            (ns["srv"], f"sn{tag}"),
        ):
            _run("ip", "-n", name, "link", "set", dev, "up")
        _run("ip", "-n", ns["cli"], "route", "add", "default", "via", "10.99.0.1")
        _run("ip", "netns", "exec", ns["nat"], "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run(
            "ip",
            "netns",
            "exec",
            ns["nat"],
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            f"ns{tag}",
            "-j",
            "MASQUERADE",
        )
        yield ns
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def test_discovery_through_linux_masquerade_finds_eim_mapping_and_apdf_filtering(
    nat_lab: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLOPS_PYTHON", sys.executable)
    cert, key = make_self_signed(tmp_path, list(SERVER_IPS))
    lines = loopback_config_lines(
        secret=Secret("lab"),
        cert=cert,
        key=key,
        port=PORT,
        alt_port=ALT_PORT,
        tls_port=5349,
        alt_tls_port=5350,
    )
    lines = [line for line in lines if not line.startswith(("listening-ip=", "relay-ip="))] + [
        f"listening-ip={SERVER_IPS[0]}",
        f"listening-ip={SERVER_IPS[1]}",
        f"relay-ip={SERVER_IPS[0]}",
    ]
    conf = tmp_path / "turnserver.conf"
    conf.write_text("\n".join(lines) + "\n")
    code = (
        "import asyncio,sys;from callops.turn.nat import discover;"
        f"r=asyncio.run(discover(({SERVER_IPS[0]!r},{PORT}),timeout=5.0));print(r.model_dump_json())"
    )
    with CoturnProcess(
        conf, workdir=tmp_path, ready_address=(SERVER_IPS[0], PORT), netns=nat_lab["srv"], start_timeout=20
    ):
        res = subprocess.run(
            ["ip", "netns", "exec", nat_lab["cli"], sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["nat"] is True
    assert report["mapped"].startswith("203.0.113.1:")
    assert report["other_address"] == f"{SERVER_IPS[1]}:{ALT_PORT}"
    assert report["mapping"]["behaviour"] == "endpoint-independent"
    assert report["filtering"]["behaviour"] == "address-and-port-dependent", report["filtering"]
