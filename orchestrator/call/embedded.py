"""Embedded defaults of ``callops call``: a coturn on loopback with a fresh secret.

With no ``--turn``, if ``turnserver`` is on PATH, callops starts one bound to 127.0.0.1 only, with a
generated configuration (REST shared secret of 32 random bytes, no TLS/DTLS listeners, no CLI,
loopback peers allowed because both headless peers live on loopback) in a private temporary
directory, and stops it and removes the directory afterwards.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

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


def available() -> bool:
    """Whether coturn's turnserver can be found."""
    try:
        find_turnserver()
    except Exception:
        return False
    return True


class EmbeddedTurn:
    """A coturn relay on 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.secret = Secret(secrets.token_urlsafe(32), "generated")
        self._workdir: Path | None = None
        self.process: CoturnProcess | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}"

    def start(self) -> EmbeddedTurn:
        find_turnserver()
        self._workdir = Path(tempfile.mkdtemp(prefix="callops-turn-"))
        relay_low = 49152 + (self.port * 7) % 12000
        conf = write_loopback_conf(self._workdir, self.port, self.secret, (relay_low, relay_low + 1000))
        self.process = CoturnProcess(conf, workdir=self._workdir, ready_address=("127.0.0.1", self.port))
        try:
            self.process.start()
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

    def __enter__(self) -> EmbeddedTurn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["EmbeddedTurn", "available", "write_loopback_conf"]
