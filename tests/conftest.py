"""Shared test configuration. Area-specific fixtures live in tests/<area>/conftest.py.

Async tests call :func:`callops.testing.run_bounded` so that every one has an explicit timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Protocol

import pytest


class CallopsRun(Protocol):
    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = ...
    ) -> subprocess.CompletedProcess[str]: ...


def run_callops(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m callops ARGS`` as a process, its output captured; this environment plus ``env``."""
    argv = [sys.executable, "-m", "callops", *args]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environment)


@pytest.fixture(scope="session")
def callops_run() -> CallopsRun:
    """:func:`run_callops` (test modules cannot import this conftest)."""
    return run_callops
