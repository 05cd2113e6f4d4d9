"""``callops turn lint``: security and reliability problems in a ``turnserver.conf``.

:func:`parse_turnserver_conf` reads real coturn config files: ``#`` comments, ``key=value``,
``key value``, bare flags, repeated keys, a leading ``--`` and quoted values. :func:`lint_conf`
runs every rule over the parsed directives and returns :class:`Finding` objects -- id, severity
(``error``/``warning``/``info``), line, what is wrong, why it matters and the fix. Pure: the only
I/O is the optional ``stat`` of the secret file, passed in as its mode.

The ``# callops: coturn-version=...`` and ``# callops: secret-file=...`` comments of a config
rendered by callops tell the lint the target version (option names changed in coturn 4.7 and 4.10)
and where the shared secret is appended from at install time.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from callops.errors import UsageError
from callops.turn.config import CLI_OFF_BY_DEFAULT_IN, META_PREFIX, TLS_SWITCHES_CHANGED_IN, version_tuple
from callops.turn.ranges import (
    METADATA_ADDRESS,
    RangeSet,
    SpecialRange,
    denied_by_default,
    is_private_address,
    parse_coturn_range,
)

Severity = Literal["error", "warning", "info"]

#: coturn's short options, as they may appear with a leading ``-`` in a config or command line
_SHORT = {
    "a": "lt-cred-mech",
    "z": "no-auth",
    "r": "realm",
    "u": "user",
    "L": "listening-ip",
    "E": "relay-ip",
    "X": "external-ip",
    "p": "listening-port",
    "f": "fingerprint",
    "q": "user-quota",
    "Q": "total-quota",
}
#: passwords found in coturn's example config and in tutorials, and the usual weak ones
_COMMON_PASSWORDS = frozenset(
    {
        "",
        "qwerty",
        "password",
        "passw0rd",
        "secret",
        "turn",
        "turnserver",
        "coturn",
        "admin",
        "test",
        "123456",
        "12345678",
        "changeme",
        "youhavetoberealistic",
        "north",
        "1234",
        "pass",
        "default",
    }
)
#: coturn's example config ships this hash of "qwerty" as the CLI password
_EXAMPLE_CLI_HASH = "$5$79a316b350311570$81df9cfb9af7f5e5a76eada31e7097b663a0670f99a3c07ded3f1c8e59c5658a"
MIN_PASSWORD_LENGTH = 12
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class Directive:
    """One option line of a ``turnserver.conf``."""

    key: str
    value: str | None
    line: int


@dataclass
class TurnserverConf:
    """A parsed ``turnserver.conf``: its directives in order plus the ``# callops:`` metadata."""

    directives: list[Directive] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def all(self, key: str) -> list[Directive]:
        return [d for d in self.directives if d.key == key]

    def first(self, *keys: str) -> Directive | None:
        return next((d for d in self.directives if d.key in keys), None)

    def has(self, *keys: str) -> bool:
        return self.first(*keys) is not None

    def value(self, key: str) -> str | None:
        found = self.all(key)
        return found[-1].value if found else None


#: ``key=value``, ``key = value`` or ``key value``; a line without a separator is a bare flag
_LINE_RE = re.compile(r"^([^\s=]+)\s*(?:=|\s)\s*(.*)$")


def _normalise_key(raw: str) -> str:
    key = raw.strip()
    if key.startswith("--"):
        return key[2:]
    if key.startswith("-") and len(key) == 2:
        return _SHORT.get(key[1], key[1:])
    return key


def parse_turnserver_conf(text: str) -> TurnserverConf:
    """Parse the text of a ``turnserver.conf`` (the same line grammar coturn's own reader accepts)."""
    conf = TurnserverConf()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(META_PREFIX.strip()):
                body = line[len(META_PREFIX.strip()) :].strip()
                key, sep, value = body.partition("=")
                if sep:
                    conf.meta[key.strip()] = value.strip()
            continue
        match = _LINE_RE.match(line)
        if match:
            key, value = match.group(1), match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            conf.directives.append(Directive(_normalise_key(key), value, number))
        else:
            conf.directives.append(Directive(_normalise_key(line), None, number))
    return conf


