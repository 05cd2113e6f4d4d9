"""Fixtures of the call tests: a real coturn on loopback with a fresh shared secret."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from callops.orchestrator.call.embedded import EmbeddedTurn, available


@pytest.fixture
def local_turn() -> Iterator[EmbeddedTurn]:
    if not available():
        pytest.skip("coturn's turnserver is not installed")
    with EmbeddedTurn() as turn:
        yield turn


class _Pipe:
    """What a child writes to one pipe, drained by a thread; lines awaited with a bound."""

    def __init__(self, pipe: Any) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: Any) -> None:
        try:
            for line in pipe:
                self.queue.put(line)
        except (OSError, ValueError):  # closed under us: the child is gone
            pass

    def _take(self, timeout: float) -> str | None:
        try:
            line = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        self.seen.append(line)
        return line

    def wait_for(self, needle: str, within: float, count: int = 1) -> str:
        """The ``count``-th line (from the start) containing ``needle``, within ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            hits = [line for line in self.seen if needle in line]
            if len(hits) >= count:
                return hits[count - 1]
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {needle!r} within {within:g} s; got:\n{''.join(self.seen[-20:])}")
            self._take(left)

    def text(self) -> str:
        """Everything, once the pipe is closed (the child exited)."""
        self._thread.join(timeout=30)
        while self._take(0) is not None:
            pass
        return "".join(self.seen)


class Child:
    """A ``callops`` process started by a test (stdout and stderr drained)."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.out = _Pipe(self.proc.stdout)
        self.err = _Pipe(self.proc.stderr)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float) -> int:
        """The exit code, within ``timeout`` seconds (``subprocess.TimeoutExpired`` otherwise)."""
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.out.text()
        self.err.text()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def callops_cli() -> Iterator[Callable[..., Child]]:
    """Start ``python -m callops ARGS`` (``prefix``: e.g. ``ip netns exec NS``); killed at teardown."""
    children: list[Child] = []

    def start(*args: str, prefix: Sequence[str] = ()) -> Child:
        child = Child([*prefix, sys.executable, "-m", "callops", *args])
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.stop()


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` (R, S, Z, ...), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def children_named(parent: int, name: str) -> list[int]:
    """Pids of the live processes called ``name`` whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rpartition(")")[2].split()
        if comm == name and int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(pid: int, within: float) -> bool:
    """Whether ``pid`` is gone (or a zombie: dead, not yet reaped) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if process_state(pid) in (None, "Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)  # polling the condition, bounded above


@pytest.fixture
def processes() -> Any:
    """The /proc helpers above, for tests (import-mode importlib: conftest is not importable)."""
    return types.SimpleNamespace(state=process_state, children_named=children_named, wait_gone=wait_gone)
