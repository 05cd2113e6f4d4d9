"""The ``bandwidth`` and ``liveperson`` modules against a real coturn on loopback, through /probe.

``bandwidth`` runs :func:`callops.turn.bandwidth.bandwidth_test` (a call-shaped flow through two
allocations); ``liveperson`` runs a readiness profile (:mod:`callops.orchestrator.probe.profile`)
against the target host's TURN servers. Flows are short (1 s at 300 kbit/s) to keep the tests quick.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from callops.errors import ConfigError
from callops.orchestrator.exporter.exporter_config import BandwidthModule, LivePersonModule
from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn

if TYPE_CHECKING:
    from tests.orchestrator.exporter.conftest import Kit

RATE_KBPS = 300


def probe_url(base: str, module: str, target: str) -> str:
    return f"{base}/probe?module={module}&target={target}"


def probe_pages(
    kit: Kit, modules: Mapping[str, object], *queries: tuple[str, str], within: float = 20
) -> list[str]:
    """The /probe pages (each with status 200) of an exporter serving ``modules``, one per
    ``(module, target)`` query, in order."""

    async def body() -> list[str]:
        pages = []
        async with kit.running_exporter(kit.settings_for(modules)) as (base, _):
            for module, target in queries:
                status, text = await kit.get(probe_url(base, module, target))
                assert status == 200, text
                pages.append(str(text))
        return pages

    return run_bounded(body(), within)


def by_label(rows: list[tuple[dict[str, str], float]], label: str) -> dict[str, float]:
    return {labels[label]: value for labels, value in rows}


def closed_tcp_port() -> int:
    """A loopback TCP port nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- bandwidth ---------------------------------------------------------------------------------------


@pytest.mark.coturn
def test_bandwidth_module_reports_the_rate_that_got_through(
    coturn: LoopbackCoturn, secret_file: Path, kit: Any
) -> None:
    modules = {
        "bandwidth_voice": {
            "prober": "bandwidth",
            "secret_file": str(secret_file),
            "rate_kbps": RATE_KBPS,
            "floor_kbps": 200,
            "duration": 1.0,
            "timeout": 5,
        },
    }
    (text,) = probe_pages(kit, modules, ("bandwidth_voice", f"{coturn.host}:{coturn.port}"))
    assert kit.value(text, "probe_success") == 1, text
    rates = by_label(kit.samples(text)["probe_bandwidth_bits_per_second"], "direction")
    # loopback: the whole flow gets through, within pacing error
    assert 0.85 * RATE_KBPS * 1000 <= rates["flow"] <= 1.15 * RATE_KBPS * 1000, rates
    assert rates["feedback"] > 0
    assert kit.value(text, "probe_bandwidth_target_bits_per_second") == RATE_KBPS * 1000
    assert kit.value(text, "probe_bandwidth_floor_bits_per_second") == 200_000
    assert kit.value(text, "probe_bandwidth_target_met") == 1
    assert kit.value(text, "probe_bandwidth_loss_ratio") < 0.05
    assert 0 <= kit.value(text, "probe_bandwidth_jitter_seconds") < 0.05
    assert 0 < kit.value(text, "probe_bandwidth_rtt_seconds") < 0.5
    assert 0.5 <= kit.value(text, "probe_bandwidth_sending_seconds") <= 1.2
    sent = by_label(kit.samples(text)["probe_bandwidth_packets_sent"], "direction")
    received = by_label(kit.samples(text)["probe_bandwidth_packets_received"], "direction")
    assert sent["flow"] >= 40 and received["flow"] >= 0.95 * sent["flow"]


@pytest.mark.coturn
def test_bandwidth_module_with_a_wrong_secret_fails_with_the_reason(
    coturn: LoopbackCoturn, tmp_path: Path, kit: Any
) -> None:
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret\n")
    wrong.chmod(0o600)
    modules = {"bw": {"prober": "bandwidth", "secret_file": str(wrong), "duration": 1.0, "timeout": 4}}
    (text,) = probe_pages(kit, modules, ("bw", f"{coturn.host}:{coturn.port}"))
    assert kit.value(text, "probe_success") == 0
    ((labels, _),) = kit.samples(text)["probe_failure_info"]
    assert "401" in labels["reason"] or "credential" in labels["reason"].lower(), labels
    assert "not-the-secret" not in text
    assert "probe_bandwidth_bits_per_second" not in kit.samples(text)


def test_bandwidth_module_takes_rate_floor_and_duration_from_a_profile_item(kit: Any) -> None:
    settings = kit.settings_for(
        {"video": {"prober": "bandwidth", "secret_env": "S", "item": "bandwidth-video", "timeout": 6}}
    )
    module = settings.modules["video"]
    assert isinstance(module, BandwidthModule)
    spec = module.flow_spec()
    assert (spec.media, spec.target_kbps, spec.floor_kbps, spec.duration_s) == ("video", 2600, 1100, 2.5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"item": "turn-udp-3478"}, "'turn-udp-3478' is not a bandwidth item of profile liveperson"),
        ({"rate_kbps": 9000}, "rate_kbps: Input should be less than or equal to 4000"),
        ({"rate_kbps": 600, "floor_kbps": 700}, "floor 700.0 kbit/s must be > 0 and <= the target"),
        ({"duration": 9, "timeout": 5}, "make it at least duration + 1 = 10 s"),
    ],
)
def test_bad_bandwidth_modules_are_config_errors_naming_the_field(
    fields: dict[str, object], message: str, kit: Any
) -> None:
    with pytest.raises(ConfigError) as caught:
        kit.settings_for({"bw": {"prober": "bandwidth", "secret_env": "S", **fields}})
    assert message in str(caught.value)


