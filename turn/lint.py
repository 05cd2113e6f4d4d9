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
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from callops.errors import UsageError
from callops.turn.config import CLI_OFF_BY_DEFAULT_IN, version_tuple
from callops.turn.directives import (
    DIRECTIVES,
    TLS_SWITCHES_CHANGED_IN,
    Directive,
    TurnserverConf,
    ValueKind,
    Version,
    integer,
    is_address,
    parse_turnserver_conf,
    value_problem,
)
from callops.turn.ranges import (
    METADATA_ADDRESS,
    RangeSet,
    SpecialRange,
    denied_by_default,
    is_private_address,
    parse_coturn_range,
)

Severity = Literal["error", "warning", "info"]

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


# --- the rule tables: a finding for a directive that is there, or for one that is missing ---------


@dataclass(frozen=True)
class FindingText:
    """What a rule says: its finding without the line. ``{name}`` fields in ``message`` and ``fix``
    are filled in per finding (:meth:`at`)."""

    id: str
    severity: Severity
    message: str
    why: str
    fix: str

    def at(self, line: int | None, **values: object) -> Finding:
        """The finding at ``line`` (``None`` when something is missing), ``values`` filled in."""
        return Finding(
            id=self.id,
            severity=self.severity,
            line=line,
            message=self.message.format(**values),
            why=self.why,
            fix=self.fix.format(**values),
        )


@dataclass(frozen=True, kw_only=True)
class PresenceRule(FindingText):
    """A finding for directive ``key`` when it is there; the finding points at its first line."""

    key: str
    #: it applies only when one of these is there too
    with_any: tuple[str, ...] = ()
    #: it applies only to coturn versions from this one on
    since: Version | None = None

    def check(self, ctx: LintContext) -> Finding | None:
        d = ctx.conf.first(self.key)
        if d is None or (self.since is not None and ctx.coturn_version < self.since):
            return None
        if self.with_any and not ctx.conf.has(*self.with_any):
            return None
        return self.at(d.line)


@dataclass(frozen=True, kw_only=True)
class AbsenceRule(FindingText):
    """A finding (without a line) when none of ``keys`` is set: a flag that is there, or a
    directive whose last value is not empty."""

    keys: tuple[str, ...]

    def check(self, ctx: LintContext) -> Finding | None:
        if any(_is_set(ctx.conf, key) for key in self.keys):
            return None
        return self.at(None)


def _is_set(c: TurnserverConf, key: str) -> bool:
    spec = DIRECTIVES.get(key)
    return c.has(key) if spec is not None and spec.kind is ValueKind.FLAG else bool(c.value(key))


_OLD_TLS_WHY = "TLS 1.0 and 1.1 are deprecated (RFC 8996) and weaken the TLS transport"
_REMOVED_TLS_SWITCH_WHY = "coturn reports 'Bad configuration format' for it; TLS 1.0/1.1 are off by default"

#: the rules that only look at whether one directive is there
PRESENCE_RULES: tuple[PresenceRule, ...] = (
    PresenceRule(
        "no-auth",
        "error",
        "no-auth: anyone can allocate relays without credentials",
        "an open relay lets anyone on the internet tunnel traffic through your network and bill",
        "remove no-auth; use use-auth-secret with static-auth-secret (TURN REST API credentials)",
        key="no-auth",
    ),
    PresenceRule(
        "lt-cred-mech-with-auth-secret",
        "warning",
        "both lt-cred-mech and use-auth-secret are set",
        "two credential schemes at once: static users keep working after the shared secret rotates,"
        " and it is unclear which one a client used",
        "keep use-auth-secret only (TURN REST API), remove lt-cred-mech and static user= lines",
        key="lt-cred-mech",
        with_any=("use-auth-secret",),
    ),
    PresenceRule(
        "allow-loopback-peers",
        "error",
        "allow-loopback-peers: clients may relay to 127.0.0.0/8 and ::1",
        "services listening on the relay host's loopback (admin ports, databases, the CLI) become"
        " reachable by anyone with TURN credentials",
        "remove allow-loopback-peers (only tests on one machine need it)",
        key="allow-loopback-peers",
    ),
    *(
        PresenceRule(
            "old-tls-enabled", "error", f"{key}: TLS {tls} is enabled", _OLD_TLS_WHY, f"remove {key}", key=key
        )
        for key, tls in (("tlsv1", "1.0"), ("tlsv1_1", "1.1"))
    ),
    *(
        PresenceRule(
            "removed-option",
            "warning",
            f"{key} is not an option of coturn >= {'.'.join(map(str, TLS_SWITCHES_CHANGED_IN))}",
            _REMOVED_TLS_SWITCH_WHY,
            f"remove {key}",
            key=key,
            since=TLS_SWITCHES_CHANGED_IN,
        )
        for key in ("no-tlsv1", "no-tlsv1_1")
    ),
    PresenceRule(
        "server-relay",
        "error",
        "server-relay disables the peer permission checks",
        "anyone can send to relay ports without a permission: the relay becomes an open reflector",
        "remove server-relay",
        key="server-relay",
    ),
)

