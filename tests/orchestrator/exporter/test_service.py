"""/probe's contract: 400 with the reason, the scrape timeout, bounded concurrency, isolation."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn


@pytest.fixture
def udp_hole() -> Iterator[int]:
    """A UDP port that swallows every packet (no answer, no ICMP): a dead STUN/TURN server."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        yield int(hole.getsockname()[1])


@pytest.mark.parametrize(
    ("query", "headers", "reason"),
    [
        (
            "module=nope&target=127.0.0.1:3478",
            {},
            "unknown module 'nope'; this exporter has: bandwidth, nat, stun, tls",
        ),
        ("target=127.0.0.1:3478", {}, "parameter 'module' is missing"),
        ("module=stun", {}, "parameter 'target' is missing"),
        ("module=stun&target=", {}, "target is empty"),
        ("module=stun&target=a:b:c", {}, "an IPv6 host must be in brackets"),
        ("module=stun&target=host:99999", {}, "port '99999' is not a number in 1-65535"),
        ("module=stun&target=bad%20host", {}, "is not HOST[:PORT]"),
        ("module=tls&target=http://x", {}, "is not HOST[:PORT]"),
        (
            "module=stun&target=127.0.0.1:3478",
            {"X-Prometheus-Scrape-Timeout-Seconds": "soon"},
            "X-Prometheus-Scrape-Timeout-Seconds: 'soon' is not a number",
        ),
        ("module=bandwidth&target=[::1", {}, "target '[::1'"),
    ],
)
def test_bad_requests_get_400_with_the_reason(
    query: str, headers: dict[str, str], reason: str, kit: Any
) -> None:
    modules = {"bandwidth": {"prober": "bandwidth", "secret_env": "CALLOPS_TURN_SECRET"}}

    async def body() -> tuple[int, str]:
        async with kit.running_exporter(kit.settings_for(modules)) as (base, _):
            return await kit.get(f"{base}/probe?{query}", headers)  # type: ignore[no-any-return]

    status, text = run_bounded(body(), 20)
    assert status == 400
    assert reason in text