class Finding(BaseModel):
    """One problem the lint found."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    id: str
    """Stable identifier of the rule, e.g. ``no-auth``."""
    severity: Severity
    """``error`` (exit code 1), ``warning`` or ``info``."""
    line: int | None
    """Line of the offending directive; ``None`` when something is missing."""
    message: str
    """What is wrong."""
    why: str
    """Why it matters."""
    fix: str
    """How to fix it."""


class LintReport(BaseModel):
    """The ``--json`` output of ``callops turn lint``."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    file: str
    """The file that was linted."""
    coturn_version: str
    """The coturn version the rules assumed."""
    findings: list[Finding]
    """Every finding, errors first, then by line."""
    errors: int
    warnings: int
    infos: int

    @property
    def ok(self) -> bool:
        return self.errors == 0


@dataclass
class LintContext:
    """What the rules look at: the parsed config plus facts from outside it."""

    conf: TurnserverConf
    coturn_version: tuple[int, ...]
    #: the secret file the shared secret comes from, if known, and its permission bits
    secret_file: str | None = None
    secret_file_mode: int | None = None
    #: permission bits of the linted file itself (to check a literal secret in it)
    conf_mode: int | None = None


Rule = Callable[[LintContext], Iterable[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def _line(d: Directive | None) -> int | None:
    return d.line if d else None


@rule
def _authentication(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    no_auth = c.first("no-auth")
    if no_auth:
        yield Finding(
            id="no-auth",
            severity="error",
            line=no_auth.line,
            message="no-auth: anyone can allocate relays without credentials",
            why="an open relay lets anyone on the internet tunnel traffic through your network and bill",
            fix="remove no-auth; use use-auth-secret with static-auth-secret (TURN REST API credentials)",
        )
    elif not c.has("use-auth-secret", "lt-cred-mech"):
        yield Finding(
            id="no-auth",
            severity="error",
            line=None,
            message="no authentication mechanism (neither use-auth-secret nor lt-cred-mech)",
            why="without a credential mechanism coturn may accept anonymous allocations",
            fix="add use-auth-secret and a static-auth-secret",
        )
    if c.has("use-auth-secret") and c.has("lt-cred-mech"):
        yield Finding(
            id="lt-cred-mech-with-auth-secret",
            severity="warning",
            line=_line(c.first("lt-cred-mech")),
            message="both lt-cred-mech and use-auth-secret are set",
            why="two credential schemes at once: static users keep working after the shared secret rotates,"
            " and it is unclear which one a client used",
            fix="keep use-auth-secret only (TURN REST API), remove lt-cred-mech and static user= lines",
        )
    # A config rendered by callops names the secret file the installer appends the secret from.
    appended_later = ctx.secret_file is not None
    if (
        c.has("use-auth-secret")
        and not c.has("static-auth-secret")
        and not _has_secret_db(c)
        and not appended_later
    ):
        yield Finding(
            id="auth-secret-missing",
            severity="error",
            line=_line(c.first("use-auth-secret")),
            message="use-auth-secret without static-auth-secret or a user database",
            why="every REST API credential is rejected: no call can allocate a relay",
            fix="add static-auth-secret=<secret> (in a file readable only by coturn)",
        )
    for d in c.all("static-auth-secret"):
        if d.value is not None and len(d.value) < MIN_SECRET_LENGTH:
            yield Finding(
                id="weak-auth-secret",
                severity="warning",
                line=d.line,
                message=f"static-auth-secret is {len(d.value)} characters long",
                why="a short shared secret can be brute-forced from one captured credential",
                fix=f"use at least {MIN_SECRET_LENGTH} random characters (openssl rand -hex 32)",
            )


def _has_secret_db(c: TurnserverConf) -> bool:
    return c.has("userdb", "db", "b", "psql-userdb", "mysql-userdb", "mongo-userdb", "redis-userdb", "N")


@rule
def _realm(ctx: LintContext) -> Iterable[Finding]:
    if not ctx.conf.value("realm"):
        yield Finding(
            id="missing-realm",
            severity="error",
            line=None,
            message="no realm",
            why="long-term and REST API credentials are computed per realm; without one clients fail"
            " authentication or all land in an empty default realm",
            fix="add realm=<your TURN host name>, e.g. realm=turn.example.com",
        )


@rule
def _loopback(ctx: LintContext) -> Iterable[Finding]:
    d = ctx.conf.first("allow-loopback-peers")
    if d:
        yield Finding(
            id="allow-loopback-peers",
            severity="error",
            line=d.line,
            message="allow-loopback-peers: clients may relay to 127.0.0.0/8 and ::1",
            why="services listening on the relay host's loopback (admin ports, databases, the CLI) become"
            " reachable by anyone with TURN credentials",
            fix="remove allow-loopback-peers (only tests on one machine need it)",
        )


def _denied_and_allowed(c: TurnserverConf) -> tuple[RangeSet, RangeSet, list[Finding]]:
    # coturn takes only ``ip`` and ``first-last`` in denied-/allowed-peer-ip. A CIDR value is
    # "Wrong address format": 4.6 logs it and ignores the line, leaving the range open; releases
    # with coturn PR #1872 refuse to start. Either way it is not applied.
    denied, allowed, bad = RangeSet(), RangeSet(), []
    for key, target in (("denied-peer-ip", denied), ("allowed-peer-ip", allowed)):
        for d in c.all(key):
            value = d.value or ""
            if "/" in value:
                bad.append(
                    Finding(
                        id="bad-peer-range",
                        severity="error",
                        line=d.line,
                        message=f"{key}={value} uses CIDR, which coturn does not understand here",
                        why="coturn 4.6 logs 'Wrong address format' and ignores the line, so the range stays"
                        " open; newer coturn refuses to start",
                        fix="write the range as first-last, e.g. 10.0.0.0-10.255.255.255",
                    )
                )
                continue
            try:
                target.add(*parse_coturn_range(value))
            except ValueError:
                bad.append(
                    Finding(
                        id="bad-peer-range",
                        severity="error",
                        line=d.line,
                        message=f"{key}={value} is not an address or range",
                        why="coturn ignores it, so the range you meant is not applied",
                        fix="write ip or first-last, e.g. 10.0.0.0-10.255.255.255",
                    )
                )
    return denied, allowed, bad


_SEVERITY_BY_KIND: dict[str, Severity] = {
    "loopback": "error",
    "private": "error",
    "link-local": "error",
    "shared": "error",
    "internal": "error",
    "multicast": "error",
    "reserved": "warning",
}


@rule
def _peer_ranges(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    denied, allowed, bad = _denied_and_allowed(c)
    yield from bad
    multicast_flag = c.has("no-multicast-peers")
    multicast_reported = False
    loopback_builtin = not c.has("allow-loopback-peers")
    for special in denied_by_default():
        if special.kind == "multicast" and multicast_flag:
            continue
        if special.kind == "loopback" and loopback_builtin:
            continue  # coturn refuses loopback peers on its own unless allow-loopback-peers
        if denied.covers(special.network):
            if allowed.overlaps(special.network):
                yield _approved(special, c)
            continue
        if special.kind == "multicast":
            if multicast_reported:
                continue
            multicast_reported = True
            yield Finding(
                id="multicast-peers-allowed",
                severity="error",
                line=None,
                message="multicast peers (224.0.0.0/4, ff00::/8) are allowed",
                why="a relay that sends to multicast groups can flood the relay's network segment",
                fix="add no-multicast-peers",
            )
            continue
        if special.kind == "loopback":
            continue  # reported by the allow-loopback-peers rule
        yield _not_denied(special)
    if not denied.covers(ipaddress.ip_network(METADATA_ADDRESS)):
        yield Finding(
            id="metadata-not-denied",
            severity="error",
            line=None,
            message=f"the cloud metadata address {METADATA_ADDRESS} is not denied",
            why="on a cloud VM a TURN client can read instance credentials from the metadata service",
            fix="add denied-peer-ip=169.254.0.0-169.254.255.255",
        )


def _not_denied(special: SpecialRange) -> Finding:
    severity = _SEVERITY_BY_KIND[special.kind]
    why = {
        "private": "clients can relay into the relay's own LAN; and when a client advertises a private host"
        " candidate coturn tries to send there, fails with 'Network is unreachable' and later"
        " ChannelBind fails (438, then 400), so relayed ICE never completes",
        "link-local": "clients can reach link-local services of the relay host, including cloud metadata",
        "shared": "clients can reach the carrier-grade NAT segment the relay sits in",
        "internal": "the range embeds or aliases internal addresses and bypasses the other rules",
    }.get(special.kind, "no legitimate peer lives there; relaying to it only serves scans and abuse")
    return Finding(
        id="peer-range-not-denied",
        severity=severity,
        line=None,
        message=f"{special.network} ({special.name}, {special.rfc}) is not denied",
        why=why,
        fix=f"add denied-peer-ip={special.coturn_range}",
    )


def _overlaps(value: str, special: SpecialRange) -> bool:
    try:
        return RangeSet([parse_coturn_range(value)]).overlaps(special.network)
    except ValueError:
        return False  # reported as bad-peer-range


def _approved(special: SpecialRange, c: TurnserverConf) -> Finding:
    line = next(
        (d.line for d in c.all("allowed-peer-ip") if d.value and _overlaps(d.value, special)),
        None,
    )
    return Finding(
        id="peer-range-allowed",
        severity="info",
        line=line,
        message=f"part of {special.network} ({special.name}) is explicitly allowed",
        why="allowed-peer-ip overrides denied-peer-ip; fine when the range is approved on purpose",
        fix="keep only the approved addresses in allowed-peer-ip",
    )


@rule
def _cli(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    cli_off_by_default = ctx.coturn_version >= CLI_OFF_BY_DEFAULT_IN
    enabled = c.has("cli") if cli_off_by_default else not c.has("no-cli")
    if not enabled:
        return
    password = c.first("cli-password")
    if password is None or not password.value:
        # coturn >= 4.5.1.2 refuses to start the telnet CLI without a password.
        yield Finding(
            id="cli-enabled",
            severity="warning",
            line=_line(c.first("cli")),
            message="the telnet CLI is not turned off (no no-cli)",
            why="coturn only keeps it closed because no cli-password is set; setting one later opens an"
            " admin shell on port 5766",
            fix="add no-cli" if not cli_off_by_default else "remove cli",
        )
    elif (
        password.value in _COMMON_PASSWORDS
        or password.value == _EXAMPLE_CLI_HASH
        or (not password.value.startswith("$5$") and len(password.value) < MIN_PASSWORD_LENGTH)
    ):
        yield Finding(
            id="cli-weak-password",
            severity="error",
            line=password.line,
            message="the telnet CLI is enabled with a default or weak cli-password",
            why="the CLI lists and cancels sessions and changes settings; a guessable password gives it away",
            fix="add no-cli (recommended), or set a long random cli-password hashed with turnadmin -P",
        )
    else:
        yield Finding(
            id="cli-enabled",
            severity="warning",
            line=password.line,
            message="the telnet CLI is enabled",
            why="an admin shell on the relay is attack surface you rarely need",
            fix="add no-cli" if not cli_off_by_default else "remove cli",
        )
    cli_ip = c.value("cli-ip")
    if cli_ip and _is_address(cli_ip) and not ipaddress.ip_address(cli_ip.split("%")[0]).is_loopback:
        yield Finding(
            id="cli-exposed",
            severity="error",
            line=_line(c.first("cli-ip")),
            message=f"the telnet CLI listens on {cli_ip}, not on loopback",
            why="the CLI is plain telnet: password and session data cross the network in clear text",
            fix="add no-cli, or cli-ip=127.0.0.1",
        )


def _tls_enabled(c: TurnserverConf) -> bool:
    return c.has("cert") and not (c.has("no-tls") and c.has("no-dtls"))


@rule
def _tls_versions(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    for key in ("tlsv1", "tlsv1_1"):
        d = c.first(key)
        if d:
            yield Finding(
                id="old-tls-enabled",
                severity="error",
                line=d.line,
                message=f"{key}: {'TLS 1.0' if key == 'tlsv1' else 'TLS 1.1'} is enabled",
                why="TLS 1.0 and 1.1 are deprecated (RFC 8996) and weaken the TLS transport",
                fix=f"remove {key}",
            )
    if ctx.coturn_version >= TLS_SWITCHES_CHANGED_IN:
        for key in ("no-tlsv1", "no-tlsv1_1"):
            d = c.first(key)
            if d:
                yield Finding(
                    id="removed-option",
                    severity="warning",
                    line=d.line,
                    message=f"{key} is not an option of coturn >= 4.7",
                    why="coturn reports 'Bad configuration format' for it; TLS 1.0/1.1 are off by default",
                    fix=f"remove {key}",
                )
        return
    if not _tls_enabled(c):
        return
    missing = [key for key in ("no-tlsv1", "no-tlsv1_1") if not c.has(key)]
    if missing:
        yield Finding(
            id="old-tls-enabled",
            severity="error",
            line=_line(c.first("cert")),
            message=f"TLS is on and {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing",
            why="coturn < 4.7 accepts TLS 1.0 and 1.1 unless told not to; both are deprecated (RFC 8996)",
            fix="add " + " and ".join(missing),
        )


def _weak_password(user: str, password: str) -> bool:
    return (
        password.lower() in _COMMON_PASSWORDS
        or password.lower() == user.lower()
        or (not password.startswith("0x") and len(password) < MIN_PASSWORD_LENGTH)
    )


@rule
def _static_users(ctx: LintContext) -> Iterable[Finding]:
    for d in ctx.conf.all("user"):
        user, _, password = (d.value or "").partition(":")
        if _weak_password(user, password):
            yield Finding(
                id="weak-static-user",
                severity="error",
                line=d.line,
                message=f"static user {user!r} has a weak password",
                why="static TURN users never expire: a guessed password is a permanent free relay",
                fix=f"remove user= and use TURN REST API credentials, or a random password of at least"
                f" {MIN_PASSWORD_LENGTH} characters (or a turnadmin -k key)",
            )


@rule
def _secret_permissions(ctx: LintContext) -> Iterable[Finding]:
    if ctx.secret_file is not None and ctx.secret_file_mode is not None:
        mode = ctx.secret_file_mode
        if mode & stat.S_IROTH:
            yield Finding(
                id="secret-file-readable",
                severity="error",
                line=None,
                message=f"the secret file {ctx.secret_file} is readable by others (mode {mode & 0o777:04o})",
                why="any local user can mint TURN credentials with the shared secret",
                fix=f"chmod 0600 {ctx.secret_file} and chown it to coturn's user",
            )
        elif mode & stat.S_IRGRP:
            yield Finding(
                id="secret-file-readable",
                severity="warning",
                line=None,
                message=f"the secret file {ctx.secret_file} is group-readable (mode {mode & 0o777:04o})",
                why="every member of the group can mint TURN credentials",
                fix=f"chmod 0600 {ctx.secret_file}",
            )
    literal = ctx.conf.first("static-auth-secret", "cli-password", "user")
    if literal and ctx.conf_mode is not None and ctx.conf_mode & stat.S_IROTH:
        yield Finding(
            id="secret-file-readable",
            severity="error",
            line=literal.line,
            message=f"this file holds a secret ({literal.key}=) and is readable by others"
            f" (mode {ctx.conf_mode & 0o777:04o})",
            why="any local user can read the secret or password and use the relay (or its CLI)",
            fix="chmod 0640 (owner root, group turnserver) or 0600",
        )


def _int(value: str | None) -> int | None:
    """An option's integer value, or ``None`` when missing or invalid (the values rule reports it)."""
    return int(value) if value is not None and _DIGITS_RE.match(value) else None


#: options whose value is one IP address (coturn accepts a ``%scope`` suffix on IPv6)
_ADDRESS_KEYS = frozenset({"listening-ip", "relay-ip", "cli-ip", "aux-server-ip"})
#: options whose value is a port
_PORT_KEYS = frozenset(
    {
        "listening-port",
        "tls-listening-port",
        "alt-listening-port",
        "alt-tls-listening-port",
        "min-port",
        "max-port",
        "cli-port",
        "prometheus-port",
    }
)
#: options whose value is a non-negative count, rate or duration
_COUNT_KEYS = frozenset(
    {
        "user-quota",
        "total-quota",
        "max-bps",
        "bps-capacity",
        "stale-nonce",
        "max-allocate-lifetime",
        "channel-lifetime",
        "permission-lifetime",
        "relay-threads",
        "cli-max-output-sessions",
        "max-allocate-timeout",
    }
)
_DIGITS_RE = re.compile(r"^[0-9]{1,19}$")


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _invalid(d: Directive, why_value: str, fix: str) -> Finding:
    shown = d.value if d.value is None or len(d.value) <= 64 else d.value[:61] + "..."
    return Finding(
        id="invalid-value",
        severity="error",
        line=d.line,
        message=f"{d.key}={shown}: {why_value}" if shown is not None else f"{d.key} has no value",
        why="coturn reports 'Bad configuration format' or refuses to start, or silently uses its default"
        " -- either way the setting you meant is not applied",
        fix=fix,
    )


def _value_problem(d: Directive) -> tuple[str, str] | None:
    """``(what is wrong, fix)`` for a directive whose value coturn cannot use, else ``None``."""
    value = d.value
    if d.key in _ADDRESS_KEYS:
        if not value or not _is_address(value):
            return "not an IP address", f"write one IPv4 or IPv6 address, e.g. {d.key}=192.0.2.10"
    elif d.key == "external-ip":
        public, _, private = (value or "").partition("/")
        if not value or not _is_address(public) or (private and not _is_address(private)):
            return "not PUBLIC or PUBLIC/PRIVATE addresses", "write e.g. external-ip=203.0.113.5/10.0.0.5"
    elif d.key in _PORT_KEYS:
        if not value or not _DIGITS_RE.match(value) or not 1 <= int(value) <= 65535:
            return "not a port (1-65535)", f"write a port number, e.g. {d.key}=3478"
    elif d.key in _COUNT_KEYS and (not value or not _DIGITS_RE.match(value)):
        return "not a non-negative integer", f"write a whole number, e.g. {d.key}=0 (0 means unlimited)"
    return None


@rule
def _values(ctx: LintContext) -> Iterable[Finding]:
    for d in ctx.conf.directives:
        problem = _value_problem(d)
        if problem is not None:
            yield _invalid(d, *problem)


@rule
def _relay_ports(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    low = _int(c.value("min-port")) or 49152
    high = _int(c.value("max-port")) or 65535
    if low > high:
        yield Finding(
            id="relay-port-range-too-small",
            severity="error",
            line=_line(c.first("min-port")),
            message=f"min-port {low} is above max-port {high}",
            why="no relay port can be allocated",
            fix="swap them or widen the range",
        )
        return
    count = high - low + 1
    capacity = _int(c.value("total-quota"))
    if capacity and capacity > count:
        yield Finding(
            id="relay-port-range-too-small",
            severity="error",
            line=_line(c.first("min-port", "max-port", "total-quota")),
            message=f"relay ports {low}-{high} ({count}) are fewer than total-quota={capacity}",
            why="every allocation holds one relay port: allocations beyond the range fail with 508"
            " (insufficient capacity) long before the declared capacity",
            fix=f"widen min-port/max-port to at least {capacity} ports, or lower total-quota",
        )


@rule
def _nat(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    if c.has("external-ip"):
        return
    for d in c.all("listening-ip") + c.all("relay-ip"):
        try:
            private = is_private_address((d.value or "").split("%")[0])
        except ValueError:
            continue
        if private:
            yield Finding(
                id="private-address-without-external-ip",
                severity="warning",
                line=d.line,
                message=f"{d.key}={d.value} is a private address and there is no external-ip",
                why="coturn hands out relay candidates with the private address; remote peers cannot reach"
                " them and relayed calls fail",
                fix="add external-ip=<public>/<private> for the 1:1 NAT in front of the relay",
            )
            return


@rule
def _dangerous_flags(ctx: LintContext) -> Iterable[Finding]:
    d = ctx.conf.first("server-relay")
    if d:
        yield Finding(
            id="server-relay",
            severity="error",
            line=d.line,
            message="server-relay disables the peer permission checks",
            why="anyone can send to relay ports without a permission: the relay becomes an open reflector",
            fix="remove server-relay",
        )


def lint_conf(
    text: str,
    *,
    coturn_version: str | None = None,
    secret_file: str | None = None,
    secret_file_mode: int | None = None,
    conf_mode: int | None = None,
) -> list[Finding]:
    """Every finding for the config ``text``: errors first, then warnings, then infos, by line."""
    conf = parse_turnserver_conf(text)
    version = coturn_version or conf.meta.get("coturn-version") or "4.6.1"
    try:
        version_key = version_tuple(version)
    except ValueError:
        raise UsageError(f"coturn version {version!r} is not like 4.6.1") from None
    ctx = LintContext(
        conf=conf,
        coturn_version=version_key,
        secret_file=secret_file or conf.meta.get("secret-file"),
        secret_file_mode=secret_file_mode,
        conf_mode=conf_mode,
    )
    findings = [finding for check in RULES for finding in check(ctx)]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (order[f.severity], f.line or 0, f.id))


def lint_file(
    path: str | os.PathLike[str], *, coturn_version: str | None = None, secret_file: str | None = None
) -> LintReport:
    """Lint a file on disk, checking the permissions of it and of its secret file."""
    from callops.files import CONFIG_CAP, read_user_file

    p = Path(path)
    # coturn reads bytes: a stray Latin-1 comment must not stop the lint, so undecodable bytes
    # are replaced rather than refused.
    text = read_user_file(p, what="turnserver.conf", cap=CONFIG_CAP).decode("utf-8", errors="replace")
    try:
        conf_mode = p.stat().st_mode
    except OSError:
        conf_mode = None
    conf = parse_turnserver_conf(text)
    secret = secret_file or conf.meta.get("secret-file")
    secret_mode: int | None = None
    if secret:
        try:
            secret_mode = Path(secret).stat().st_mode
        except (OSError, ValueError):  # missing, unreadable, or a path with a NUL byte
            secret_mode = None
    version = coturn_version or conf.meta.get("coturn-version") or "4.6.1"
    findings = lint_conf(
        text, coturn_version=version, secret_file=secret, secret_file_mode=secret_mode, conf_mode=conf_mode
    )
    return LintReport(
        file=str(p),
        coturn_version=version,
        findings=findings,
        errors=sum(f.severity == "error" for f in findings),
        warnings=sum(f.severity == "warning" for f in findings),
        infos=sum(f.severity == "info" for f in findings),
    )


__all__ = [
    "RULES",
    "Directive",
    "Finding",
    "LintContext",
    "LintReport",
    "Severity",
    "TurnserverConf",
    "lint_conf",
    "lint_file",
    "parse_turnserver_conf",
]
