"""The context-manager protocol of a resource with a start and a stop, written once.

``with x:`` (or ``async with x:``) starts ``x``, gives ``x`` to the block and stops it on the way
out, whether the block returns or raises. A class inherits :class:`StartStop` (or
:class:`AsyncStartStop`) and defines ``start`` and ``stop``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class StartStop(ABC):
    """``with x:`` runs ``x.start()``, the block, then ``x.stop()``."""

    @abstractmethod
    def start(self) -> object: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AsyncStartStop(ABC):
    """``async with x:`` awaits ``x.start()``, runs the block, then awaits ``x.stop()``."""

    @abstractmethod
    async def start(self) -> object: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


__all__ = ["AsyncStartStop", "StartStop"]