def test_unknown_paths_and_methods(kit: Any) -> None:
    async def body() -> tuple[int, int]:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            missing, _ = await kit.get(base + "/nothing")
            reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
            writer.write(b"POST /probe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            head = await reader.readuntil(b"\r\n")
            writer.close()
            return missing, int(head.split()[1])

    assert run_bounded(body(), 20) == (404, 405)


def test_a_malformed_request_gets_400_and_other_clients_are_served(coturn: LoopbackCoturn, kit: Any) -> None:
    async def body() -> tuple[bytes, int, str]:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            port = int(base.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /probe HTTP/1.1\r\nno colon here\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            status, text = await kit.get(f"{base}/probe?module=stun&target=127.0.0.1:{coturn.port}")
            return answer, status, text

    answer, status, text = run_bounded(body(), 20)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert status == 200 and kit.value(text, "probe_success") == 1


def test_keep_alive_serves_several_requests_on_one_connection(kit: Any) -> None:
    async def body() -> list[bytes]:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
            heads = []
            for _ in range(3):
                writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(
                        b":"
                    )[1]
                )
                await reader.readexactly(length)
                heads.append(head.split(b"\r\n")[0])
            writer.close()
            return heads

    assert run_bounded(body(), 20) == [b"HTTP/1.1 200 OK"] * 3


def test_a_slow_module_never_delays_another_modules_answer(
    coturn: LoopbackCoturn, udp_hole: int, kit: Any
) -> None:
    """Slow targets fill their module's slots; a STUN probe of another module still answers at once."""
    settings = kit.settings_for({"slow": {"prober": "stun", "timeout": 3, "concurrency": 2}})

    async def body() -> tuple[float, str, list[tuple[int, str]]]:
        async with kit.running_exporter(settings) as (base, exporter):
            slow = [
                asyncio.create_task(kit.get(f"{base}/probe?module=slow&target=127.0.0.1:{udp_hole}"))
                for _ in range(4)
            ]
            await exporter.admitted(4)  # all four admitted: two running, two waiting for a slot
            started = time.monotonic()
            _, fast = await kit.get(f"{base}/probe?module=stun&target=127.0.0.1:{coturn.port}")
            elapsed = time.monotonic() - started
            return elapsed, fast, list(await asyncio.gather(*slow))

    elapsed, fast, slow = run_bounded(body(), 30)
    assert kit.value(fast, "probe_success") == 1
    assert elapsed < 1.0
    # every slow answer came within its own 3 s budget; the two that never got a slot say why
    reasons = []
    for status, text in slow:
        assert status == 200
        assert kit.value(text, "probe_success") == 0
        assert kit.value(text, "probe_duration_seconds") < 3.3
        reasons.append(kit.samples(text)["probe_failure_info"][0][0]["reason"])
    assert sum("exporter busy" in r for r in reasons) == 2, reasons


def test_requests_beyond_max_pending_get_503(udp_hole: int, kit: Any) -> None:
    settings = kit.settings_for({"slow": {"prober": "stun", "timeout": 2, "concurrency": 1}}, max_pending=2)

    async def body() -> int:
        async with kit.running_exporter(settings) as (base, exporter):
            held = [
                asyncio.create_task(kit.get(f"{base}/probe?module=slow&target=127.0.0.1:{udp_hole}"))
                for _ in range(2)
            ]
            await exporter.admitted(2)
            status, _ = await kit.get(f"{base}/probe?module=stun&target=127.0.0.1:{udp_hole}")
            await asyncio.gather(*held)
            return int(status)

    assert run_bounded(body(), 20) == 503


def test_own_metrics_count_probes_by_module_and_result(
    coturn: LoopbackCoturn, udp_hole: int, kit: Any
) -> None:
    async def body() -> tuple[str, str]:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            await kit.get(f"{base}/probe?module=stun&target=127.0.0.1:{coturn.port}")
            await kit.get(
                f"{base}/probe?module=stun&target=127.0.0.1:{udp_hole}",
                {"X-Prometheus-Scrape-Timeout-Seconds": "0.8"},
            )
            await kit.get(f"{base}/probe?module=nope&target=x")
            _, own = await kit.get(base + "/metrics")
            _, page = await kit.get(base + "/")
            return own, page

    own, page = run_bounded(body(), 20)
    rows = kit.samples(own)
    counted = {(labels["module"], labels["result"]): v for labels, v in rows["callops_exporter_probes_total"]}
    assert counted == {("stun", "success"): 1, ("stun", "failure"): 1}
    assert rows["callops_exporter_requests_rejected_total"] == [({"reason": "bad_request"}, 1.0)]
    assert rows["process_resident_memory_bytes"][0][1] > 0
    assert page.count("<tr><td>20") == 2  # two recent probes listed
    assert "no answer" in page


def test_openmetrics_is_answered_when_prometheus_asks_for_it(coturn: LoopbackCoturn, kit: Any) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"

    async def body() -> str:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            return str(
                (
                    await kit.get(
                        f"{base}/probe?module=stun&target=127.0.0.1:{coturn.port}", {"Accept": accept}
                    )
                )[1]
            )

    assert run_bounded(body(), 20).rstrip().endswith("# EOF")


def test_config_names_each_bad_field(kit: Any, tmp_path: Path) -> None:
    from callops.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        kit.settings_for({"t": {"prober": "turn", "transport": "sctp"}, "u": {"prober": "stun", "colour": 1}})
    message = str(err.value)
    assert "exporter.modules.t.turn.transport" in message
    assert "exporter.modules.u.stun.colour: unknown field" in message
    with pytest.raises(ConfigError, match="TURN credentials missing"):
        kit.settings_for({"t": {"prober": "turn"}})
    with pytest.raises(ConfigError, match="module name"):
        kit.settings_for({"a b": {"prober": "stun"}})


def test_an_oversized_request_head_gets_431(kit: Any) -> None:
    async def body() -> bytes:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer

    assert run_bounded(body(), 20).startswith(b"HTTP/1.1 431 ")
