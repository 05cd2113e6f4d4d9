"""Helpers for tests of code built on callops (and callops' own tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Default budget for one async test body: a hang is a bug and fails here, not at the CI limit.
DEFAULT_TIMEOUT = 60.0


def run_bounded(coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
    """Run ``coro`` in a fresh event loop; fail with ``TimeoutError`` after ``timeout`` seconds."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


__all__ = ["DEFAULT_TIMEOUT", "run_bounded"]
