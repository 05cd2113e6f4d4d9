"""Isolated network namespaces for browsers: only ``lo``, no route out, always removed.

Chromium phones home on its own (DNS lookups of Google hosts, even queries to public resolvers),
whatever its flags. Every Chromium callops starts therefore runs in a network namespace with no
route out: one made here (:func:`isolated_namespace`: ``callops-browser-<id>`` with only ``lo``
up), or one that the caller names (the lab's consumer site: a veth to the lab's own addresses).
:func:`check_browser_namespace` refuses the root namespace.

Tests and benches run the other parts of the call (emulator, coturn, the aiortc agent) inside the
same namespace on 127.0.0.1 with :func:`run_in_namespace`: a thread that entered the namespace
(``setns`` is per thread for network namespaces) runs its own event loop; every socket it opens
and every process it starts lives in the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from callops.errors import EnvironmentProblem, UsageError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: every namespace this module creates starts with this
NAMESPACE_PREFIX = "callops-browser-"
CHROMIUM_BINARY = "/usr/lib/chromium/chromium"
_CLONE_NEWNET = 0x40000000
_COMMAND_TIMEOUT = 20.0


def _ip(*argv: str) -> str:
    try:
        res = subprocess.run(
            ["ip", *argv], capture_output=True, text=True, timeout=_COMMAND_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise EnvironmentProblem("'ip' is not installed", hint="apt-get install iproute2") from None
    if res.returncode != 0:
        raise EnvironmentProblem(f"'ip {' '.join(argv)}' failed: {res.stderr.strip() or res.returncode}")
    return res.stdout


def browser_environment_problem() -> str | None:
    """Why a browser cannot run here (isolated), or ``None`` when it can; tests skip with it."""
    if not sys.platform.startswith("linux"):
        return "browsers run in Linux network namespaces"
    if os.geteuid() != 0:
        return "an isolated network namespace for the browser needs root"
    if shutil.which("ip") is None:
        return "'ip' is missing (apt-get install iproute2)"
    if not os.access(CHROMIUM_BINARY, os.X_OK):
        return f"{CHROMIUM_BINARY} is missing (apt-get install chromium)"
    if shutil.which("certutil") is None:
        return "'certutil' is missing (apt-get install libnss3-tools)"
    return None


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:  # /proc/1 is not ours to read in some containers
        return None


def has_route_out(netns: str | None = None) -> bool:
    """True when ``netns`` (None: the calling thread's namespace) has an IPv4 or IPv6 default route."""
    prefix = [] if netns is None else ["-n", netns]
    return any(_ip(*prefix, family, "route", "show", "default").strip() for family in ("-4", "-6"))


def check_browser_namespace(netns: str | None) -> None:
    """Refuse to start a browser where it could reach the internet.

    ``netns`` None means the caller's own namespace: allowed only when it has no default route
    (callops itself runs in an isolated namespace, e.g. ``ip netns exec``, with only ``lo``). A named
    namespace must be one made with ``ip netns add`` (the isolated one, or the lab's consumer site
    whose only way out is the lab's own NAT) and must not be the init process's namespace.
    """
    if netns is None:
        if has_route_out():
            raise UsageError(
                "refusing to start Chromium in a network namespace with a route out "
                "(it contacts Google services on its own)",
                hint="give --browser-netns NAME, or run callops inside an isolated namespace (ip netns exec)",
            )
        return
    path = f"/run/netns/{netns}"
    if not os.path.exists(path):
        raise UsageError(f"--browser-netns {netns}: no such network namespace", hint="ip netns list")
    init = _netns_inode("/proc/1/ns/net")
    if init is not None and _netns_inode(path) == init:
        raise UsageError(f"--browser-netns {netns} is the root network namespace")


def namespace_pids(name: str) -> list[int]:
    out = _ip("netns", "pids", name)
    return [int(p) for p in out.split() if p.isdigit()]


def remove_namespace(name: str) -> None:
    """Kill what still runs in ``name`` and delete it (idempotent)."""
    if not os.path.exists(f"/run/netns/{name}"):
        return
    with contextlib.suppress(EnvironmentProblem):
        for pid in namespace_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
    with contextlib.suppress(EnvironmentProblem):
        _ip("netns", "delete", name)


@contextlib.contextmanager
def isolated_namespace(tag: str | None = None) -> Iterator[str]:
    """A fresh namespace ``callops-browser-<tag>`` with only ``lo`` (up); removed on exit."""
    name = NAMESPACE_PREFIX + (tag or secrets.token_hex(4))
    if len(name) > 48 or not name.replace("-", "").isalnum():
        raise UsageError(f"namespace name {name!r}: letters, digits and '-' only, at most 48 characters")
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        if has_route_out(name):
            raise EnvironmentProblem(f"namespace {name} has a default route")
        log.debug("namespace %s ready (lo only)", name)
        yield name
    finally:
        remove_namespace(name)


def enter_namespace(name: str) -> None:
    """Move the *calling thread* into network namespace ``name`` (setns(2))."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise EnvironmentProblem(f"setns into {name} failed: {os.strerror(err)}")
    finally:
        os.close(fd)


def run_in_namespace(name: str, main: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run ``main()`` on a fresh event loop in a thread inside namespace ``name``, bounded by
    ``timeout`` seconds; its result, or its exception re-raised here."""
    result: list[T] = []
    error: list[BaseException] = []

    def thread() -> None:
        try:
            enter_namespace(name)

            async def bounded() -> T:
                return await asyncio.wait_for(main(), timeout)

            result.append(asyncio.run(bounded()))
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=thread, name=f"netns-{name}", daemon=True)
    worker.start()
    worker.join(timeout + 30.0)
    if worker.is_alive():
        raise TimeoutError(f"the run inside {name} did not end within {timeout + 30.0:g} s")
    if error:
        raise error[0]
    return result[0]


__all__ = [
    "CHROMIUM_BINARY",
    "NAMESPACE_PREFIX",
    "browser_environment_problem",
    "check_browser_namespace",
    "enter_namespace",
    "has_route_out",
    "isolated_namespace",
    "namespace_pids",
    "remove_namespace",
    "run_in_namespace",
]
