"""The one exception tree of callops.

Every error callops raises on purpose derives from :class:`CallopsError`. Each class carries the
process exit code the CLI uses for it and an optional ``hint`` -- the fix, in a sentence. The CLI
renders these errors in exactly one place (:func:`callops.orchestrator.cli.main`), without a
traceback unless ``--debug`` is given. Errors of third-party libraries (aioice, aiortc, websockets,
pydantic) are translated into this tree where they enter callops.

Tree and exit codes::

    CallopsError (1)
    +-- UsageError (2)                 bad options, bad config file, bad input file
    |   +-- ConfigError (2)
    +-- ValidationError (2)            a payload or model failed validation; names every bad field
    +-- EnvironmentProblem (4)         a required tool, privilege or OS feature is missing
    +-- NetworkError (5)               unreachable, refused, timed out
    |   +-- DeadlineExceeded (5)
    +-- AuthenticationError (6)        credentials or tokens rejected (4401/4407, TURN 401)
    +-- ProtocolError (7)
        +-- LocalProtocolError (7)     we were asked to send something the protocol forbids
        +-- RemoteProtocolError (7)    the peer sent something the protocol forbids
"""

from __future__ import annotations

from collections.abc import Iterable


class CallopsError(Exception):
    """Root of every error callops raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UsageError(CallopsError):
    """The user asked for something impossible: bad option, missing file, conflicting flags."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or value is invalid."""


class ValidationError(CallopsError):
    """A payload failed validation. ``problems`` lists every bad field as ``(field, message)``."""

    exit_code = 2

    def __init__(self, what: str, problems: Iterable[tuple[str, str]], *, hint: str | None = None) -> None:
        self.what = what
        self.problems = list(problems)
        detail = "; ".join(f"{field}: {msg}" for field, msg in self.problems)
        super().__init__(f"invalid {what}: {detail}", hint=hint)

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.problems]


class EnvironmentProblem(CallopsError):
    """Something this machine lacks: a binary (turnserver, ip), root, a kernel feature."""

    exit_code = 4


class NetworkError(CallopsError):
    """A server could not be reached, refused, or did not answer."""

    exit_code = 5


class DeadlineExceeded(NetworkError):
    """An operation did not finish within its explicit time budget."""


class AuthenticationError(CallopsError):
    """Credentials were rejected: a JWT (close 4401/4407), a TURN secret or password (401)."""

    exit_code = 6


class ProtocolError(CallopsError):
    """A protocol rule was broken."""

    exit_code = 7


class LocalProtocolError(ProtocolError):
    """We were about to break the protocol (a bug in the caller, not in the peer)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: malformed frame, wrong type, missing field."""


__all__ = [
    "AuthenticationError",
    "CallopsError",
    "ConfigError",
    "DeadlineExceeded",
    "EnvironmentProblem",
    "LocalProtocolError",
    "NetworkError",
    "ProtocolError",
    "RemoteProtocolError",
    "UsageError",
    "ValidationError",
]
