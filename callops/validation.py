"""pydantic validation errors as the problems a person can act on: one ``(field, message)`` per bad field.

Every boundary that validates with pydantic (wire frames, request bodies, ``callops.yaml``
sections, lpTag payloads, probe profiles) turns :class:`pydantic.ValidationError` into a
:mod:`callops.errors` error with these two functions, so every message names the fields the same
way:

- the field is the dotted location (``turn.external_ips.0.public``), without the names pydantic
  gives union members and validator functions (``function-after[...]``, ``lax-or-strict[...]``);
  an error of the whole value is reported on ``root`` (``(top level)`` unless the caller names it);
- the message is pydantic's, without its ``Value error,`` prefix, unless ``fixes`` gives a better
  one for the error type; the messages of one field are joined with ``or`` (a union tries several).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypedDict, Unpack

import pydantic
from pydantic_core import ErrorDetails

#: a message for an error type: fixed text, or built from the error (``ctx``, ``input``)
Fix = str | Callable[[ErrorDetails], str]

TOP_LEVEL = "(top level)"


def _is_member_name(part: str) -> bool:
    # "function-after[check(), str]", "lax-or-strict[...]", "json-or-python[...]": pydantic's
    # names of union members and validators, not fields
    return any(c in part for c in "[(")


def field_path(loc: Sequence[int | str], *, section: str = "", skip: int = 0, root: str = TOP_LEVEL) -> str:
    """The dotted field of an error location, under ``section``; ``root`` when nothing is left.

    ``skip`` drops the first elements (the tag of a discriminated union names the member, not a field).
    """
    parts = [str(p) for p in loc[skip:] if isinstance(p, int) or not _is_member_name(p)]
    return ".".join([section, *parts] if section else parts) or root


def validation_problems(
    exc: pydantic.ValidationError,
    *,
    section: str = "",
    skip_tag: bool = False,
    root: str = TOP_LEVEL,
    fixes: Mapping[str, Fix] | None = None,
) -> list[tuple[str, str]]:
    """One ``(field, message)`` per bad field, in pydantic's order (see the module docstring)."""
    merged: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        field = field_path(err["loc"], section=section, skip=1 if skip_tag else 0, root=root)
        fix = (fixes or {}).get(err["type"])
        if fix is None:
            message = err["msg"].removeprefix("Value error, ")
        else:
            message = fix if isinstance(fix, str) else fix(err)
        if message not in merged.setdefault(field, []):
            merged[field].append(message)
    return [(field, " or ".join(messages)) for field, messages in merged.items()]


class ProblemOptions(TypedDict, total=False):
    """The keyword arguments of :func:`validation_problems`."""

    section: str
    skip_tag: bool
    root: str
    fixes: Mapping[str, Fix] | None


def describe_validation_error(exc: pydantic.ValidationError, **options: Unpack[ProblemOptions]) -> str:
    """:func:`validation_problems` on one line: ``id: String should have at least 1 character; ...``."""
    problems = validation_problems(exc, **options)
    return "; ".join(f"{field}: {message}" for field, message in problems)


__all__ = [
    "TOP_LEVEL",
    "Fix",
    "ProblemOptions",
    "describe_validation_error",
    "field_path",
    "validation_problems",
]
