"""Isolated network namespaces for browsers: only ``lo``, no route out, always removed.

Chromium phones home on its own (DNS lookups of Google hosts, even queries to public resolvers),
whatever its flags. Every Chromium callops starts therefore runs in a network namespace with no
route out: one made here (:func:`isolated_namespace`: ``callops-browser-<id>`` with only ``lo``
up), or one that the caller names (the lab's consumer site: a veth to the lab's own addresses).

:func:`check_browser_namespace` is the guard. A default route alone says nothing (the lab's
consumer site has one, to its NAT router; a namespace without one may still have a veth into the
host), so it follows the *links*: starting from the browser's namespace, every interface must be
``lo``, a bridge or a dummy, or a veth whose peer lives in a namespace made with ``ip netns add``
(named in ``/run/netns``) -- and that namespace is checked the same way, hop by hop, until every
namespace reachable over links has been seen. A veth whose peer is in an unnamed namespace (the
root namespace has no name in ``/run/netns``), a physical interface, a tunnel or any other kind of
link, or the init process's namespace under a name, is a way out and refused. The walk is pure
(:func:`find_way_out`, over facts read with ``ip -j -d link`` and ``ip -j netns list-id``: two
commands per namespace, a dozen for the NAT lab).

Tests and benches run the other parts of the call (emulator, coturn, the aiortc agent) inside the
same namespace on 127.0.0.1 with :func:`run_in_namespace`: a thread that entered the namespace
(``setns`` is per thread for network namespaces) runs its own event loop; every socket it opens
and every process it starts lives in the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
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


#: link kinds that lead nowhere by themselves (a bridge's ports are checked one by one)
CONTAINED_KINDS = frozenset({"bridge", "dummy"})


@dataclass(frozen=True)
class Link:
    """One interface of a namespace, as far as the guard cares."""

    name: str
    #: ``linkinfo.info_kind`` (``veth``, ``bridge`` ...); "loopback" for lo; None: a physical device
    kind: str | None
    #: a veth's peer namespace, as this namespace numbers it (``link_netnsid``); None: same namespace
    peer_nsid: int | None = None


@dataclass(frozen=True)
class NamespaceFacts:
    """What :func:`find_way_out` needs to know about one namespace."""

    links: tuple[Link, ...]
    #: nsid -> name in /run/netns (None: a namespace without a name, e.g. the root namespace)
    names: dict[int, str | None]
    #: True when this is the init process's namespace (known only where /proc/1 is readable)
    is_init: bool = False


def parse_links(ip_json: str) -> tuple[Link, ...]:
    """``ip -j -d link show`` output as :class:`Link` s."""
    out = []
    for entry in json.loads(ip_json or "[]"):
        info = entry.get("linkinfo") or {}
        kind = info.get("info_kind")
        if kind is None and entry.get("link_type") == "loopback":
            kind = "loopback"
        peer = entry.get("link_netnsid")
        out.append(Link(str(entry.get("ifname")), kind, int(peer) if isinstance(peer, int) else None))
    return tuple(out)


def parse_nsids(ip_json: str) -> dict[int, str | None]:
    """``ip -j netns list-id`` output: nsid -> namespace name (None where it has none)."""
    return {int(e["nsid"]): e.get("name") or None for e in json.loads(ip_json or "[]") if "nsid" in e}


def find_way_out(start: str | None, read: Callable[[str | None], NamespaceFacts]) -> str | None:
    """Why a process in ``start`` (None: the caller's namespace) could reach beyond the namespaces
    made with ``ip netns add``, or None when it cannot: a breadth-first walk over veth peers."""
    seen: set[str | None] = {start}
    todo: list[str | None] = [start]
    while todo:
        current = todo.pop(0)
        where = "this namespace" if current is None else f"namespace {current}"
        facts = read(current)
        if facts.is_init:
            return f"{where} is the init process's (root) network namespace"
        for link in facts.links:
            if link.kind == "loopback" or link.kind in CONTAINED_KINDS:
                continue
            if link.kind != "veth":
                return f"{where} has interface {link.name} ({link.kind or 'a physical device'})"
            if link.peer_nsid is None:
                continue  # both ends here
            peer = facts.names.get(link.peer_nsid)
            if peer is None:
                return (
                    f"{where}: veth {link.name} leads to a namespace without a name in /run/netns "
                    "(the root namespace, or one no test created)"
                )
            if peer not in seen:
                seen.add(peer)
                todo.append(peer)
    return None


def read_namespace_facts(netns: str | None) -> NamespaceFacts:
    """The links and peer namespace names of ``netns`` (None: the calling thread's namespace)."""
    prefix = [] if netns is None else ["-n", netns]
    init = _netns_inode("/proc/1/ns/net")
    own = _netns_inode("/proc/thread-self/ns/net" if netns is None else f"/run/netns/{netns}")
    return NamespaceFacts(
        links=parse_links(_ip(*prefix, "-j", "-d", "link", "show")),
        names=parse_nsids(_ip(*prefix, "-j", "netns", "list-id")),
        is_init=init is not None and own == init,
    )


def check_browser_namespace(netns: str | None) -> None:
    """Refuse to start a browser where it could reach the internet.

    ``netns`` None means the caller's own namespace (callops itself runs in an isolated namespace,
    e.g. ``ip netns exec``, or in the lab's consumer site); a named one must exist in /run/netns.
    Either is accepted only when every link, hop by hop, stays among the namespaces made with
    ``ip netns add`` (:func:`find_way_out`; see the module docstring).
    """
    if netns is not None and not os.path.exists(f"/run/netns/{netns}"):
        raise UsageError(f"--browser-netns {netns}: no such network namespace", hint="ip netns list")
    way_out = find_way_out(netns, read_namespace_facts)
    if way_out is None:
        return
    if netns is None:
        raise UsageError(
            "refusing to start Chromium in a network namespace with a route out "
            f"(it contacts Google services on its own): {way_out}",
            hint="give --browser-netns NAME, or run callops inside an isolated namespace (ip netns exec)",
        )
    raise UsageError(
        f"--browser-netns {netns}: refusing a namespace with a route out of the test's namespaces: {way_out}",
        hint="an isolated namespace (only lo) or a lab site namespace",
    )


def remove_namespace(name: str) -> None:
    """Kill what still runs in ``name`` and delete it (idempotent)."""
    if not os.path.exists(f"/run/netns/{name}"):
        return
    with contextlib.suppress(EnvironmentProblem):
        from callops.orchestrator.lab.netns import namespace_pids

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
    "CONTAINED_KINDS",
    "NAMESPACE_PREFIX",
    "Link",
    "NamespaceFacts",
    "browser_environment_problem",
    "check_browser_namespace",
    "enter_namespace",
    "find_way_out",
    "has_route_out",
    "isolated_namespace",
    "parse_links",
    "parse_nsids",
    "read_namespace_facts",
    "remove_namespace",
    "run_in_namespace",
]
