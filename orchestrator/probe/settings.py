"""Where ``callops probe`` takes its servers and credentials from: config, environment, flags.

The ``probe:`` section of ``callops.yaml`` (:class:`ProbeSettings`), then environment variables
(``CALLOPS_PROBE_*``, ``CALLOPS_TURN_SECRET``/``CALLOPS_TURN_PASSWORD`` for the secrets themselves),
then command-line flags: each later source overrides the earlier one field by field. Pure: the
environment is passed in as a mapping. Secrets are read only from files or environment variables.

``callops.yaml``::

    probe:
      stun: ["stun:turn.example.com:3478"]
      turn: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"]
      secret_file: /etc/callops/turn-secret   # TURN REST API shared secret, or:
      # user: alice
      # password_file: /etc/callops/turn-password
      ca_file: /etc/callops/ca.pem            # private CA of the TURN server's certificate
      timeout: 10
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from callops.errors import ConfigError, UsageError
from callops.secret import Secret, read_secret_file
from callops.turn.uri import ServerUri, parse_uri
from callops.validation import describe_validation_error

DEFAULT_TIMEOUT = 10.0
#: REST API user name the probe asks credentials for (``<expiry>:callops-probe``).
DEFAULT_REST_USER = "callops-probe"
#: How long RFC 5780 filtering tests wait for CHANGE-REQUEST answers that a filtering NAT drops.
DEFAULT_NAT_WAIT = 0.8

ENV_PREFIX = "CALLOPS_PROBE_"
ENV_SECRET = "CALLOPS_TURN_SECRET"
ENV_PASSWORD = "CALLOPS_TURN_PASSWORD"


class ProbeServers(BaseModel):
    """The servers a probe asks and the credentials it uses with them: the part of
    :class:`ProbeSettings` that the exporter's ``ice_two_site`` module has too."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    stun: list[str] = Field(default_factory=list)
    """STUN URIs (``stun:host:port``); without any, the first ``turn:`` UDP server is asked for STUN."""
    turn: list[str] = Field(default_factory=list)
    """TURN URIs; one per transport to test (``?transport=udp``, ``?transport=tcp``, ``turns:``)."""
    secret_file: Path | None = None
    """File with the TURN REST API shared secret (coturn ``static-auth-secret``)."""
    user: str | None = None
    """Long-term TURN user name (with ``password_file``), or the REST user name with a secret."""
    password_file: Path | None = None
    """File with the long-term TURN password."""
    ca_file: Path | None = None
    """PEM CA bundle for TURN over TLS with a private CA."""
    insecure: bool = False
    """Do not verify TURN/TLS certificates (the report says so)."""


class ProbeSettings(ProbeServers):
    """The ``probe:`` section of ``callops.yaml``; every field also has a flag and an env variable."""

    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=120)
    """The one deadline of all probes, in seconds."""
    nat_wait: float = Field(default=DEFAULT_NAT_WAIT, gt=0, le=60)
    """Seconds RFC 5780 discovery may take (bounded by ``timeout``)."""

    def stun_uris(self) -> list[ServerUri]:
        uris = [parse_uri(u) for u in self.stun]
        if not uris:
            first = next((u for u in self.turn_uris() if u.transport == "udp" and not u.secure), None)
            if first is not None:
                uris = [parse_uri(f"stun:{first.hostport}")]
        for uri in uris:
            if uri.is_turn:
                raise UsageError(f"--stun {uri} is a TURN URI", hint="pass it with --turn")
        return uris

    def turn_uris(self) -> list[ServerUri]:
        uris = [parse_uri(u) for u in self.turn]
        for uri in uris:
            if not uri.is_turn:
                raise UsageError(f"--turn {uri} is not a TURN URI", hint="pass it with --stun")
        return uris


def _env_list(value: str) -> list[str]:
    return [item for item in value.replace(",", " ").split() if item]


