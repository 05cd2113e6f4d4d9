"""Each prober against a real coturn on loopback, through the exporter's HTTP /probe."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn

pytestmark = pytest.mark.coturn


def probe_url(base: str, module: str, target: str) -> str:
    return f"{base}/probe?module={module}&target={target}"


def test_stun_module_needs_no_config_and_reports_rtt_and_mapped_address(
    coturn: LoopbackCoturn, kit: Any
) -> None:
    async def body() -> str:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            status, text = await kit.get(probe_url(base, "stun", f"{coturn.host}:{coturn.port}"))
            assert status == 200, text
            # the URI form of the target works too
            status, same = await kit.get(probe_url(base, "stun", f"stun:{coturn.host}:{coturn.port}"))
            assert status == 200 and kit.value(same, "probe_success") == 1
            return str(text)

    text = run_bounded(body(), 30)
    assert kit.value(text, "probe_success") == 1
    assert 0 < kit.value(text, "probe_stun_rtt_seconds") < 1
    ((labels, _),) = kit.samples(text)["probe_stun_mapped_address_info"]
    assert labels["address"].startswith("127.0.0.1:")


def test_turn_over_udp_tcp_and_tls_allocates_and_times_the_401_round(
    coturn: LoopbackCoturn, secret_file: Path, kit: Any
) -> None:
    settings = kit.settings_for(kit.turn_modules(secret_file, coturn.ca_file))

    async def body() -> dict[str, str]:
        out = {}
        async with kit.running_exporter(settings) as (base, _):
            for module, port in (
                ("turn_udp", coturn.port),
                ("turn_tcp", coturn.port),
                ("turn_tls", coturn.tls_port),
            ):
                status, text = await kit.get(probe_url(base, module, f"127.0.0.1:{port}"))
                assert status == 200, text
                out[module] = text
        return out

    for module, text in run_bounded(body(), 40).items():
        assert kit.value(text, "probe_success") == 1, (module, text)
        assert 0 < kit.value(text, "probe_turn_allocate_seconds") < 2
        ((labels, _),) = kit.samples(text)["probe_turn_relayed_address_info"]
        assert labels["transport"] == module.removeprefix("turn_")
        assert labels["address"].startswith("127.0.0.1:")


def test_relay_module_reports_rtt_and_loss(coturn: LoopbackCoturn, secret_file: Path, kit: Any) -> None:
    settings = kit.settings_for(kit.turn_modules(secret_file, coturn.ca_file))

    async def body() -> str:
        async with kit.running_exporter(settings) as (base, _):
            return str((await kit.get(probe_url(base, "relay", f"127.0.0.1:{coturn.port}")))[1])

    text = run_bounded(body(), 30)
    assert kit.value(text, "probe_success") == 1, text
    assert kit.value(text, "probe_relay_loss_ratio") == 0
    assert kit.value(text, "probe_relay_packets_sent") == 5
    assert 0 < kit.value(text, "probe_relay_rtt_seconds") <= kit.value(text, "probe_relay_rtt_max_seconds")


def test_wrong_secret_fails_with_the_reason_and_never_shows_the_secret(
    coturn: LoopbackCoturn, tmp_path: Path, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-secret-7f3a9c1e5b"
    (tmp_path / "wrong").write_text(wrong)
    settings = kit.settings_for(
        {"turn_udp": {"prober": "turn", "transport": "udp", "secret_file": str(tmp_path / "wrong")}}
    )

    async def body() -> list[str]:
        async with kit.running_exporter(settings) as (base, _):
            _, probe = await kit.get(probe_url(base, "turn_udp", f"127.0.0.1:{coturn.port}"))
            _, page = await kit.get(base + "/")
            _, own = await kit.get(base + "/metrics")
            return [probe, page, own]

    caplog.set_level("DEBUG")
    probe, page, own = run_bounded(body(), 30)
    assert kit.value(probe, "probe_success") == 0
    ((labels, _),) = kit.samples(probe)["probe_failure_info"]
    assert "401" in labels["reason"] or "rejected" in labels["reason"], labels
    for text in (probe, page, own, caplog.text):
        assert wrong not in text
    assert "failed" in caplog.text  # one log line per failure


def test_tls_module_reports_expiry_and_whether_the_chain_verified(coturn: LoopbackCoturn, kit: Any) -> None:
    settings = kit.settings_for({"tls_ca": {"prober": "tls", "ca_file": str(coturn.ca_file)}})

    async def body() -> tuple[str, str]:
        async with kit.running_exporter(settings) as (base, _):
            _, trusted = await kit.get(probe_url(base, "tls_ca", f"127.0.0.1:{coturn.tls_port}"))
            _, untrusted = await kit.get(probe_url(base, "tls", f"127.0.0.1:{coturn.tls_port}"))
            return trusted, untrusted

    trusted, untrusted = run_bounded(body(), 30)
    assert kit.value(trusted, "probe_success") == 1
    assert kit.value(trusted, "probe_tls_cert_verified") == 1
    assert 29 < kit.value(trusted, "probe_tls_cert_days_left") <= 30  # make_self_signed: 30 days
    # the default module trusts the system CAs only: a failure, but the expiry is still reported
    assert kit.value(untrusted, "probe_success") == 0
    assert kit.value(untrusted, "probe_tls_cert_verified") == 0
    assert 29 < kit.value(untrusted, "probe_tls_cert_days_left") <= 30
    ((labels, _),) = kit.samples(untrusted)["probe_failure_info"]
    assert "certificate" in labels["reason"]


def test_nat_module_reports_mapping_and_filtering_as_labels(coturn: LoopbackCoturn, kit: Any) -> None:
    async def body() -> str:
        async with kit.running_exporter(kit.settings_for({})) as (base, _):
            return str((await kit.get(probe_url(base, "nat", f"127.0.0.1:{coturn.port}")))[1])

    text = run_bounded(body(), 30)
    assert kit.value(text, "probe_success") == 1, text
    ((labels, _),) = kit.samples(text)["probe_nat_info"]
    assert labels["mapping"] == "endpoint-independent"
    assert labels["filtering"] == "endpoint-independent"


def test_a_dead_relay_is_probe_success_0_within_the_scrape_timeout(kit: Any, tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("x" * 20)
    settings = kit.settings_for(
        {"turn_udp": {"prober": "turn", "transport": "udp", "secret_file": str(secret)}}
    )
    # a UDP port that swallows everything: no answer, no ICMP
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        port = hole.getsockname()[1]

        async def body() -> str:
            async with kit.running_exporter(settings) as (base, _):
                headers = {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"}
                return str((await kit.get(probe_url(base, "turn_udp", f"127.0.0.1:{port}"), headers))[1])

        text = run_bounded(body(), 20)
    assert kit.value(text, "probe_success") == 0
    assert kit.value(text, "probe_timeout_seconds") == 1.0  # 1.5 s minus the 0.5 s margin
    assert kit.value(text, "probe_duration_seconds") < 1.3
    ((labels, _),) = kit.samples(text)["probe_failure_info"]
    assert "no answer" in labels["reason"]
