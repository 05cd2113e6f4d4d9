"""Start and stop a real coturn ``turnserver`` process.

Used by the test suite, by ``callops call`` when it runs on embedded defaults, by the NAT lab and by
the deploy checks. The process is started with a configuration file written by the caller (see the
configuration model for secure defaults), its log goes to a file in ``workdir``, and readiness is
decided by an answered STUN Binding request -- never by a fixed sleep.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from callops.errors import DeadlineExceeded, EnvironmentProblem

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


class CoturnProcess:
    """One running ``turnserver``. Use as a context manager, or call :meth:`start`/:meth:`stop`.

    ``ready_address`` is a UDP ``(host, port)`` the server listens on; :meth:`start` returns once a
    STUN Binding request to it is answered, or raises :class:`DeadlineExceeded` with the tail of
    coturn's log. ``netns`` runs the process inside a network namespace (``ip netns exec``).
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
    ) -> None:
        self.config_file = Path(config_file)
        self.workdir = Path(workdir)
        self.ready_address = ready_address
        self.extra_args = list(extra_args)
        self.netns = netns
        self.start_timeout = start_timeout
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
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                self.process = None
                raise EnvironmentProblem(f"turnserver exited at start-up; its log ends with:\n{tail}")
            if self._ready_check(min(0.2, max(0.01, deadline - time.monotonic()))):
                return self
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

    def __enter__(self) -> CoturnProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["CoturnProcess", "find_turnserver", "free_port", "stun_binding_answered"]
