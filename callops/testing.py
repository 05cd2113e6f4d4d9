"""Helpers for tests of code built on callops (and callops' own tests)."""

from __future__ import annotations

import asyncio
import os
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


def fuzz_examples(default: int) -> int:
    """How many inputs one property-based test generates: ``CALLOPS_FUZZ_EXAMPLES`` or ``default``."""
    raw = os.environ.get("CALLOPS_FUZZ_EXAMPLES", "")
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else default


__all__ = ["DEFAULT_TIMEOUT", "fuzz_examples", "run_bounded"]
