"""Fixtures of the browser tests: an isolated network namespace (only ``lo``) per test, and a skip
where the test's own namespace has no route out (the guard's refusal needs one).

Every Chromium of these tests runs in such a namespace; tests skip with the reason where root,
``ip``, Chromium or certutil are missing. Run them under ``flock /tmp/callops-heavy.lock``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callops.orchestrator.browser.isolation import (
    browser_environment_problem,
    has_route_out,
    isolated_namespace,
)


@pytest.fixture
def browser_netns() -> Iterator[str]:
    problem = browser_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    with isolated_namespace() as name:
        yield name


@pytest.fixture
def route_out() -> None:
    """Skips the test unless the namespace it runs in has a default route out (where the browser
    guard must refuse Chromium)."""
    try:
        routed = has_route_out()
    except Exception as exc:  # no 'ip' here
        pytest.skip(str(exc))
    if not routed:
        pytest.skip("this namespace has no default route")
