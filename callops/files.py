"""Reading files a user names: regular files only, never more than a cap.

Every file callops reads because a person named it -- ``callops.yaml`` (``--config``), a
``turnserver.conf`` (``turn lint``), a secret, JWT or token file -- goes through
:func:`read_user_file`. It refuses what is not a regular file (a directory, a FIFO, ``/dev/zero``,
a socket) before reading a byte, opens without blocking (a FIFO without a writer would otherwise
hang ``open``), reads at most ``cap + 1`` bytes, and turns every failure into the given
:class:`~callops.errors.UsageError` subclass (exit 2) naming the path and the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

from callops.errors import UsageError

KIB: Final = 1024
MIB: Final = 1024 * KIB
#: ``callops.yaml`` and ``turnserver.conf``
CONFIG_CAP: Final = 4 * MIB
#: secret, JWT and token files: a real one is well under 1 KiB
SECRET_CAP: Final = 64 * KIB

_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _size(n: int) -> str:
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= KIB and n % KIB == 0:
        return f"{n // KIB} KiB"
    return f"{n} bytes"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_user_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    cap: int,
    error: type[UsageError] = UsageError,
) -> bytes:
    """The bytes of the regular file ``path``, at most ``cap`` of them.

    ``what`` names the file in errors ("config file", "TURN shared secret file"). Raises ``error``
    (exit 2) for a missing, unreadable or non-regular file and for one larger than ``cap``.
    """
    name = os.fsdecode(path)
    label = f"{what} {name}"
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer. It does not change
        # how a regular file reads.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{label} does not exist", hint="check the path") from None
    except PermissionError:
        raise error(f"{label} is not readable", hint="check its permissions") from None
    except ValueError:  # "embedded null byte": no such path can exist
        raise error(f"{what} {name!r} contains a NUL byte", hint="check the path") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket file, or a FIFO opened write-only
            raise error(f"{label} is not a regular file", hint="give the path of a regular file") from None
        raise error(f"{label} cannot be opened: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(
                f"{label} is {_kind(info.st_mode)}, not a regular file",
                hint="give the path of a regular file",
            )
        if info.st_size > cap:
            raise error(
                f"{label} is {info.st_size} bytes, over the limit of {_size(cap)}",
                hint=f"a {what} is far smaller; check the path",
            )
        chunks: list[bytes] = []
        total = 0
        while total <= cap:
            chunk = os.read(fd, cap + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise error(f"{label} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if total > cap:  # it grew while we read it, or its size was not known (/proc)
        raise error(
            f"{label} is over the limit of {_size(cap)}", hint=f"a {what} is far smaller; check the path"
        )
    return b"".join(chunks)


def read_user_text(
    path: str | os.PathLike[str],
    *,
    what: str,
    cap: int,
    error: type[UsageError] = UsageError,
) -> str:
    """:func:`read_user_file` decoded as UTF-8; other bytes are an error naming the offset."""
    data = read_user_file(path, what=what, cap=cap, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{what} {os.fsdecode(path)} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
            hint="save it as UTF-8",
        ) from None


__all__ = ["CONFIG_CAP", "KIB", "MIB", "SECRET_CAP", "read_user_file", "read_user_text"]
