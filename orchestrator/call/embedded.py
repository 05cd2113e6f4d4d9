"""Embedded defaults of ``callops call``: a coturn on loopback with a fresh secret.

With no ``--turn``, if ``turnserver`` is on PATH, callops starts one bound to 127.0.0.1 only, with a
generated configuration (REST shared secret of 32 random bytes, no TLS/DTLS listeners, no CLI,
loopback peers allowed because both headless peers live on loopback) in a private temporary
directory, and stops it and removes the directory afterwards.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from callops.errors import DeadlineExceeded, EnvironmentProblem
from callops.lifecycle import StartStop
from callops.secret import Secret
from callops.turn.config import TurnDeployment, write_private_file, write_turnserver_conf
from callops.turn.coturn import CoturnProcess, find_turnserver, free_port

log = logging.getLogger(__name__)


def write_loopback_conf(workdir: Path, port: int, secret: Secret, relay_ports: tuple[int, int]) -> Path:
    """Write the embedded relay's turnserver.conf (0600) into ``workdir`` and return its path.

    Rendered by the coturn configuration model (:meth:`TurnDeployment.loopback`), with loopback
    peers allowed: both headless peers of the call live on 127.0.0.1.
    """
    secret_file = write_private_file(workdir / "turn-secret", secret.reveal() + "\n")
    deployment = TurnDeployment.loopback(
        port=port,
        min_port=relay_ports[0],
        max_port=relay_ports[1],
        secret_file=secret_file,
        realm="callops.local",
        allow_loopback_peers=True,
    )
    return write_turnserver_conf(deployment, workdir / "turnserver.conf", secret=secret)


#: where the kernel picks ephemeral ports (and so where ``free_port()`` finds its ports)
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: the fewest relay ports worth a range of their own above the ephemeral range
MIN_RELAY_PORTS = 500
#: attempts to start the relay on a fresh port when the chosen one was taken meanwhile
START_ATTEMPTS = 3


def relay_port_range(listening_port: int, ephemeral: tuple[int, int] | None = None) -> tuple[int, int]:
    """coturn's relay ports (min-port, max-port) for an embedded relay on ``listening_port``.

    Above the kernel's ephemeral range when there is room: a port another program (or test) got
    from ``free_port()`` and binds a moment later can then never be taken by one of our relay
    allocations. Otherwise a 1000-port window picked by the listening port.
    """
    if ephemeral is None:
        try:
            low, high = (int(v) for v in EPHEMERAL_RANGE_FILE.read_text().split())
            ephemeral = (low, high)
        except (OSError, ValueError):
            ephemeral = (32768, 60999)
    if 65535 - ephemeral[1] >= MIN_RELAY_PORTS:
        return ephemeral[1] + 1, 65535
    low = 49152 + (listening_port * 7) % 12000
    return low, low + 1000


def udp_port_owner_ok(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a UDP socket bound to 127.0.0.1:``port`` (Linux /proc).

    coturn keeps retrying a listener port that is taken instead of exiting, and another relay on
    that port would answer the readiness check in its place; this tells the two apart. True when
    /proc cannot tell (not Linux): the readiness check alone then decides.
    """
    wanted = f"0100007F:{port:04X}"
    try:
        inodes = {
            line.split()[9]
            for line in Path("/proc/net/udp").read_text().splitlines()[1:]
            if line.split()[1] == wanted
        }
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (OSError, IndexError):
        return True
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def available() -> bool:
    """Whether coturn's turnserver can be found."""
    try:
        find_turnserver()
    except Exception:
        return False
    return True


class EmbeddedTurn(StartStop):
    """A coturn relay on 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(self, *, port: int | None = None) -> None:
        self._fixed_port = port is not None
        self.port = port or free_port()
        self.secret = Secret(secrets.token_urlsafe(32), "generated")
        self._workdir: Path | None = None
        self.process: CoturnProcess | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}"

    def start(self) -> EmbeddedTurn:
        """Start coturn; a port taken between ``free_port()`` and coturn's bind costs a retry."""
        find_turnserver()
        attempts = 1 if self._fixed_port else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once()
            except (EnvironmentProblem, DeadlineExceeded) as exc:
                if attempt == attempts:
                    raise
                log.warning("embedded coturn on port %d did not start (%s); retrying", self.port, exc.message)
                self.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self) -> EmbeddedTurn:
        self._workdir = Path(tempfile.mkdtemp(prefix="callops-turn-"))
        conf = write_loopback_conf(self._workdir, self.port, self.secret, relay_port_range(self.port))
        self.process = CoturnProcess(conf, workdir=self._workdir, ready_address=("127.0.0.1", self.port))
        try:
            self.process.start()
            popen = self.process.process
            if popen is not None and not udp_port_owner_ok(popen.pid, self.port):
                raise EnvironmentProblem(f"udp 127.0.0.1:{self.port} is held by another process")
        except BaseException:
            self.stop()
            raise
        log.info("embedded coturn on %s", self.url)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.stop()
        workdir, self._workdir = self._workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


__all__ = ["EmbeddedTurn", "available", "relay_port_range", "udp_port_owner_ok", "write_loopback_conf"]