def settings_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``CALLOPS_PROBE_*`` variables as settings fields (secrets are read later, not here)."""
    out: dict[str, Any] = {}
    for name in ProbeSettings.model_fields:
        value = env.get(ENV_PREFIX + name.upper())
        if value is None or value == "":
            continue
        if name in ("stun", "turn"):
            out[name] = _env_list(value)
        elif name == "insecure":
            out[name] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            out[name] = value
    return out


def merge_settings(
    config: Mapping[str, Any] | None, env: Mapping[str, str], flags: Mapping[str, Any], *, source: str
) -> ProbeSettings:
    """``config`` (the ``probe:`` section), overridden by ``env``, overridden by ``flags``.

    ``flags`` holds only the options given on the command line (empty lists and ``None`` mean "not
    given"). A secret file from a lower layer is dropped when a higher layer chooses the other
    kind of credential (``--user/--password-file`` versus ``--secret-file``).
    """
    merged: dict[str, Any] = dict(config or {})
    for layer in (settings_from_env(env), {k: v for k, v in flags.items() if v not in (None, (), [], False)}):
        if "secret_file" in layer:
            merged.pop("password_file", None)
        if "password_file" in layer:
            merged.pop("secret_file", None)
        merged.update({k: list(v) if isinstance(v, tuple) else v for k, v in layer.items()})
    try:
        return ProbeSettings.model_validate(merged)
    except pydantic.ValidationError as exc:
        problems = describe_validation_error(exc)
        raise ConfigError(
            f"invalid probe settings from {source}: {problems}", hint="fix the named field(s)"
        ) from None


@dataclass(frozen=True)
class ProbeCredentials:
    """What the probe authenticates with; ``kind`` says whether the password may be shown."""

    #: ``rest`` (ephemeral: may appear in ``ice_servers``), ``long-term`` (never shown) or ``none``
    kind: str
    username: str | None = None
    password: Secret | None = None


def _secret(file: Path | None, env: Mapping[str, str], name: str, what: str) -> Secret | None:
    if file is not None:
        return read_secret_file(file, what=what)
    value = env.get(name, "").strip()
    return Secret(value, source=f"env {name}") if value else None


def load_credentials(settings: ProbeSettings, env: Mapping[str, str], *, now: float) -> ProbeCredentials:
    """TURN credentials: REST (from the shared secret) or long-term (user + password), from file or env."""
    from callops.turn.credentials import rest_credentials

    if settings.secret_file is not None and settings.password_file is not None:
        raise UsageError("--secret-file and --password-file exclude each other", hint="pass one of them")
    if settings.password_file is not None or (settings.user and env.get(ENV_PASSWORD)):
        if not settings.user:
            raise UsageError("--password-file needs --user", hint="pass the long-term TURN user name")
        password = _secret(settings.password_file, env, ENV_PASSWORD, "TURN password")
        if password is None:
            raise UsageError("no TURN password given", hint=f"pass --password-file F or set {ENV_PASSWORD}")
        return ProbeCredentials(kind="long-term", username=settings.user, password=password)
    secret = _secret(settings.secret_file, env, ENV_SECRET, "TURN shared secret")
    if secret is None:
        if settings.turn:
            raise UsageError(
                "TURN servers given but no credentials",
                hint=f"pass --secret-file F (or set {ENV_SECRET}), or --user U --password-file F",
            )
        return ProbeCredentials(kind="none")
    creds = rest_credentials(secret, settings.user or DEFAULT_REST_USER, ttl=3600, now=now)
    return ProbeCredentials(kind="rest", username=creds.username, password=Secret(creds.credential, "REST"))


__all__ = [
    "DEFAULT_NAT_WAIT",
    "DEFAULT_REST_USER",
    "DEFAULT_TIMEOUT",
    "ENV_PASSWORD",
    "ENV_PREFIX",
    "ENV_SECRET",
    "ProbeCredentials",
    "ProbeServers",
    "ProbeSettings",
    "load_credentials",
    "merge_settings",
    "settings_from_env",
]
