"""Stopping a long command: SIGINT, SIGTERM and SIGHUP are handled alike (docs/call.md "Signals").

Every long command (``call``, ``call-site``, ``smoke``, ``probe``, ``probe serve``, ``emulator
serve``, ``lab``) stops the same way whichever of the three signals arrives -- Ctrl-C, ``kill``,
systemd/docker's SIGTERM, a closed terminal's SIGHUP: the work is cancelled, the command writes
its report (and JUnit) with what it knows, its children are stopped and its temporary directories
removed, and the process exits ``128 + signal`` (130, 143, 129).

Two forms, one behaviour:

* :func:`run_stoppable` runs a coroutine in a fresh event loop; a stop signal cancels it. The
  coroutine may catch the cancellation and return what it knows (a partial report); the command
  writes it, then raises :class:`Stopped`.
* :func:`stop_signals` (synchronous commands) makes SIGTERM/SIGHUP raise :class:`Stopped` where
  Ctrl-C raises :class:`KeyboardInterrupt`, so the same ``finally`` blocks clean up.

:class:`Stopped` is a :class:`KeyboardInterrupt`: code that already cleans up on Ctrl-C cleans up
on every stop signal. The CLI's one error renderer (:func:`callops.orchestrator.cli.main`) turns it
into ``callops: stopped by SIGTERM`` and the exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the signals that stop a long command, in the order they are documented
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The command was stopped by ``signum``; it exits ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def stop_exit_code(exc: KeyboardInterrupt) -> int:
    """The exit code of an interrupted command: 128 + the signal (Ctrl-C: 130)."""
    return exc.exit_code if isinstance(exc, Stopped) else 128 + signal.SIGINT


def run_stoppable(main: Coroutine[Any, Any, T]) -> tuple[T | None, Stopped | None]:
    """Run ``main`` in a fresh event loop until it returns or a stop signal cancels it.

    Returns ``(result, stopped)``: ``result`` is what ``main`` returned (also after it caught the
    cancellation to return a partial answer) or None if the cancellation went through it;
    ``stopped`` says which signal stopped it. A second signal cancels again. Like
    :func:`asyncio.run`, the loop cancels leftover tasks and shuts down its executor before closing.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    received: list[int] = []

    def stop(signum: int) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        received.append(signum)
        task.cancel()

    handled: list[int] = []
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, stop, signum)
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no Unix
            continue
        handled.append(signum)
    result: T | None = None
    try:
        try:
            result = loop.run_until_complete(task)
        except asyncio.CancelledError:
            if not received:
                raise
    finally:
        for handled_signal in handled:
            loop.remove_signal_handler(handled_signal)
        try:
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
    return result, (Stopped(received[0]) if received else None)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def absorb_cancellation() -> None:
    """Inside a coroutine that caught a stop's cancellation to finish its report: forget it, so
    that later ``asyncio.timeout`` blocks of the clean-up still time out normally."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Synchronous commands: SIGTERM and SIGHUP raise :class:`Stopped` (as Ctrl-C raises
    :class:`KeyboardInterrupt`) inside the block; the previous handlers come back afterwards."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS if signum != signal.SIGINT}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


__all__ = [
    "STOP_SIGNALS",
    "Stopped",
    "absorb_cancellation",
    "run_stoppable",
    "stop_exit_code",
    "stop_signals",
]
