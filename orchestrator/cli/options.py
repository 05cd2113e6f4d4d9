"""The options several commands share: one builder for each kind of option they repeat, the option
groups they have in common, and what the TURN credential options' values become.

Only click is imported here, so ``callops --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import click

if TYPE_CHECKING:
    from callops.secret import Secret

#: environment variables holding a TURN REST shared secret, a long-term TURN password, the
#: emulator's HS256 JWT secret (instead of --secret-file, --password-file, --jwt-secret-file)
SECRET_ENV = "CALLOPS_TURN_SECRET"
PASSWORD_ENV = "CALLOPS_TURN_PASSWORD"
JWT_SECRET_ENV = "CALLOPS_EMULATOR_JWT_SECRET"

F = TypeVar("F", bound=Callable[..., object])


class Decorator(Protocol):
    """What ``click.option`` returns: adds a parameter to a command function."""

    def __call__(self, func: F, /) -> F: ...


def compose(*options: Decorator) -> Decorator:
    """One decorator for ``options``, which ``--help`` lists in the order given."""

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def choice_option(
    *decls: str, choices: Sequence[str], default: str | None = None, help: str | None = None
) -> Decorator:
    """One of ``choices``; the default, if any, shown in ``--help``."""
    return click.option(
        *decls,
        type=click.Choice(list(choices)),
        default=default,
        show_default=default is not None,
        help=help,
    )


def seconds_option(name: str, low: float, high: float, default: float, help: str) -> Decorator:
    """A number of seconds from ``low`` to ``high``, its default shown in ``--help``."""
    return click.option(name, type=click.FloatRange(low, high), default=default, show_default=True, help=help)


#: ``call``, ``smoke`` and ``call-site``: the visitor's reading time
answer_after_option = seconds_option(
    "--answer-after",
    0,
    120,
    0.0,
    "Seconds the visitor reads the invitation before answering (the call app warms up meanwhile).",
)


def file_option(*decls: str, help: str, exists: bool = False, as_path: bool = False) -> Decorator:
    """A file (not a directory): as a :class:`~pathlib.Path` with ``as_path``, checked to be there
    with ``exists``."""
    return click.option(
        *decls,
        type=click.Path(dir_okay=False, exists=exists, path_type=Path if as_path else None),
        help=help,
    )


#: how a command authenticates to TURN: a REST shared secret, or a long-term user and password
#: (secrets from files or the environment, never from the command line)
turn_credential_options = compose(
    file_option("--secret-file", help=f"TURN REST shared secret file (or set {SECRET_ENV})."),
    click.option("--user", help="Long-term TURN user name (with --password-file), or REST user name."),
    file_option("--password-file", help=f"Long-term TURN password file (or set {PASSWORD_ENV})."),
)

#: the kind of call and its ICE policy (``call``, ``call-site``)
MODES = ("VOICE_CALL", "VIDEO_CALL")
POLICIES = ("all", "relay")
#: who plays a role of a call
LEGS = ("aiortc", "chromium")


def turn_secrets(
    turn_url: str | None, secret_file: str | None, user: str | None, password_file: str | None
) -> tuple[Secret | None, Secret | None]:
    """``(shared secret, long-term password)`` of the :data:`turn_credential_options`: the secret
    if there is one, else the password (with ``--user``); neither without ``--turn``."""
    from callops.errors import UsageError
    from callops.secret import load_secret

    if turn_url is None:
        if secret_file or password_file:
            raise UsageError("--secret-file/--password-file need --turn", hint="or leave them out")
        return None, None
    secret = load_secret(file=secret_file, env=SECRET_ENV, what="TURN shared secret", required=False)
    if secret is not None:
        return secret, None
    password = load_secret(file=password_file, env=PASSWORD_ENV, what="TURN password", required=False)
    if password is None or user is None:
        raise UsageError(
            f"--turn {turn_url} needs credentials",
            hint=f"--secret-file (or {SECRET_ENV}), or --user with --password-file (or {PASSWORD_ENV})",
        )
    return None, password


def emulator_jwt_secret(jwt_secret_file: str | None) -> Secret | None:
    """``--jwt-secret-file`` (or the environment): the emulator's JWT secret; None: dev mode."""
    from callops.secret import load_secret

    return load_secret(file=jwt_secret_file, env=JWT_SECRET_ENV, what="emulator JWT secret", required=False)


__all__ = [
    "JWT_SECRET_ENV",
    "PASSWORD_ENV",
    "SECRET_ENV",
    "answer_after_option",
    "choice_option",
    "compose",
    "emulator_jwt_secret",
    "file_option",
    "seconds_option",
    "turn_credential_options",
    "turn_secrets",
]
