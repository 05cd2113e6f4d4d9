"""The ice_two_site module against a real ``probe serve`` responder and coturn, on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.probe.ice import IceSettings
from callops.orchestrator.probe.twosite import Responder
from callops.secret import Secret
from callops.testing import run_bounded
from callops.turn.coturn import LoopbackCoturn, free_port

pytestmark = pytest.mark.coturn

TOKEN = "exporter-two-site-token-0123456789"


def test_ice_two_site_reports_each_path_and_the_verdict(
    coturn: LoopbackCoturn, secret_file: Path, tmp_path: Path, kit: Any
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    module = {
        "prober": "ice_two_site",
        "token_file": str(token_file),
        "turn": [coturn.turn_udp],
        "secret_file": str(secret_file),
        "host_addresses": ["127.0.0.1"],
        "paths": ["host", "relay-udp"],
        "timeout": 15,
    }
    settings = kit.settings_for(
        {"two_site": module, "wrong_token": {**module, "token_file": str(secret_file)}}
    )

    async def body() -> tuple[str, str, str]:
        responder = Responder(Secret(TOKEN), IceSettings(host_addresses=["127.0.0.1"]))
        port = free_port()
        server = await responder.start("127.0.0.1", port)
        try:
            async with kit.running_exporter(settings) as (base, _):
                url = f"ws://127.0.0.1:{port}"
                _, good = await kit.get(f"{base}/probe?module=two_site&target={url}")
                _, bad = await kit.get(f"{base}/probe?module=wrong_token&target={url}")
                status, malformed = await kit.get(f"{base}/probe?module=two_site&target=http://x")
                assert status == 400
                return good, bad, malformed
        finally:
            server.close()
            await server.wait_closed()

    good, bad, malformed = run_bounded(body(), 60)
    assert kit.value(good, "probe_success") == 1, good
    rows = kit.samples(good)
    assert {labels["path"]: v for labels, v in rows["probe_ice_path_success"]} == {"host": 1, "relay-udp": 1}
    ((verdict, _),) = rows["probe_ice_two_site_info"]
    assert verdict["verdict"] == "p2p" and verdict["relay_transports"] == "udp"
    pairs = {labels["path"]: labels for labels, _ in rows["probe_ice_selected_pair_info"]}
    assert pairs["relay-udp"]["local_type"] == "relay"
    assert {labels["path"] for labels, _ in rows["probe_ice_path_rtt_seconds"]} <= {"host", "relay-udp"}
    assert kit.value(bad, "probe_success") == 0
    ((reason, _),) = kit.samples(bad)["probe_failure_info"]
    assert "rejected the token" in reason["reason"]
    assert coturn.secret.reveal() not in bad  # the wrong token was the TURN secret: never echoed
    assert "ws:// or wss:// URL" in malformed
