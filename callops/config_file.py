"""``callops.yaml``, the one config file of callops: its model, its loader and its error messages.

:class:`CallopsConfig` is the whole file. Its ``turn:`` section is a
:class:`~callops.turn.config.TurnDeployment`; the other top-level sections (``probe:``,
``deploy:``, ...) belong to other commands, are kept as they are and are read with
:meth:`CallopsConfig.section`. :func:`load_config` reads the file (bounded, see
:mod:`callops.yamlconfig`), :func:`parse_config` validates already-parsed data, and
:func:`config_error_from` turns a pydantic ``ValidationError`` into a
:class:`~callops.errors.ConfigError` that names every bad field and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic_core import ErrorDetails

from callops.errors import ConfigError
from callops.turn.config import TurnDeployment
from callops.validation import Fix, describe_validation_error


class CallopsConfig(BaseModel):
    """``callops.yaml``. Only ``turn:`` is read here; other sections are kept as they are."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)

    turn: TurnDeployment | None = None
    """The coturn deployment (``callops turn config``, ``callops deploy render``)."""

    def section(self, name: str) -> Any:
        """A top-level section that belongs to another command (``probe:``, ``deploy:``), or ``None``."""
        return (self.model_extra or {}).get(name)

    def require_turn(self, path: str | os.PathLike[str] = "callops.yaml") -> TurnDeployment:
        if self.turn is None:
            raise ConfigError(
                f"{path} has no 'turn:' section",
                hint="add one with at least 'realm:' (see docs/turn-config.md)",
            )
        return self.turn


def _not_an_ip(err: ErrorDetails) -> str:
    kind = "network" if "network" in err["type"] else "address"
    return f"{str(err.get('input'))[:64]!r} is not a valid IP {kind}"


_FIXES: dict[str, Fix] = {
    "extra_forbidden": "unknown field (check the spelling against docs/turn-config.md)",
    **dict.fromkeys(("ip_v4_address", "ip_v6_address", "ip_v4_network", "ip_v6_network"), _not_an_ip),
}


def config_error_from(exc: pydantic.ValidationError, source: str, *, section: str = "") -> ConfigError:
    """A :class:`ConfigError` naming every bad field of ``source`` (under ``section``) and the fix."""
    text = describe_validation_error(exc, section=section, fixes=_FIXES)
    return ConfigError(f"invalid {source}: " + text, hint="fix the named field(s)")


def parse_config(data: Any, *, source: str = "callops.yaml") -> CallopsConfig:
    """A :class:`CallopsConfig` from already-parsed YAML/JSON data."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of sections (turn:, probe:, ...)")
    turn = data.get("turn")
    try:
        config = CallopsConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise config_error_from(exc, source) from None
    if turn is not None and not isinstance(turn, dict):
        raise ConfigError(f"{source}: 'turn' must be a mapping of fields")
    return config


def load_config(path: str | os.PathLike[str]) -> CallopsConfig:
    """Read ``callops.yaml``. Errors name the file, the line or the field, and the fix."""
    from callops.files import CONFIG_CAP, read_user_text
    from callops.yamlconfig import load_yaml

    p = Path(path)
    text = read_user_text(p, what="config file", cap=CONFIG_CAP, error=ConfigError)
    data = load_yaml(text, source=str(p))
    return parse_config(data, source=str(p))


__all__ = ["CallopsConfig", "config_error_from", "load_config", "parse_config"]