# -- liveperson ---------------------------------------------------------------------------------------


def write_profile(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"name": "test-brand", "title": "Test brand", "items": items}))
    return path


def relay_item(item_id: str, transport: str, port: int, *, required: bool = True) -> dict[str, object]:
    return {
        "id": item_id,
        "requirement": f"TURN on {transport} {port}",
        "check": "relay",
        "transport": transport,
        "port": port,
        "required": required,
        "fix": f"allow {transport} {port}",
    }


@pytest.mark.coturn
def test_liveperson_module_gives_one_series_per_checklist_item(
    coturn: LoopbackCoturn, secret_file: Path, tmp_path: Path, kit: Any
) -> None:
    items = [
        relay_item("turn-udp", "udp", coturn.port),
        relay_item("turn-tcp", "tcp", coturn.port),
        relay_item("turn-tls", "tls", coturn.tls_port),
        relay_item("turn-tls-443", "tls", 443, required=False),  # not served here: skipped
        # coturn's certificate here is self-signed: browsers reject it, an optional item only warns
        {
            "id": "tls-certificate",
            "requirement": "a certificate browsers accept",
            "check": "tls-certificate",
            "required": False,
            "fix": "use a public CA",
        },
        {
            "id": "relay-range",
            "requirement": "relay media on UDP 1024-65535",
            "check": "relay-range",
            "ports": [1024, 65535],
            "required": False,
            "fix": "open the range",
        },
        {
            "id": "bandwidth-voice",
            "requirement": f"voice: {RATE_KBPS} kbit/s",
            "check": "bandwidth",
            "media": "voice",
            "kbps": RATE_KBPS,
            "floor_kbps": 200,
            "duration_s": 1.0,
            "fix": "more bandwidth",
        },
    ]
    profile = write_profile(tmp_path / "brand.yaml", items)
    dead = closed_tcp_port()
    broken = write_profile(tmp_path / "broken.yaml", [relay_item("turn-tcp-dead", "tcp", dead)])
    common = {"prober": "liveperson", "secret_file": str(secret_file), "ca_file": str(coturn.ca_file)}
    serves = [f"udp/{coturn.port}", f"tcp/{coturn.port}", f"tls/{coturn.tls_port}"]
    modules = {
        "brand": {**common, "profile": str(profile), "serves": serves},
        "broken": {**common, "profile": str(broken), "serves": [f"tcp/{dead}"], "timeout": 5},
    }
    good, bad = probe_pages(
        kit, modules, ("brand", coturn.host), ("broken", f"{coturn.host}:{coturn.port}"), within=40
    )
    assert kit.value(good, "probe_success") == 1, good
    success = by_label(kit.samples(good)["probe_liveperson_item_success"], "item")
    assert success == {
        "turn-udp": 1,
        "turn-tcp": 1,
        "turn-tls": 1,
        "tls-certificate": 0,
        "relay-range": 1,
        "bandwidth-voice": 1,
    }, good
    status = {
        labels["item"]: labels["status"] for labels, _ in kit.samples(good)["probe_liveperson_item_info"]
    }
    assert status["turn-tls-443"] == "skipped" and status["bandwidth-voice"] == "pass"
    assert status["tls-certificate"] == "warn"

    assert kit.value(bad, "probe_success") == 0
    assert by_label(kit.samples(bad)["probe_liveperson_item_success"], "item") == {"turn-tcp-dead": 0}
    ((labels, _),) = kit.samples(bad)["probe_failure_info"]
    assert labels["reason"].startswith("test-brand items failed -- turn-tcp-dead:"), labels
    assert coturn.secret.reveal() not in good + bad


def test_liveperson_module_serves_the_profile_ports_unless_told(kit: Any) -> None:
    settings = kit.settings_for(
        {
            "lp": {"prober": "liveperson", "secret_env": "S"},
            "lp_site": {"prober": "liveperson", "secret_env": "S", "serves": ["udp/3478", "tls/443"]},
        }
    )
    default, narrowed = settings.modules["lp"], settings.modules["lp_site"]
    assert isinstance(default, LivePersonModule) and isinstance(narrowed, LivePersonModule)
    assert default.served() == [("udp", 3478), ("tcp", 3478), ("tls", 443), ("tls", 5349)]
    assert narrowed.served() == [("udp", 3478), ("tls", 443)]
    with pytest.raises(ConfigError, match=r"serves: 'quic/443' is not TRANSPORT/PORT"):
        kit.settings_for({"lp": {"prober": "liveperson", "secret_env": "S", "serves": ["quic/443"]}})
    with pytest.raises(ConfigError, match="no such built-in profile or file"):
        kit.settings_for({"lp": {"prober": "liveperson", "secret_env": "S", "profile": "/nope.yaml"}})