#: the rules that only look at whether directives are missing
ABSENCE_RULES: tuple[AbsenceRule, ...] = (
    AbsenceRule(
        "no-auth",
        "error",
        "no authentication mechanism (neither use-auth-secret nor lt-cred-mech)",
        "without a credential mechanism coturn may accept anonymous allocations",
        "add use-auth-secret and a static-auth-secret",
        keys=("no-auth", "use-auth-secret", "lt-cred-mech"),
    ),
    AbsenceRule(
        "missing-realm",
        "error",
        "no realm",
        "long-term and REST API credentials are computed per realm; without one clients fail"
        " authentication or all land in an empty default realm",
        "add realm=<your TURN host name>, e.g. realm=turn.example.com",
        keys=("realm",),
    ),
)


@rule
def _table_rules(ctx: LintContext) -> Iterable[Finding]:
    """The one place where :data:`PRESENCE_RULES` and :data:`ABSENCE_RULES` are applied."""
    table: tuple[PresenceRule | AbsenceRule, ...] = (*PRESENCE_RULES, *ABSENCE_RULES)
    for row in table:
        finding = row.check(ctx)
        if finding is not None:
            yield finding


# --- what the other rules say: their findings without the line, filled in where they are found ---


_AUTH_SECRET_MISSING = FindingText(
    "auth-secret-missing",
    "error",
    "use-auth-secret without static-auth-secret or a user database",
    why="every REST API credential is rejected: no call can allocate a relay",
    fix="add static-auth-secret=<secret> (in a file readable only by coturn)",
)
_WEAK_AUTH_SECRET = FindingText(
    "weak-auth-secret",
    "warning",
    "static-auth-secret is {length} characters long",
    why="a short shared secret can be brute-forced from one captured credential",
    fix=f"use at least {MIN_SECRET_LENGTH} random characters (openssl rand -hex 32)",
)
_CIDR_PEER_RANGE = FindingText(
    "bad-peer-range",
    "error",
    "{key}={value} uses CIDR, which coturn does not understand here",
    why="coturn 4.6 logs 'Wrong address format' and ignores the line, so the range stays"
    " open; newer coturn refuses to start",
    fix="write the range as first-last, e.g. 10.0.0.0-10.255.255.255",
)
_BAD_PEER_RANGE = FindingText(
    "bad-peer-range",
    "error",
    "{key}={value} is not an address or range",
    why="coturn ignores it, so the range you meant is not applied",
    fix="write ip or first-last, e.g. 10.0.0.0-10.255.255.255",
)
_SEVERITY_BY_KIND: dict[str, Severity] = {
    "loopback": "error",
    "private": "error",
    "link-local": "error",
    "shared": "error",
    "internal": "error",
    "multicast": "error",
    "reserved": "warning",
}
_MULTICAST_PEERS_ALLOWED = FindingText(
    "multicast-peers-allowed",
    "error",
    "multicast peers (224.0.0.0/4, ff00::/8) are allowed",
    why="a relay that sends to multicast groups can flood the relay's network segment",
    fix="add no-multicast-peers",
)
_METADATA_NOT_DENIED = FindingText(
    "metadata-not-denied",
    "error",
    f"the cloud metadata address {METADATA_ADDRESS} is not denied",
    why="on a cloud VM a TURN client can read instance credentials from the metadata service",
    fix="add denied-peer-ip=169.254.0.0-169.254.255.255",
)
_NO_LEGITIMATE_PEER = "no legitimate peer lives there; relaying to it only serves scans and abuse"
_NOT_DENIED_WHY = {
    "private": "clients can relay into the relay's own LAN; and when a client advertises a private host"
    " candidate coturn tries to send there, fails with 'Network is unreachable' and later"
    " ChannelBind fails (438, then 400), so relayed ICE never completes",
    "link-local": "clients can reach link-local services of the relay host, including cloud metadata",
    "shared": "clients can reach the carrier-grade NAT segment the relay sits in",
    "internal": "the range embeds or aliases internal addresses and bypasses the other rules",
}
#: per kind of special-purpose range: the finding when it is not denied
_NOT_DENIED: dict[str, FindingText] = {
    kind: FindingText(
        "peer-range-not-denied",
        severity,
        "{network} ({name}, {rfc}) is not denied",
        why=_NOT_DENIED_WHY.get(kind, _NO_LEGITIMATE_PEER),
        fix="add denied-peer-ip={coturn_range}",
    )
    for kind, severity in _SEVERITY_BY_KIND.items()
}
_PEER_RANGE_ALLOWED = FindingText(
    "peer-range-allowed",
    "info",
    "part of {network} ({name}) is explicitly allowed",
    why="allowed-peer-ip overrides denied-peer-ip; fine when the range is approved on purpose",
    fix="keep only the approved addresses in allowed-peer-ip",
)
#: ``{turn_off}``: how to turn the CLI off, ``add no-cli`` (or ``remove cli`` where it is off by default)
_CLI_NOT_OFF = FindingText(
    "cli-enabled",
    "warning",
    "the telnet CLI is not turned off (no no-cli)",
    why="coturn only keeps it closed because no cli-password is set; setting one later opens an"
    " admin shell on port 5766",
    fix="{turn_off}",
)
_CLI_WEAK_PASSWORD = FindingText(
    "cli-weak-password",
    "error",
    "the telnet CLI is enabled with a default or weak cli-password",
    why="the CLI lists and cancels sessions and changes settings; a guessable password gives it away",
    fix="add no-cli (recommended), or set a long random cli-password hashed with turnadmin -P",
)
_CLI_ENABLED = FindingText(
    "cli-enabled",
    "warning",
    "the telnet CLI is enabled",
    why="an admin shell on the relay is attack surface you rarely need",
    fix="{turn_off}",
)
_CLI_EXPOSED = FindingText(
    "cli-exposed",
    "error",
    "the telnet CLI listens on {cli_ip}, not on loopback",
    why="the CLI is plain telnet: password and session data cross the network in clear text",
    fix="add no-cli, or cli-ip=127.0.0.1",
)
_TLS_SWITCHES_MISSING = FindingText(
    "old-tls-enabled",
    "error",
    "TLS is on and {missing} {verb} missing",
    why="coturn < 4.7 accepts TLS 1.0 and 1.1 unless told not to; both are deprecated (RFC 8996)",
    fix="add {missing}",
)
_WEAK_STATIC_USER = FindingText(
    "weak-static-user",
    "error",
    "static user {user!r} has a weak password",
    why="static TURN users never expire: a guessed password is a permanent free relay",
    fix=f"remove user= and use TURN REST API credentials, or a random password of at least"
    f" {MIN_PASSWORD_LENGTH} characters (or a turnadmin -k key)",
)
_SECRET_FILE_WORLD_READABLE = FindingText(
    "secret-file-readable",
    "error",
    "the secret file {file} is readable by others (mode {mode:04o})",
    why="any local user can mint TURN credentials with the shared secret",
    fix="chmod 0600 {file} and chown it to coturn's user",
)
_SECRET_FILE_GROUP_READABLE = FindingText(
    "secret-file-readable",
    "warning",
    "the secret file {file} is group-readable (mode {mode:04o})",
    why="every member of the group can mint TURN credentials",
    fix="chmod 0600 {file}",
)
_CONF_WITH_SECRET_READABLE = FindingText(
    "secret-file-readable",
    "error",
    "this file holds a secret ({key}=) and is readable by others (mode {mode:04o})",
    why="any local user can read the secret or password and use the relay (or its CLI)",
    fix="chmod 0640 (owner root, group turnserver) or 0600",
)
_INVALID_WHY = (
    "coturn reports 'Bad configuration format' or refuses to start, or silently uses its default"
    " -- either way the setting you meant is not applied"
)
_INVALID_VALUE = FindingText("invalid-value", "error", "{key}={shown}: {why_value}", _INVALID_WHY, "{fix}")
_NO_VALUE = FindingText("invalid-value", "error", "{key} has no value", _INVALID_WHY, "{fix}")
_PORTS_REVERSED = FindingText(
    "relay-port-range-too-small",
    "error",
    "min-port {low} is above max-port {high}",
    why="no relay port can be allocated",
    fix="swap them or widen the range",
)
_PORTS_BELOW_QUOTA = FindingText(
    "relay-port-range-too-small",
    "error",
    "relay ports {low}-{high} ({count}) are fewer than total-quota={capacity}",
    why="every allocation holds one relay port: allocations beyond the range fail with 508"
    " (insufficient capacity) long before the declared capacity",
    fix="widen min-port/max-port to at least {capacity} ports, or lower total-quota",
)
_PRIVATE_WITHOUT_EXTERNAL_IP = FindingText(
    "private-address-without-external-ip",
    "warning",
    "{key}={value} is a private address and there is no external-ip",
    why="coturn hands out relay candidates with the private address; remote peers cannot reach"
    " them and relayed calls fail",
    fix="add external-ip=<public>/<private> for the 1:1 NAT in front of the relay",
)


