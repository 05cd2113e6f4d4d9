"""Secrets: read from files or environment variables, never printed.

:class:`Secret` wraps a secret string; its ``repr``/``str`` are redacted, so a secret that ends up
in a log line, an exception or a report shows as ``***``. Call :meth:`Secret.reveal` at the one
place that needs the value (an HMAC, a header). :func:`redact` scrubs JWTs and known secrets out
of free text before it is logged.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from callops.errors import UsageError

_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")

REDACTED = "***"


class Secret:
    """A secret value that does not print itself."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "value") -> None:
        self._value = value
        #: where the secret came from ("file /etc/x", "env CALLOPS_JWT"), safe to print
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED} from {self.source})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def read_secret_file(path: str | os.PathLike[str], *, what: str = "secret") -> Secret:
    """Read a secret from a file (surrounding whitespace stripped). Errors name the file.

    A regular file of at most :data:`callops.files.SECRET_CAP` (64 KiB) in UTF-8; anything else
    (a directory, a FIFO, ``/dev/zero``, a huge file) is a :class:`UsageError` (exit 2).
    """
    from callops.files import SECRET_CAP, read_user_text

    p = Path(path)
    text = read_user_text(p, what=f"{what} file", cap=SECRET_CAP).strip()
    if not text:
        raise UsageError(f"{what} file {p} is empty", hint=f"write the {what} into it")
    return Secret(text, source=f"file {p}")


def load_secret(
    *, file: str | os.PathLike[str] | None, env: str, what: str = "secret", required: bool = True
) -> Secret | None:
    """A secret from ``file`` if given, else from environment variable ``env``.

    Secrets are never taken from command-line values: those show up in ``ps`` output.
    """
    if file is not None:
        return read_secret_file(file, what=what)
    value = os.environ.get(env, "").strip()
    if value:
        return Secret(value, source=f"env {env}")
    if required:
        raise UsageError(
            f"no {what} given",
            hint=f"pass a file with the {what} or set the environment variable {env}",
        )
    return None


def redact(text: str, secrets: Iterable[Secret | str | None] = ()) -> str:
    """``text`` with every JWT and every given secret replaced by ``***``."""
    out = _JWT_RE.sub(REDACTED, text)
    for s in secrets:
        if s is None:
            continue
        value = s.reveal() if isinstance(s, Secret) else s
        if value and len(value) >= 4:
            out = out.replace(value, REDACTED)
    return out


#: Text that marks a logged frame or header line as carrying credentials (a JWT or a CoBrowse token).
_CREDENTIAL_MARKERS = (
    "InitConnection",
    "Authentication",
    "Authorization",
    '"headers"',
    '"auth"',
    '"jwt"',
    '"token"',
)


class RedactedFrameLog(logging.LoggerAdapter[logging.Logger]):
    """websockets' frame and handshake log (``logger=`` of a connection) without credentials.

    websockets shows long frames truncated to their beginning and end, so the tail of a JWT could
    leak even though the whole token never appears; a frame or header line that carries credentials
    (InitConnection, an ``Authorization`` header, a CoBrowse ``auth`` frame) is therefore never
    shown, and every JWT and given secret elsewhere is replaced by ``***``.
    """

    def __init__(self, logger: logging.Logger, secrets: list[Secret | str | None] | None = None) -> None:
        super().__init__(logger, {})
        self._secrets: list[Secret | str | None] = list(secrets or [])

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = str(msg)
        if any(marker in text for marker in _CREDENTIAL_MARKERS):
            text = text.split("'", 1)[0].split(":", 1)[0] + " (redacted: carries credentials)"
        kwargs.pop("extra", None)
        self.logger.log(level, "%s", redact(text, self._secrets), **kwargs)


__all__ = ["REDACTED", "RedactedFrameLog", "Secret", "load_secret", "read_secret_file", "redact"]
