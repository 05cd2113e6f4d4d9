"""Fixtures of the browser tests: an isolated network namespace (only ``lo``) per test.

Every Chromium of these tests runs in such a namespace; tests skip with the reason where root,
``ip``, Chromium or certutil are missing. Run them under ``flock /tmp/callops-heavy.lock``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callops.orchestrator.browser.isolation import browser_environment_problem, isolated_namespace


@pytest.fixture
def browser_netns() -> Iterator[str]:
    problem = browser_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    with isolated_namespace() as name:
        yield name
