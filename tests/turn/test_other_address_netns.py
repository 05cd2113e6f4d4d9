"""A "public" STUN server that names a loopback OTHER-ADDRESS, in a network namespace.

In a namespace of its own (prefix ``input``), 203.0.113.10 and 203.0.113.11 stand in for public
addresses. A hostile STUN server on 203.0.113.10 answers every Binding request with OTHER-ADDRESS
127.0.0.1:3479, and UDP listeners on 127.0.0.1:3478/3479 count what reaches them: callops must send
nothing there and say why it skipped tests II and III. The control: the same server naming
203.0.113.11 (public, like itself) gets tests II and III.
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

pytestmark = [pytest.mark.netns]

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, json, sys
from aioice import stun
from callops.turn.probes import nat_behaviour

ALTERNATE = (sys.argv[1], 3479)
counts = {}

class Counter(asyncio.DatagramProtocol):
    def __init__(self, name, answer):
        self.name, self.answer = name, answer
    def connection_made(self, transport):
        self.transport = transport
    def datagram_received(self, data, addr):
        counts[self.name] = counts.get(self.name, 0) + 1
        if self.answer:
            request = stun.parse_message(data)
            response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, request.transaction_id)
            response.attributes["XOR-MAPPED-ADDRESS"] = addr
            response.attributes["OTHER-ADDRESS"] = ALTERNATE
            self.transport.sendto(bytes(response), addr)

async def main():
    loop = asyncio.get_running_loop()
    endpoints = [
        ("primary", ("203.0.113.10", 3478), True),
        ("loopback-3478", ("127.0.0.1", 3478), True),
        ("loopback-3479", ("127.0.0.1", 3479), True),
        ("public-3478", ("203.0.113.11", 3478), True),
        ("public-3479", ("203.0.113.11", 3479), True),
    ]
    for name, local, answer in endpoints:
        await loop.create_datagram_endpoint(lambda n=name, a=answer: Counter(n, a), local_addr=local)
    result = await nat_behaviour("stun:203.0.113.10:3478", 3.0)
    data = result.data.model_dump(mode="json", exclude_none=True)
    print(json.dumps({"status": result.status.value, "detail": result.detail, "data": data,
                      "counts": counts}))

asyncio.run(main())
"""


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip")
    name = f"input-oa-{secrets.token_hex(3)}"
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "-n", name, "link", "set", "lo", "up")
        for ip in ("203.0.113.10", "203.0.113.11"):
            _run("ip", "-n", name, "addr", "add", f"{ip}/32", "dev", "lo")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def _discover(namespace: str, alternate: str) -> dict[str, object]:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", SCRIPT, alternate],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_public_server_never_makes_callops_send_to_loopback(namespace: str) -> None:
    report = _discover(namespace, "127.0.0.1")
    counts = report["counts"]
    assert isinstance(counts, dict)
    assert counts.get("loopback-3478", 0) == 0 and counts.get("loopback-3479", 0) == 0, counts
    assert counts["primary"] == 1  # test I, answered at once: nothing else was sent
    assert report["status"] == "skipped"
    detail = str(report["detail"])
    assert "tests II and III skipped: OTHER-ADDRESS 127.0.0.1:3479 is a loopback address" in detail
    assert "203.0.113.10 a public one" in detail


def test_a_public_server_naming_a_public_alternate_gets_the_rfc5780_tests(namespace: str) -> None:
    report = _discover(namespace, "203.0.113.11")
    counts = report["counts"]
    assert isinstance(counts, dict)
    assert counts.get("public-3478", 0) >= 1 and counts.get("public-3479", 0) >= 1, counts
    assert counts.get("loopback-3478", 0) == 0 and counts.get("loopback-3479", 0) == 0
    assert report["status"] != "skipped", report
