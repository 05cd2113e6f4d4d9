"""The coturn deployment model and its ``turnserver.conf`` renderer.

:class:`TurnDeployment` describes one coturn relay (realm, addresses, NAT mapping, ports, TLS,
secret file, quotas, bandwidth, prometheus, logging, target coturn version) with secure defaults;
:func:`render_turnserver_conf` turns it into a ``turnserver.conf`` that ``callops turn lint``
finds clean: TURN REST API authentication (``use-auth-secret``), ``realm``, ``fingerprint``,
``no-cli``, ``no-multicast-peers``, a ``denied-peer-ip`` line for every IANA special-purpose
range (:mod:`callops.turn.ranges`), ``allowed-peer-ip`` only for explicitly approved ranges and
TLS 1.0/1.1 off with the option names of the target coturn version.

The shared secret. coturn (4.6 and 4.7 alike) takes ``static-auth-secret`` only as a literal in
the config file or on the command line -- it has no option to read it from a file, and a command
line shows in ``ps``. So the rendered config names the secret file in a ``# callops:`` comment
and leaves the literal out; whoever installs it (``install-coturn.sh``, the Kubernetes init
container, :func:`write_turnserver_conf` for tests and ``callops call``) appends
``static-auth-secret=...`` from the file into a copy readable only by coturn (0600/0640).

The model of the whole ``callops.yaml`` (:class:`~callops.config_file.CallopsConfig`, whose
``turn:`` section is a :class:`TurnDeployment`) lives in :mod:`callops.config_file`; its names are
still importable from here for the modules that have not moved yet.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callops.errors import UsageError
from callops.secret import Secret
from callops.turn.directives import (
    DIRECTIVES,
    META_PREFIX,
    TLS_SWITCHES_CHANGED_IN,
    ConfLine,
    render_lines,
)
from callops.turn.ranges import denied_by_default

if TYPE_CHECKING:
    # re-exported for deploy/render.py and orchestrator/cli/{deploy,probe,turn_config}.py, which
    # import them from here; loaded on first use because callops.config_file imports this module
    from callops.config_file import CallopsConfig, config_error_from, load_config, parse_config

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: from this version on the telnet CLI is off unless ``cli`` is given; ``no-cli`` only logs that it
#: is deprecated (coturn PR #1830, released with 4.10).
CLI_OFF_BY_DEFAULT_IN = (4, 10)

DEFAULT_SECRET_FILE = Path("/etc/coturn/turn-secret")

_REALM_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+){0,2}$")
#: text fields with a required shape: field -> (pattern, what a value must look like)
_PATTERNED_FIELDS: dict[str, tuple[re.Pattern[str], str]] = {
    "realm": (_REALM_RE, "must be a DNS-style name such as turn.example.com (letters, digits, '.', '-')"),
    "coturn_version": (_VERSION_RE, "must look like 4.6.1 (run `turnserver --version`)"),
}


def version_tuple(version: str) -> tuple[int, ...]:
    """``"4.6.1"`` -> ``(4, 6, 1)``."""
    return tuple(int(part) for part in version.split("."))


#: fields that hold IP addresses or networks: pydantic would take the integer 1 (or ``true``) as 0.0.0.1
_ADDRESS_FIELDS = frozenset(
    {"listening_ips", "relay_ips", "allowed_peer_ips", "denied_peer_ips", "public", "private"}
)


def _plain_value(field: str, value: Any, *, address: bool) -> Any:
    """Refuse YAML booleans (``yes``, ``on``, ``true``) in non-boolean fields and numbers as addresses.

    pydantic's lax mode turns ``true`` into 1 and 1 into the address 0.0.0.1; in YAML an unquoted
    ``on`` or ``no`` is a boolean, so such a value is almost always a quoting mistake.
    """
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, bool) for item in items):
        raise ValueError("is a yes/no value here; write the value itself (in YAML quote 'on', 'yes', 'no')")
    if address and any(isinstance(item, int | float) for item in items):
        raise ValueError("write the address as text, e.g. '192.0.2.10' or '10.0.0.0/8'")
    return value


class ExternalIp(BaseModel):
    """A 1:1 NAT mapping: coturn advertises ``public`` for relays bound to ``private``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    @field_validator("public", "private", mode="before")
    @classmethod
    def _addresses_as_text(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        return _plain_value(info.field_name or "", value, address=True)

    public: IPAddress
    """The address clients and peers reach the relay at."""
    private: IPAddress | None = None
    """The host's own address behind the NAT (needed when it has several)."""

    @property
    def coturn_value(self) -> str:
        return f"{self.public}/{self.private}" if self.private else str(self.public)


class TurnDeployment(BaseModel):
    """One coturn relay. The defaults are the secure ones; every field can be set in ``callops.yaml``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    realm: str
    """The TURN realm, usually the relay's DNS name (e.g. ``turn.example.com``)."""
    coturn_version: str = "4.6.1"
    """The coturn version the config is for: option names changed in 4.7 and 4.10."""
    listening_ips: list[IPAddress] = Field(default_factory=list)
    """Addresses coturn listens on (``listening-ip``); empty means all of the host's addresses."""
    relay_ips: list[IPAddress] = Field(default_factory=list)
    """Addresses relayed traffic leaves from (``relay-ip``); empty lets coturn choose."""
    external_ips: list[ExternalIp] = Field(default_factory=list)
    """Public/private mappings for a relay behind 1:1 NAT (``external-ip``), e.g. on a cloud VM."""
    listening_port: int = Field(default=3478, ge=1, le=65535)
    """STUN/TURN over UDP and TCP."""
    tls_listening_port: int = Field(default=5349, ge=1, le=65535)
    """TURN over TLS and DTLS (443 gets through most firewalls; needs CAP_NET_BIND_SERVICE)."""
    min_port: int = Field(default=49152, ge=1024, le=65535)
    """Lowest relay port."""
    max_port: int = Field(default=65535, ge=1024, le=65535)
    """Highest relay port."""
    tls_cert_file: Path | None = None
    """PEM certificate chain for TLS/DTLS; without it TLS and DTLS listeners are off."""
    tls_key_file: Path | None = None
    """PEM private key of ``tls_cert_file``."""
    cipher_list: str | None = None
    """OpenSSL cipher list for TLS/DTLS; coturn's default when unset."""
    secret_file: Path = DEFAULT_SECRET_FILE
    """File holding the TURN REST API shared secret (mode 0600, owned by coturn's user)."""
    user_quota: int = Field(default=12, ge=0)
    """Concurrent allocations per user name (0: unlimited). A call needs one or two."""
    total_quota: int = Field(default=1000, ge=0)
    """Concurrent allocations on the whole relay (0: unlimited): its declared capacity."""
    max_bps: int | None = Field(default=None, ge=0)
    """Bytes per second one session may relay (``max-bps``); unlimited when unset."""
    bps_capacity: int | None = Field(default=None, ge=0)
    """Bytes per second the whole relay may carry (``bps-capacity``); unlimited when unset."""
    allowed_peer_ips: list[IPNetwork] = Field(default_factory=list)
    """Peer ranges explicitly approved even though they fall in a denied range."""
    denied_peer_ips: list[IPNetwork] = Field(default_factory=list)
    """Extra peer ranges to deny, on top of every IANA special-purpose range."""
    allow_loopback_peers: bool = False
    """Relay to 127.0.0.0/8 and ::1 -- only for tests and calls on one machine; the lint flags it."""
    stale_nonce: int = Field(default=600, ge=0)
    """Nonce lifetime in seconds (0: coturn's default without expiry)."""
    no_software_attribute: bool = True
    """Hide coturn's version from clients."""
    prometheus: bool = False
    """Export metrics (needs a coturn built with prometheus support; Debian's 4.6.1 is not)."""
    prometheus_port: int = Field(default=9641, ge=1, le=65535)
    """Port of the prometheus exporter."""
    log_file: str | None = "syslog"
    """``syslog``, ``stdout`` or a file path; ``None`` leaves logging to the command line."""
    verbose: bool = False
    """Verbose logging (per-session lines)."""
    proc_user: str | None = None
    """User coturn drops privileges to after binding (``proc-user``)."""
    proc_group: str | None = None
    """Group coturn drops privileges to after binding (``proc-group``)."""

    @field_validator("*", mode="before")
    @classmethod
    def _values_not_booleans_or_numbers(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        field = info.field_name or ""
        if cls.model_fields[field].annotation is bool:
            return value
        return _plain_value(field, value, address=field in _ADDRESS_FIELDS)

    @field_validator(*_PATTERNED_FIELDS)
    @classmethod
    def _matches_its_pattern(cls, value: str, info: pydantic.ValidationInfo) -> str:
        pattern, shape = _PATTERNED_FIELDS[info.field_name or ""]
        if not pattern.match(value):
            raise ValueError(shape)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_port > self.max_port:
            raise ValueError(f"min_port {self.min_port} is above max_port {self.max_port}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.total_quota and self.total_quota > self.relay_port_count:
            raise ValueError(
                f"total_quota {self.total_quota} exceeds the relay port range {self.min_port}-"
                f"{self.max_port} ({self.relay_port_count} ports): widen the range or lower the quota"
            )
        return self

    @property
    def relay_port_count(self) -> int:
        return self.max_port - self.min_port + 1

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def version(self) -> tuple[int, ...]:
        return version_tuple(self.coturn_version)

    @classmethod
    def loopback(
        cls,
        *,
        port: int,
        min_port: int,
        max_port: int,
        secret_file: str | os.PathLike[str],
        host: str = "127.0.0.1",
        realm: str = "callops.test",
        allow_loopback_peers: bool = False,
        tls_port: int | None = None,
        tls_cert_file: str | os.PathLike[str] | None = None,
        tls_key_file: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> TurnDeployment:
        """A relay on one loopback address: for tests, ``callops call``'s embedded coturn, the NAT lab.

        ``allow_loopback_peers`` adds ``allow-loopback-peers`` and ``allowed-peer-ip=<host>``: coturn
        rejects loopback peers whatever allowed-peer-ip says, so relayed calls between two
        endpoints on one machine need both. ``callops turn lint`` flags it, as it should.
        """
        address = ipaddress.ip_address(host)
        if tls_cert_file is not None and tls_port is None:
            raise UsageError(
                "a loopback relay with TLS needs its own tls_port", hint="pass tls_port=free_port()"
            )
        fields: dict[str, Any] = {
            "realm": realm,
            "listening_ips": [address],
            "relay_ips": [address],
            "listening_port": port,
            "tls_listening_port": tls_port or port,
            "min_port": min_port,
            "max_port": max_port,
            "secret_file": Path(secret_file),
            "user_quota": 0,
            "total_quota": max_port - min_port + 1,
            "allow_loopback_peers": allow_loopback_peers,
            "allowed_peer_ips": [ipaddress.ip_network(host)] if allow_loopback_peers else [],
            "log_file": None,
            "tls_cert_file": Path(tls_cert_file) if tls_cert_file else None,
            "tls_key_file": Path(tls_key_file) if tls_key_file else None,
        }
        fields.update(overrides)
        return cls.model_validate(fields)


def _ip_range(network: IPNetwork) -> str:
    if network.num_addresses == 1:
        return str(network.network_address)
    return f"{network.network_address}-{network.broadcast_address}"


def _addresses(d: TurnDeployment) -> list[ConfLine]:
    return [
        "# Listening and relay addresses",
        *[("listening-ip", str(ip)) for ip in d.listening_ips],
        *[("relay-ip", str(ip)) for ip in d.relay_ips],
        *[("external-ip", ext.coturn_value) for ext in d.external_ips],
        ("listening-port", str(d.listening_port)),
        ("tls-listening-port", str(d.tls_listening_port)),
        ("min-port", str(d.min_port)),
        ("max-port", str(d.max_port)),
    ]


def _authentication(d: TurnDeployment, secret: Secret | None) -> list[ConfLine]:
    lines: list[ConfLine] = [
        "# Authentication: TURN REST API credentials (HMAC of a shared secret)",
        ("use-auth-secret", None),
    ]
    if secret is not None:
        lines.append(("static-auth-secret", secret.reveal()))
    else:
        lines.append(
            f"# static-auth-secret is appended at install time from {d.secret_file} "
            "(coturn cannot read it from a file)"
        )
    lines += [("realm", d.realm), ("fingerprint", None)]
    if d.stale_nonce:
        lines.append(("stale-nonce", str(d.stale_nonce)))
    return lines


def _tls(d: TurnDeployment) -> list[ConfLine]:
    lines: list[ConfLine] = ["# TLS"]
    if d.tls_enabled:
        lines += [("cert", str(d.tls_cert_file)), ("pkey", str(d.tls_key_file))]
        if d.cipher_list:
            lines.append(("cipher-list", d.cipher_list))
    else:
        lines += [("no-tls", None), ("no-dtls", None)]
    if DIRECTIVES["no-tlsv1"].available(d.version):
        lines += [("no-tlsv1", None), ("no-tlsv1_1", None)]
    else:
        lines.append("# TLS 1.0/1.1 are off by default from coturn 4.7 (never add tlsv1/tlsv1_1)")
    return lines


def _hardening(d: TurnDeployment) -> list[ConfLine]:
    lines: list[ConfLine] = ["# Hardening"]
    if d.version < CLI_OFF_BY_DEFAULT_IN:
        lines.append(("no-cli", None))
    else:
        lines.append("# the telnet CLI is off by default from coturn 4.10 (never add 'cli')")
    lines.append(("no-multicast-peers", None))
    flags = {"no-software-attribute": d.no_software_attribute, "allow-loopback-peers": d.allow_loopback_peers}
    return lines + [(flag, None) for flag, on in flags.items() if on]


def _quotas(d: TurnDeployment) -> list[ConfLine]:
    # quotas are left out at 0 (unlimited), bandwidth limits when unset
    values = {
        "user-quota": d.user_quota or None,
        "total-quota": d.total_quota or None,
        "max-bps": d.max_bps,
        "bps-capacity": d.bps_capacity,
    }
    return ["# Quotas and bandwidth"] + [(key, str(v)) for key, v in values.items() if v is not None]


def _peers(d: TurnDeployment) -> list[ConfLine]:
    lines: list[ConfLine] = ["# Peers: deny every IANA special-purpose range (callops.turn.ranges)"]
    for special in denied_by_default():
        lines += [
            f"# {special.network}: {special.name} ({special.rfc})",
            ("denied-peer-ip", special.coturn_range),
        ]
    lines += [("denied-peer-ip", _ip_range(net)) for net in d.denied_peer_ips]
    if d.allowed_peer_ips:
        lines.append("# explicitly approved peer ranges")
        lines += [("allowed-peer-ip", _ip_range(net)) for net in d.allowed_peer_ips]
    return lines


def _operations(d: TurnDeployment) -> list[ConfLine]:
    """Metrics, logging and privileges: each section only when something is set."""
    lines: list[ConfLine] = []
    if d.prometheus:
        lines += ["", "# Metrics", ("prometheus", None), ("prometheus-port", str(d.prometheus_port))]
    if d.log_file is not None or d.verbose:
        lines += ["", "# Logging"]
        if d.log_file == "syslog":
            lines.append(("syslog", None))
        elif d.log_file is not None:
            lines += [("log-file", d.log_file), ("simple-log", None)]
        if d.verbose:
            lines.append(("verbose", None))
    users = [("proc-user", d.proc_user), ("proc-group", d.proc_group)]
    if any(name for _, name in users):
        lines += ["", "# Privileges"] + [(key, name) for key, name in users if name]
    return lines


def turnserver_conf_lines(deployment: TurnDeployment, *, secret: Secret | None = None) -> list[ConfLine]:
    """The lines of ``turnserver.conf`` for ``deployment``: comments, and directives as ``(key, value)``."""
    d = deployment
    sections = [_addresses(d), _authentication(d, secret), _tls(d), _hardening(d), _quotas(d), _peers(d)]
    lines: list[ConfLine] = [
        "# turnserver.conf rendered by callops -- edit callops.yaml and render again.",
        f"{META_PREFIX}coturn-version={d.coturn_version}",
        f"{META_PREFIX}secret-file={d.secret_file}",
    ]
    for section in sections:
        lines += ["", *section]
    return lines + _operations(d)


def render_turnserver_conf(deployment: TurnDeployment, *, secret: Secret | None = None) -> str:
    """``turnserver.conf`` for ``deployment``, written with :data:`~callops.turn.directives.DIRECTIVES`.

    Without ``secret`` the ``static-auth-secret`` line is left out (see the module docstring);
    with it the literal is included -- write such a text only with :func:`write_turnserver_conf`.
    A value that could not be read back as written (a path with a line break, ...) is a
    :class:`~callops.errors.UsageError`.
    """
    try:
        return render_lines(turnserver_conf_lines(deployment, secret=secret), version=deployment.version)
    except ValueError as exc:
        raise UsageError(
            f"cannot render turnserver.conf: {exc}", hint="fix the value in callops.yaml"
        ) from None


def write_private_file(path: str | os.PathLike[str], text: str, *, mode: int = 0o600) -> Path:
    """Write ``text`` atomically into a file created with ``mode`` (never world-readable)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_turnserver_conf(
    deployment: TurnDeployment, path: str | os.PathLike[str], *, secret: Secret | None = None
) -> Path:
    """Render ``deployment`` into ``path`` (0600) with the shared secret from ``secret`` or its file."""
    if secret is None:
        from callops.secret import read_secret_file

        secret = read_secret_file(deployment.secret_file, what="TURN shared secret")
    if any(ch in secret.reveal() for ch in "\r\n"):
        raise UsageError("the TURN shared secret spans several lines", hint="write it on one line")
    return write_private_file(path, render_turnserver_conf(deployment, secret=secret))


__all__ = [
    "CLI_OFF_BY_DEFAULT_IN",
    "DEFAULT_SECRET_FILE",
    "META_PREFIX",
    "TLS_SWITCHES_CHANGED_IN",
    "CallopsConfig",
    "ExternalIp",
    "TurnDeployment",
    "config_error_from",
    "load_config",
    "parse_config",
    "render_turnserver_conf",
    "turnserver_conf_lines",
    "version_tuple",
    "write_private_file",
    "write_turnserver_conf",
]


_MOVED_TO_CONFIG_FILE = frozenset({"CallopsConfig", "config_error_from", "load_config", "parse_config"})


def __getattr__(name: str) -> object:
    """The names that moved to :mod:`callops.config_file`, for the importers not updated yet."""
    if name in _MOVED_TO_CONFIG_FILE:
        from callops import config_file

        return getattr(config_file, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
