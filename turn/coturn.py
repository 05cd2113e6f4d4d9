"""Start and stop a real coturn ``turnserver`` process.

Used by the test suite, by ``callops call`` when it runs on embedded defaults, by the NAT lab and by
the deploy checks. The process is started with a configuration file written by the caller (see the
configuration model for secure defaults), its log goes to a file in ``workdir``, and readiness is
decided by an answered STUN Binding request -- never by a fixed sleep.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from callops.errors import DeadlineExceeded, EnvironmentProblem
from callops.lifecycle import StartStop
from callops.secret import Secret

log = logging.getLogger(__name__)

TURNSERVER = "turnserver"

_MAGIC_COOKIE = 0x2112A442


def find_turnserver() -> str:
    """Path of the ``turnserver`` binary, or :class:`EnvironmentProblem`."""
    path = shutil.which(TURNSERVER) or next(
        (p for p in ("/usr/bin/turnserver", "/usr/sbin/turnserver") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise EnvironmentProblem(
            "coturn's turnserver is not installed",
            hint="apt-get install coturn (Debian/Ubuntu)",
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is currently free for both UDP and TCP on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise EnvironmentProblem(f"no free UDP+TCP port on {host}")


def stun_binding_answered(host: str, port: int, timeout: float) -> bool:
    """Send one STUN Binding request (RFC 5389 section 6) and wait ``timeout`` for any answer."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    transaction_id = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, _MAGIC_COOKIE) + transaction_id
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            data, _ = sock.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[8:20] == transaction_id


#: prctl(2) option: the signal this process gets when its parent thread dies
PR_SET_PDEATHSIG = 1

#: per network namespace, the one thread that forks children for other threads (no thread is
#: started until it is used)
_SPAWNERS: dict[int, ThreadPoolExecutor] = {}
_SPAWNERS_LOCK = threading.Lock()


def _die_with_parent_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child SIGKILLed when callops dies, even by SIGKILL (Linux).

    ``prctl`` is looked up here, in the parent, so the child only makes one system call between
    fork and exec. The check of the parent id afterwards closes the race of a parent that died
    before the call. None where prctl does not exist.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), kill)

    return preexec


