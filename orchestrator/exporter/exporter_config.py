"""The ``exporter:`` section of ``callops.yaml``: where the exporter listens and its modules.

Modules are named probes with their settings, like blackbox_exporter's ``modules:``. Each has a
``prober`` (which probe runs), a ``timeout`` (the cap; Prometheus' scrape timeout minus
``timeout_margin`` may shorten it) and the prober's own fields. Secrets come from a file or an
environment variable named in the module, never from the config file itself or the URL::

    exporter:
      listen: 0.0.0.0:9478
      modules:
        turn_udp:
          prober: turn
          transport: udp
          secret_file: /etc/callops/turn-secret     # or secret_env: CALLOPS_TURN_SECRET
        turn_tls:
          prober: turn
          transport: tls
          secret_file: /etc/callops/turn-secret
          ca_file: /etc/callops/ca.pem
        relay:
          prober: relay
          secret_file: /etc/callops/turn-secret
          packets: 20

``stun``, ``nat`` and ``tls`` exist with no config at all (:data:`DEFAULT_MODULES`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from callops.errors import ConfigError, UsageError
from callops.orchestrator.probe.paths import PATH_CLASSES, PathClass
from callops.orchestrator.probe.settings import ProbeServers
from callops.secret import Secret, read_secret_file

if TYPE_CHECKING:
    from callops.turn.bandwidth import FlowSpec

#: blackbox_exporter listens on 9115; 9478 is free in Prometheus' port allocation list at writing.
DEFAULT_LISTEN = "127.0.0.1:9478"
#: seconds taken off Prometheus' scrape timeout so the answer arrives before Prometheus gives up
DEFAULT_TIMEOUT_MARGIN = 0.5
#: REST API user the exporter asks credentials for (``<expiry>:callops-exporter``)
DEFAULT_REST_USER = "callops-exporter"
#: lifetime of the REST credentials computed for one probe
REST_TTL = 600

Transport = Literal["udp", "tcp", "tls"]
_TRANSPORTS: dict[str, Transport] = {"udp": "udp", "tcp": "tcp", "tls": "tls"}


class _Module(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    timeout: float = Field(default=5.0, gt=0, le=120)
    """The longest a probe of this module may take, in seconds (Prometheus' timeout may cut it)."""
    concurrency: int = Field(default=8, ge=1, le=256)
    """Probes of this module that run at once; more wait (within their own timeout) for a slot."""

    def public_settings(self) -> dict[str, str]:
        """What the HTML page may show: every setting but secrets and secret sources' contents."""
        shown: dict[str, str] = {}
        for name, value in self.model_dump(exclude_none=True).items():
            if name in ("prober",) or value in ((), [], ""):
                continue
            shown[name] = str(value)
        return shown


class _Credentials(BaseModel):
    """TURN credentials: a REST shared secret, or a long-term user and password (file or env)."""

    secret_file: Path | None = None
    """File with the TURN REST API shared secret (coturn ``static-auth-secret``)."""
    secret_env: str | None = None
    """Environment variable holding the shared secret."""
    user: str | None = None
    """Long-term user (with ``password_file``/``password_env``), or the REST user name."""
    password_file: Path | None = None
    """File with the long-term password."""
    password_env: str | None = None
    """Environment variable holding the long-term password."""

    @model_validator(mode="after")
    def _one_kind(self) -> _Credentials:
        secret = self.secret_file is not None or self.secret_env is not None
        password = self.password_file is not None or self.password_env is not None
        if secret and password:
            raise ValueError("give a shared secret (secret_file/secret_env) or a password, not both")
        if not secret and not password:
            raise ValueError(
                "TURN credentials missing: set secret_file or secret_env (or user + password_file)"
            )
        if password and not self.user:
            raise ValueError("a long-term password needs 'user'")
        return self

    def credentials(self, env: Mapping[str, str], now: float) -> tuple[str, Secret]:
        """``(username, password)`` for one probe; the secret is read now (rotation needs no restart)."""
        from callops.turn.credentials import rest_credentials

        if self.secret_file is not None or self.secret_env is not None:
            secret = _read(self.secret_file, self.secret_env, env, "TURN shared secret")
            creds = rest_credentials(secret, self.user or DEFAULT_REST_USER, ttl=REST_TTL, now=now)
            return creds.username, Secret(creds.credential, source="REST")
        assert self.user is not None
        return self.user, _read(self.password_file, self.password_env, env, "TURN password")

    def secret_sources(self, env: Mapping[str, str]) -> list[Secret]:
        """The raw secrets this module holds (to scrub them from any text it produces)."""
        out = []
        for file, name in ((self.secret_file, self.secret_env), (self.password_file, self.password_env)):
            try:
                if file is not None or name is not None:
                    out.append(_read(file, name, env, "secret"))
            except UsageError:
                continue
        return out


def _read(file: Path | None, name: str | None, env: Mapping[str, str], what: str) -> Secret:
    if file is not None:
        return read_secret_file(file, what=what)
    assert name is not None
    value = env.get(name, "").strip()
    if not value:
        raise UsageError(f"{what}: environment variable {name} is empty or unset", hint=f"set {name}")
    return Secret(value, source=f"env {name}")


class StunModule(_Module):
    """A STUN Binding: mapped address and round-trip time. Target ``stun:HOST[:PORT]`` or ``HOST[:PORT]``."""

    prober: Literal["stun"] = "stun"
    transport: Transport = "udp"
    """Transport of the Binding (``tls`` means ``stuns:``)."""
    ca_file: Path | None = None
    """PEM CA bundle for ``tls`` (private CA)."""
    insecure: bool = False
    """Do not verify certificates (``tls``)."""


class NatModule(_Module):
    """RFC 5780 mapping and filtering behaviour (UDP). Target ``stun:HOST[:PORT]`` or ``HOST[:PORT]``."""

    prober: Literal["nat"] = "nat"


class TlsModule(_Module):
    """TLS handshake and certificate expiry. Target ``HOST[:PORT]`` (5349) or ``turns:HOST[:PORT]``."""

    prober: Literal["tls"] = "tls"
    ca_file: Path | None = None
    """PEM CA bundle to verify against (default: the system CAs)."""
    server_name: str | None = None
    """SNI and name to verify (default: the target's host)."""


class TurnModule(_Credentials, _Module):
    """A TURN Allocate (with the 401 round). Target ``HOST[:PORT]`` or a ``turn:``/``turns:`` URI."""

    prober: Literal["turn"] = "turn"
    transport: Transport = "udp"
    """Transport to the server; ``tls`` is ``turns:`` (TLS over TCP)."""
    ca_file: Path | None = None
    insecure: bool = False


class RelayModule(TurnModule):
    """Packets through an allocation to an echoing peer and back: RTT and loss."""

    prober: Literal["relay"] = "relay"  # type: ignore[assignment]
    packets: int = Field(default=10, ge=1, le=200)
    """Packets sent through the relay."""
    peer: str | None = None
    """``HOST:PORT`` of a UDP echo peer; default a second allocation on the same relay echoes."""


class BandwidthModule(TurnModule):
    """A call-shaped flow through an allocation (:mod:`callops.turn.bandwidth`), bounded in rate and time.

    The rate, floor and duration are the module's own, or those of one ``bandwidth`` item of a
    readiness profile (``item: bandwidth-video`` of ``profile: liveperson``).
    """

    prober: Literal["bandwidth"] = "bandwidth"  # type: ignore[assignment]
    timeout: float = Field(default=8.0, gt=0, le=120)
    media: Literal["voice", "video"] = "voice"
    """``voice`` (packets every 20 ms) or ``video`` (30 fps bursts with key frames)."""
    rate_kbps: float = Field(default=600.0, gt=0, le=4000)
    """Target send rate, kbit/s (LivePerson voice: 600; voice+video: 2600); at most 4000."""
    floor_kbps: float | None = Field(default=None, gt=0)
    """Below this the probe fails; between it and ``rate_kbps`` it is degraded. Default: ``rate_kbps``."""
    max_loss: float = Field(default=0.05, ge=0, le=1)
    """Loss above this fails the probe whatever the rate (0-1)."""
    duration: float = Field(default=2.5, ge=0.2, le=10)
    """Seconds of sending (the module's timeout must exceed it by at least 1 s)."""
    profile: str = "liveperson"
    """Readiness profile ``item`` is taken from: a built-in name or a YAML file."""
    item: str | None = None
    """A ``bandwidth`` item id of ``profile``: its media, rate, floor and duration replace those above."""

    @model_validator(mode="after")
    def _flow(self) -> BandwidthModule:
        try:
            spec = self.flow_spec()
        except UsageError as exc:
            raise ValueError(exc.message) from None
        if self.timeout < spec.duration_s + 1.0:
            raise ValueError(
                f"timeout {self.timeout:g} s leaves no time to set up: make it at least "
                f"duration + 1 = {spec.duration_s + 1.0:g} s"
            )
        return self

    def flow_spec(self) -> FlowSpec:
        """The flow to send; :class:`UsageError` names the bad field."""
        from callops.turn.bandwidth import FlowSpec

        if self.item is None:
            spec = FlowSpec(
                self.media,
                self.rate_kbps,
                self.floor_kbps or self.rate_kbps,
                duration_s=self.duration,
                max_loss=self.max_loss,
            )
            return spec.check()
        from callops.orchestrator.probe.profile import load_profile

        profile = load_profile(self.profile)
        found = next((i for i in profile.items if i.id == self.item and i.check == "bandwidth"), None)
        if found is None:
            ids = ", ".join(i.id for i in profile.items if i.check == "bandwidth") or "none"
            raise UsageError(f"item {self.item!r} is not a bandwidth item of profile {profile.name} ({ids})")
        assert found.media is not None and found.kbps is not None and found.floor_kbps is not None
        spec = FlowSpec(
            found.media, found.kbps, found.floor_kbps, duration_s=found.duration_s, max_loss=self.max_loss
        )
        return spec.check()


class IceTwoSiteModule(ProbeServers, _Module):
    """Full ICE negotiations against a ``callops probe serve`` at another site. Target ``ws(s)://HOST:PORT``.

    This site's STUN and TURN servers and credentials are set as for ``callops probe`` (a secret or
    password not in a file comes from ``CALLOPS_TURN_SECRET``/``CALLOPS_TURN_PASSWORD``).
    """

    prober: Literal["ice_two_site"] = "ice_two_site"
    token_file: Path | None = None
    """File with the ``probe serve`` token."""
    token_env: str | None = None
    """Environment variable with the token."""
    timeout: float = Field(default=15.0, gt=0, le=120)
    host_addresses: list[str] | None = None
    """Local addresses ICE may use for host candidates (default: every interface)."""
    paths: list[PathClass] = Field(default_factory=lambda: list(PATH_CLASSES))
    """Path classes to negotiate (each a full ICE negotiation)."""

    @model_validator(mode="after")
    def _token(self) -> IceTwoSiteModule:
        if self.token_file is None and self.token_env is None:
            raise ValueError("the probe serve token is missing: set token_file or token_env")
        return self


class LivePersonModule(TurnModule):
    """A readiness profile (LivePerson's published requirements by default) against the target host.

    The target's host is probed on each ``transport/port`` of ``serves`` (``tls`` is ``turns:``), as
    ``callops probe --profile`` probes the ``--turn`` URIs it is given; items about ports the host
    does not serve are ``skipped``.
    """

    prober: Literal["liveperson"] = "liveperson"  # type: ignore[assignment]
    timeout: float = Field(default=20.0, gt=0, le=120)
    profile: str = "liveperson"
    """A built-in profile name or a profile YAML file."""
    serves: list[str] | None = None
    """``transport/port`` the target's TURN server listens on (``udp/3478``, ``tls/443``); default: the
    transports and ports of the profile's ``relay`` items."""

    @model_validator(mode="after")
    def _profile(self) -> LivePersonModule:
        from callops.errors import CallopsError

        try:
            self.served()
        except CallopsError as exc:
            raise ValueError(exc.message) from None
        return self

    def served(self) -> list[tuple[Transport, int]]:
        """``serves`` as ``(transport, port)`` pairs (the profile's relay items when unset)."""
        if self.serves is None:
            from callops.orchestrator.probe.profile import load_profile

            items = load_profile(self.profile).items
            return [(i.transport, i.port) for i in items if i.check == "relay" and i.transport and i.port]
        out: list[tuple[Transport, int]] = []
        for entry in self.serves:
            name, _, port = entry.partition("/")
            transport = _TRANSPORTS.get(name)
            if transport is None or not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError(f"serves: {entry!r} is not TRANSPORT/PORT (udp/3478, tcp/3478, tls/443)")
            out.append((transport, int(port)))
        return out


Module = Annotated[
    StunModule
    | NatModule
    | TlsModule
    | TurnModule
    | RelayModule
    | BandwidthModule
    | IceTwoSiteModule
    | LivePersonModule,
    Field(discriminator="prober"),
]

#: Modules that need no config, named after their prober (as blackbox ships ``http_2xx``).
DEFAULT_MODULES: dict[str, Module] = {
    "stun": StunModule(),
    "nat": NatModule(),
    "tls": TlsModule(),
}


class ExporterSettings(BaseModel):
    """``callops.yaml``'s ``exporter:`` section."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    listen: str = DEFAULT_LISTEN
    """``HOST:PORT`` to serve on."""
    site: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,63}$")
    """The ``site`` label ``callops deploy render`` gives this exporter's scrape jobs (office or region)."""
    timeout_margin: float = Field(default=DEFAULT_TIMEOUT_MARGIN, ge=0, le=10)
    """Seconds taken off ``X-Prometheus-Scrape-Timeout-Seconds``."""
    max_pending: int = Field(default=256, ge=1, le=10_000)
    """Probe requests admitted at once (running or waiting for a slot); more get 503."""
    history: int = Field(default=100, ge=0, le=10_000)
    """Last results the HTML page shows."""
    modules: dict[str, Module] = Field(default_factory=dict)
    """Named modules; ``stun``, ``nat`` and ``tls`` exist unless redefined here."""

    @model_validator(mode="after")
    def _names(self) -> ExporterSettings:
        for name in self.modules:
            if not name or not all(c.isalnum() or c in "_-" for c in name):
                raise ValueError(f"module name {name!r} may use letters, digits, '_' and '-' only")
        return self

    def all_modules(self) -> dict[str, Module]:
        return {**DEFAULT_MODULES, **self.modules}


def exporter_settings(section: object, *, source: str = "callops.yaml") -> ExporterSettings:
    """The ``exporter:`` section as :class:`ExporterSettings`; errors name each bad field and the fix."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: 'exporter' must be a mapping of fields")
    try:
        return ExporterSettings.model_validate(section)
    except pydantic.ValidationError as exc:
        from callops.validation import describe_validation_error

        problems = describe_validation_error(
            exc,
            section="exporter",
            fixes={"extra_forbidden": "unknown field (see docs/exporter.md for the fields of each prober)"},
        )
        raise ConfigError(f"invalid {source}: {problems}", hint="fix the named field(s)") from None


def load_exporter_settings(path: str | os.PathLike[str] | None) -> tuple[ExporterSettings, str]:
    """Settings from ``path`` (``exporter:`` section), or the defaults when ``path`` is None."""
    if path is None:
        return ExporterSettings(), "defaults"
    from callops.turn.config import load_config

    return exporter_settings(load_config(path).section("exporter"), source=str(path)), str(path)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) -> ``(host, port)``; :class:`UsageError` names the bad part."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"listen address {text!r} is not HOST:PORT", hint="e.g. --listen 0.0.0.0:9478")
    return host, int(port)


__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MODULES",
    "DEFAULT_TIMEOUT_MARGIN",
    "BandwidthModule",
    "ExporterSettings",
    "IceTwoSiteModule",
    "LivePersonModule",
    "Module",
    "NatModule",
    "RelayModule",
    "StunModule",
    "TlsModule",
    "Transport",
    "TurnModule",
    "exporter_settings",
    "load_exporter_settings",
    "parse_listen",
]