@rule
def _auth_secret(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    # A config rendered by callops names the secret file the installer appends the secret from.
    appended_later = ctx.secret_file is not None
    if (
        c.has("use-auth-secret")
        and not c.has("static-auth-secret")
        and not _has_secret_db(c)
        and not appended_later
    ):
        yield _AUTH_SECRET_MISSING.at(_line(c.first("use-auth-secret")))
    for d in c.all("static-auth-secret"):
        if d.value is not None and len(d.value) < MIN_SECRET_LENGTH:
            yield _WEAK_AUTH_SECRET.at(d.line, length=len(d.value))


def _has_secret_db(c: TurnserverConf) -> bool:
    return c.has("userdb", "db", "b", "psql-userdb", "mysql-userdb", "mongo-userdb", "redis-userdb", "N")


def _denied_and_allowed(c: TurnserverConf) -> tuple[RangeSet, RangeSet, list[Finding]]:
    # coturn takes only ``ip`` and ``first-last`` in denied-/allowed-peer-ip. A CIDR value is
    # "Wrong address format": 4.6 logs it and ignores the line, leaving the range open; releases
    # with coturn PR #1872 refuse to start. Either way it is not applied.
    denied, allowed, bad = RangeSet(), RangeSet(), []
    for key, target in (("denied-peer-ip", denied), ("allowed-peer-ip", allowed)):
        for d in c.all(key):
            value = d.value or ""
            if "/" in value:
                bad.append(_CIDR_PEER_RANGE.at(d.line, key=key, value=value))
                continue
            try:
                target.add(*parse_coturn_range(value))
            except ValueError:
                bad.append(_BAD_PEER_RANGE.at(d.line, key=key, value=value))
    return denied, allowed, bad


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
            yield _MULTICAST_PEERS_ALLOWED.at(None)
            continue
        if special.kind == "loopback":
            continue  # reported by the allow-loopback-peers rule
        yield _not_denied(special)
    if not denied.covers(ipaddress.ip_network(METADATA_ADDRESS)):
        yield _METADATA_NOT_DENIED.at(None)


def _not_denied(special: SpecialRange) -> Finding:
    return _NOT_DENIED[special.kind].at(
        None, network=special.network, name=special.name, rfc=special.rfc, coturn_range=special.coturn_range
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
    return _PEER_RANGE_ALLOWED.at(line, network=special.network, name=special.name)


@rule
def _cli(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    cli_off_by_default = ctx.coturn_version >= CLI_OFF_BY_DEFAULT_IN
    enabled = c.has("cli") if cli_off_by_default else not c.has("no-cli")
    if not enabled:
        return
    turn_off = "add no-cli" if not cli_off_by_default else "remove cli"
    password = c.first("cli-password")
    if password is None or not password.value:
        # coturn >= 4.5.1.2 refuses to start the telnet CLI without a password.
        yield _CLI_NOT_OFF.at(_line(c.first("cli")), turn_off=turn_off)
    elif (
        password.value in _COMMON_PASSWORDS
        or password.value == _EXAMPLE_CLI_HASH
        or (not password.value.startswith("$5$") and len(password.value) < MIN_PASSWORD_LENGTH)
    ):
        yield _CLI_WEAK_PASSWORD.at(password.line)
    else:
        yield _CLI_ENABLED.at(password.line, turn_off=turn_off)
    cli_ip = c.value("cli-ip")
    if cli_ip and is_address(cli_ip) and not ipaddress.ip_address(cli_ip.split("%")[0]).is_loopback:
        yield _CLI_EXPOSED.at(_line(c.first("cli-ip")), cli_ip=cli_ip)


def _tls_enabled(c: TurnserverConf) -> bool:
    return c.has("cert") and not (c.has("no-tls") and c.has("no-dtls"))


@rule
def _tls_switches_missing(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    if ctx.coturn_version >= TLS_SWITCHES_CHANGED_IN:
        return  # the no-tlsv1 switches are gone (the removed-option row), TLS 1.0/1.1 are off
    if not _tls_enabled(c):
        return
    missing = [key for key in ("no-tlsv1", "no-tlsv1_1") if not c.has(key)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        yield _TLS_SWITCHES_MISSING.at(_line(c.first("cert")), missing=" and ".join(missing), verb=verb)


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
            yield _WEAK_STATIC_USER.at(d.line, user=user)


@rule
def _secret_permissions(ctx: LintContext) -> Iterable[Finding]:
    if ctx.secret_file is not None and ctx.secret_file_mode is not None:
        mode = ctx.secret_file_mode
        if mode & stat.S_IROTH:
            yield _SECRET_FILE_WORLD_READABLE.at(None, file=ctx.secret_file, mode=mode & 0o777)
        elif mode & stat.S_IRGRP:
            yield _SECRET_FILE_GROUP_READABLE.at(None, file=ctx.secret_file, mode=mode & 0o777)
    literal = ctx.conf.first("static-auth-secret", "cli-password", "user")
    if literal and ctx.conf_mode is not None and ctx.conf_mode & stat.S_IROTH:
        yield _CONF_WITH_SECRET_READABLE.at(literal.line, key=literal.key, mode=ctx.conf_mode & 0o777)


def _invalid(d: Directive, why_value: str, fix: str) -> Finding:
    if d.value is None:
        return _NO_VALUE.at(d.line, key=d.key, fix=fix)
    shown = d.value if len(d.value) <= 64 else d.value[:61] + "..."
    return _INVALID_VALUE.at(d.line, key=d.key, shown=shown, why_value=why_value, fix=fix)


@rule
def _values(ctx: LintContext) -> Iterable[Finding]:
    for d in ctx.conf.directives:
        problem = value_problem(d.key, d.value)
        if problem is not None:
            yield _invalid(d, *problem)


@rule
def _relay_ports(ctx: LintContext) -> Iterable[Finding]:
    c = ctx.conf
    low = integer(c.value("min-port")) or 49152
    high = integer(c.value("max-port")) or 65535
    if low > high:
        yield _PORTS_REVERSED.at(_line(c.first("min-port")), low=low, high=high)
        return
    count = high - low + 1
    capacity = integer(c.value("total-quota"))
    if capacity and capacity > count:
        line = _line(c.first("min-port", "max-port", "total-quota"))
        yield _PORTS_BELOW_QUOTA.at(line, low=low, high=high, count=count, capacity=capacity)


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
            yield _PRIVATE_WITHOUT_EXTERNAL_IP.at(d.line, key=d.key, value=d.value)
            return


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
    "ABSENCE_RULES",
    "PRESENCE_RULES",
    "RULES",
    "AbsenceRule",
    "Directive",
    "Finding",
    "FindingText",
    "LintContext",
    "LintReport",
    "PresenceRule",
    "Severity",
    "TurnserverConf",
    "lint_conf",
    "lint_file",
    "parse_turnserver_conf",
]
