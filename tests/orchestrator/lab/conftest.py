"""Fixtures of the NAT lab tests: a lab per test, always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callops.orchestrator.lab.lifecycle import LabState, lab_down, lab_up
from callops.orchestrator.lab.netns import lab_environment_problem
from callops.orchestrator.lab.topology import Topology

#: Distinct from the CLI's default prefix so that tests never touch a lab someone brought up by hand.
TEST_PREFIX = "copl-"


@pytest.fixture
def netns_available() -> None:
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)


@pytest.fixture
def lab_root(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def make_lab(netns_available: None, lab_root: Path) -> Iterator[Callable[[Topology, Topology], LabState]]:
    lab_root.mkdir(exist_ok=True)

    def make(agent: Topology, consumer: Topology) -> LabState:
        return lab_up(agent, consumer, prefix=TEST_PREFIX, root=lab_root)

    try:
        yield make
    finally:
        lab_down(TEST_PREFIX, root=lab_root)
