"""``callops call-site`` under a real fault: the relay of a relayed call between two processes dies.

Each side watches what it decodes and its own ICE/DTLS (docs/call.md "Mid-call health"): when
coturn is killed with SIGKILL mid-call, both sides end ``dropped`` (exit 1) within 5 s, each
counting its loss from the other side's RTCP sender reports. Run with
``flock /tmp/callops-heavy.lock`` (a timing bound).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from callops.orchestrator.call.embedded import EmbeddedTurn, available
from callops.orchestrator.call.report import CallReport
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig
from callops.testing import run_bounded

if TYPE_CHECKING:
    from tests.orchestrator.conftest import SiteKit

MEDIA_MARK = "media decoded from the other side"


@pytest.mark.skipif(not available(), reason="coturn's turnserver is not installed")
def test_relay_killed_mid_call_drops_both_sides_within_5s(tmp_path: Path, site_kit: SiteKit) -> None:
    secret_file = tmp_path / "turn-secret"

    async def body(turn: EmbeddedTurn) -> tuple[list[CallReport], list[int], float]:
        async with Emulator(EmulatorConfig()) as emulator:
            common = [
                "--emulator", emulator.base_url, "--loopback-only", "--duration", "20", "--json",
                "--turn", turn.url, "--secret-file", str(secret_file), "--policy", "relay",
            ]  # fmt: skip
            async with site_kit.call_sites(*common, verbose=True) as start:
                consumer = await start("consumer")
                conversation = await site_kit.ready(consumer, 60)
                agent = await start("agent", "--conversation", conversation)
                await asyncio.gather(
                    site_kit.line_with(consumer.stderr, MEDIA_MARK, 60),
                    site_kit.line_with(agent.stderr, MEDIA_MARK, 60),
                )
                assert turn.process is not None and turn.process.process is not None
                os.kill(turn.process.process.pid, signal.SIGKILL)
                killed = time.monotonic()
                procs = (consumer, agent)
                outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 30)
                after = time.monotonic() - killed
            reports = [CallReport.model_validate_json(out) for out, _ in outs]
            return reports, [p.returncode or 0 for p in procs], after

    with EmbeddedTurn() as turn:
        secret_file.write_text(turn.secret.reveal())
        secret_file.chmod(0o600)
        reports, codes, after = run_bounded(body(turn), 120)
    assert codes == [1, 1]
    assert after < 5.0, f"both reports {after:.2f} s after the kill"
    for report, role in zip(reports, ("consumer", "agent"), strict=True):
        other = "agent" if role == "consumer" else "consumer"
        assert report.outcome == "dropped" and report.ok is False
        assert report.failure is not None and report.failure.startswith(
            f"call dropped: media {other}->{role}"
        )
        [gap] = report.interruptions
        assert (gap.direction, gap.to_ms) == (f"{other}->{role}", None)
        received = next(m for m in report.stats.media if m.direction == f"{other}->{role}")
        # the other side's sender report, or sequence numbers if none arrived yet (RTCP every 0.5-1.5 s)
        assert received.loss_method in ("rtcp-sender-report", "rtcp-sequence")
        assert received.packets_received > 0