def popen_dying_with_parent(argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` whose child is killed when this process dies (``PR_SET_PDEATHSIG``).

    The kernel ties the death signal to the *thread* that forked the child, so a child started
    from a short-lived thread (``asyncio.to_thread``) would die with that thread: children are
    therefore forked by the main thread or by one spawner thread that lives as long as the process.
    """
    preexec = _die_with_parent_preexec()

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(argv), preexec_fn=preexec, **kwargs)  # type: ignore[call-overload,no-any-return]  # noqa: PLW1509 -- one prctl call, resolved before the fork

    if preexec is None or threading.current_thread() is threading.main_thread():
        return spawn()
    return _spawner().submit(spawn).result()


def _spawner() -> ThreadPoolExecutor:
    """The long-lived spawner thread of the calling thread's network namespace.

    ``setns`` is per thread (the browser leg's tests run threads inside their own namespaces), and
    a thread starts in the namespace of the thread that creates it: each namespace gets its own
    spawner, created -- lazily, by :class:`ThreadPoolExecutor`'s first ``submit`` -- from a thread
    in that namespace, so children are forked where their caller lives and outlive the caller.
    """
    try:
        key = os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:  # no /proc: nothing tells namespaces apart
        key = 0
    with _SPAWNERS_LOCK:
        spawner = _SPAWNERS.get(key)
        if spawner is None:
            spawner = _SPAWNERS[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callops-spawner")
        return spawner


class CoturnProcess(StartStop):
    """One running ``turnserver``. Use as a context manager, or call :meth:`start`/:meth:`stop`.

    ``ready_address`` is a UDP ``(host, port)`` the server listens on; :meth:`start` returns once a
    STUN Binding request to it is answered, or raises :class:`DeadlineExceeded` with the tail of
    coturn's log. ``netns`` runs the process inside a network namespace (``ip netns exec``).
    ``die_with_parent`` (default): the process is killed when callops dies, even by SIGKILL; the
    NAT lab's coturn, which outlives ``callops lab up`` on purpose, turns it off.
    """

    def __init__(
        self,
        config_file: str | os.PathLike[str],
        *,
        workdir: str | os.PathLike[str],
        ready_address: tuple[str, int],
        extra_args: Sequence[str] = (),
        netns: str | None = None,
        start_timeout: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        self.config_file = Path(config_file)
        self.workdir = Path(workdir)
        self.ready_address = ready_address
        self.extra_args = list(extra_args)
        self.netns = netns
        self.start_timeout = start_timeout
        self.die_with_parent = die_with_parent
        self.log_file = self.workdir / "turnserver.log"
        self.pid_file = self.workdir / "turnserver.pid"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        argv = [
            find_turnserver(),
            "-c",
            str(self.config_file),
            "--log-file",
            str(self.log_file),
            "--simple-log",
            "--no-stdout-log",
            "--pidfile",
            str(self.pid_file),
            *self.extra_args,
        ]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        return argv

    def start(self) -> CoturnProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log.info("starting turnserver with %s (ready on udp %s:%d)", self.config_file, *self.ready_address)
        options: dict[str, object] = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "start_new_session": True,
        }
        if self.die_with_parent:
            self.process = popen_dying_with_parent(self.argv, **options)
        else:
            self.process = subprocess.Popen(self.argv, **options)  # type: ignore[call-overload]
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.process = None
                raise EnvironmentProblem(f"turnserver exited at start-up; its log ends with:\n{tail}")
            if self._ready_check(min(0.2, max(0.01, deadline - time.monotonic()))):
                return self
            # Not listening yet (an ICMP refusal returns at once): wait briefly for an early exit
            # instead of spinning, so a loaded machine leaves the CPU to turnserver's start-up.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.02)
        self.stop()
        raise DeadlineExceeded(
            f"turnserver did not answer STUN on udp {self.ready_address[0]}:{self.ready_address[1]} "
            f"within {self.start_timeout:.0f} s; its log ends with:\n{self.log_tail()}"
        )

    def _ready_check(self, timeout: float) -> bool:
        host, port = self.ready_address
        if self.netns is None:
            return stun_binding_answered(host, port, timeout)
        # Inside a namespace the check runs from within the namespace too.
        probe = (
            "import sys;from callops.turn.coturn import stun_binding_answered as s;"
            f"sys.exit(0 if s({host!r},{port},{timeout}) else 1)"
        )
        res = subprocess.run(
            ["ip", "netns", "exec", self.netns, os.environ.get("CALLOPS_PYTHON", "python3"), "-c", probe],
            check=False,
            capture_output=True,
            timeout=timeout + 5,
        )
        return res.returncode == 0

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout``) and reap it."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        log.info("turnserver stopped (exit %s)", proc.returncode)

    def reload_certificates(self) -> None:
        """coturn reloads its TLS certificate and key on SIGUSR2."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGUSR2)


ALT_LOOPBACK = "127.0.0.2"


class _Uri:
    """A URI of a :class:`LoopbackCoturn`, from a template with ``{host}``, ``{port}`` and ``{tls_port}``."""

    def __init__(self, template: str) -> None:
        self.template = template

    def __get__(self, coturn: LoopbackCoturn, owner: type[LoopbackCoturn]) -> str:
        return self.template.format(host=coturn.host, port=coturn.port, tls_port=coturn.tls_port)


@dataclass
class LoopbackCoturn:
    """A coturn started by :func:`start_loopback_coturn`: where it listens and how to authenticate."""

    host: str
    port: int
    tls_port: int
    #: the RFC 5780 alternate address and port (``other_host`` is None without RFC 5780)
    other_host: str | None
    other_port: int
    secret: Secret
    realm: str
    #: the self-signed certificate, also the CA file for clients
    ca_file: Path
    config_file: Path
    process: CoturnProcess

    # the server's URIs (not fields: computed from the ones above)
    stun_uri = _Uri("stun:{host}:{port}")
    turn_udp = _Uri("turn:{host}:{port}?transport=udp")
    turn_tcp = _Uri("turn:{host}:{port}?transport=tcp")
    turns = _Uri("turns:{host}:{tls_port}?transport=tcp")


def _two_free_ports(host: str) -> tuple[int, int]:
    for _ in range(50):
        first, second = free_port(host), free_port(host)
        if first != second:
            return first, second
    raise EnvironmentProblem(f"no two free ports on {host}")


def loopback_config_lines(
    *,
    secret: Secret,
    cert: Path,
    key: Path,
    port: int,
    alt_port: int,
    tls_port: int,
    alt_tls_port: int,
    realm: str = "callops.test",
    rfc5780: bool = True,
    users: Sequence[tuple[str, str]] = (),
    extra: Sequence[str] = (),
) -> list[str]:
    """``turnserver.conf`` lines for a test coturn on 127.0.0.1 (and 127.0.0.2 for RFC 5780).

    TURN REST auth (``use-auth-secret``) -- or, with ``users``, long-term credentials
    (``lt-cred-mech``; coturn ignores static users under ``use-auth-secret``) -- UDP/TCP and TLS
    listeners, no CLI, no DTLS. Loopback peers are refused unless ``extra`` holds
    ``allow-loopback-peers``.
    """
    if users:
        auth = ["lt-cred-mech", *(f"user={name}:{password}" for name, password in users)]
    else:
        auth = ["use-auth-secret", f"static-auth-secret={secret.reveal()}"]
    return [
        "listening-ip=127.0.0.1",
        *([f"listening-ip={ALT_LOOPBACK}"] if rfc5780 else []),
        "relay-ip=127.0.0.1",
        f"listening-port={port}",
        f"alt-listening-port={alt_port}",
        f"tls-listening-port={tls_port}",
        f"alt-tls-listening-port={alt_tls_port}",
        *auth,
        f"realm={realm}",
        "fingerprint",
        f"cert={cert}",
        f"pkey={key}",
        "no-dtls",
        "no-cli",
        "no-tlsv1",
        "no-tlsv1_1",
        "no-software-attribute",
        *([] if rfc5780 else ["no-rfc5780"]),
        *extra,
    ]


def start_loopback_coturn(
    workdir: str | os.PathLike[str],
    *,
    secret: Secret,
    extra: Sequence[str] = (),
    rfc5780: bool = True,
    realm: str = "callops.test",
    users: Sequence[tuple[str, str]] = (),
    start_timeout: float = 20.0,
) -> LoopbackCoturn:
    """Write a loopback test config into ``workdir`` (free ports, self-signed cert) and start coturn."""
    from callops.turn.tls import make_self_signed

    directory = Path(workdir)
    cert, key = make_self_signed(directory, ["127.0.0.1", "localhost", ALT_LOOPBACK])
    port, alt_port = _two_free_ports("127.0.0.1")
    tls_port, alt_tls_port = _two_free_ports("127.0.0.1")
    lines = loopback_config_lines(
        secret=secret,
        cert=cert,
        key=key,
        port=port,
        alt_port=alt_port,
        tls_port=tls_port,
        alt_tls_port=alt_tls_port,
        realm=realm,
        rfc5780=rfc5780,
        users=users,
        extra=extra,
    )
    config_file = directory / "turnserver.conf"
    config_file.write_text("\n".join(lines) + "\n")
    config_file.chmod(0o600)
    process = CoturnProcess(
        config_file, workdir=directory, ready_address=("127.0.0.1", port), start_timeout=start_timeout
    ).start()
    return LoopbackCoturn(
        host="127.0.0.1",
        port=port,
        tls_port=tls_port,
        other_host=ALT_LOOPBACK if rfc5780 else None,
        other_port=alt_port,
        secret=secret,
        realm=realm,
        ca_file=cert,
        config_file=config_file,
        process=process,
    )


__all__ = [
    "ALT_LOOPBACK",
    "CoturnProcess",
    "LoopbackCoturn",
    "find_turnserver",
    "free_port",
    "loopback_config_lines",
    "popen_dying_with_parent",
    "start_loopback_coturn",
    "stun_binding_answered",
]
