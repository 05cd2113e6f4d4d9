"""Fixtures shared by the orchestrator's NAT-lab tests (the matrix and the call-site matrix)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callops.orchestrator.lab.lifecycle import LabState, lab_down, lab_up
from callops.orchestrator.lab.netns import lab_environment_problem


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LabState]:
    """A lab for the parametrised row (``.agent``, ``.consumer``), under the test module's ``PREFIX``.

    Skips only where root, ``ip netns`` or iptables are missing; always torn down, also on failure.
    """
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    row = request.param
    prefix: str = request.module.PREFIX
    root = tmp_path / "run"
    root.mkdir()
    try:
        yield lab_up(row.agent, row.consumer, prefix=prefix, root=root)
    finally:
        lab_down(prefix, root=root)
