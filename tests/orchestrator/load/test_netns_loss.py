"""Loss injected with iptables (statistic drop) in a network namespace shows up as measured loss."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from callops.orchestrator.lab.netns import lab_environment_problem
from callops.orchestrator.load.reporting import LoadReport

pytestmark = [pytest.mark.netns, pytest.mark.coturn]


def test_five_percent_dropped_on_the_way_to_the_relay_is_measured() -> None:
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    namespace = f"load-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        done = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                sys.executable,
                str(Path(__file__).with_name("netns_load.py")),
                "0.05",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ.copy(),
        )
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
    report = LoadReport.model_validate_json(done.stdout.strip().splitlines()[-1])
    (step,) = report.steps
    # each packet crosses the dropping hop once (client -> relay); the relay -> peer leg is untouched
    assert 2.5 < step.loss_percent < 9.0
    assert all(c.a_to_b.lost > 0 and c.b_to_a.lost > 0 for c in step.call_results)
    assert not step.ok and report.capacity is None and "lost >= 1 %" in step.problems[0]
