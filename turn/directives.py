"""``turnserver.conf`` as data: one table of coturn's directives, the line codec built on it.

:data:`DIRECTIVES` names every directive callops renders or checks: its value type
(:class:`ValueKind`), whether it may be repeated, its short command-line option and the coturn
versions that have it. The one table drives both directions:

- :func:`format_directive` writes one line for the renderer (:mod:`callops.turn.config`) and
  refuses what could not be read back the same -- a value of the wrong type, a value that would
  parse differently (a line break, surrounding blanks or quotes), a directive the target coturn
  version does not have;
- :func:`parse_turnserver_conf` reads any ``turnserver.conf`` for the lint (:mod:`callops.turn.lint`):
  ``#`` comments, ``key=value``, ``key value``, bare flags, repeated keys, a leading ``--`` or a
  short option and quoted values -- the grammar of coturn's own reader;
- :func:`value_problem` says what is wrong with a value, for both.

So ``parse_turnserver_conf(render(lines))`` gives back the rendered directives, in order (see
``tests/turn/test_directives.py``). Directives that are not in the table are read and kept; only
their values go unchecked.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from callops.turn.ranges import parse_coturn_range

#: the ``# callops: key=value`` comments a rendered config carries for the lint
META_PREFIX = "# callops: "

Version = tuple[int, ...]


class ValueKind(StrEnum):
    """What a directive's value is."""

    FLAG = "flag"
    """No value: the directive is on when it is there."""
    TEXT = "text"
    """Any text on one line (a name, a path, a secret)."""
    QUOTED = "quoted"
    """Text that callops writes in double quotes (it may contain ``:`` and ``!``)."""
    ADDRESS = "address"
    """One IP address; IPv6 may carry a ``%scope``."""
    EXTERNAL_IP = "external-ip"
    """``PUBLIC`` or ``PUBLIC/PRIVATE`` addresses of a 1:1 NAT."""
    PORT = "port"
    """A port, 1-65535."""
    COUNT = "count"
    """A non-negative integer: a count, a rate or a duration (0 often means unlimited)."""
    PEER_RANGE = "peer-range"
    """``ip`` or ``first-last`` (coturn does not take CIDR here)."""


@dataclass(frozen=True, slots=True)
class DirectiveSpec:
    """One row of :data:`DIRECTIVES`."""

    name: str
    kind: ValueKind
    repeatable: bool = False
    #: the one-letter command-line option, as it may appear with a leading ``-``
    short: str | None = None
    #: the first coturn version that has it (``None``: all we know of)
    since: Version | None = None
    #: the first coturn version that no longer has it (``None``: still there)
    until: Version | None = None

    def available(self, version: Version) -> bool:
        """Whether coturn ``version`` has this directive."""
        return (self.since is None or version >= self.since) and (self.until is None or version < self.until)


_F, _T, _Q = ValueKind.FLAG, ValueKind.TEXT, ValueKind.QUOTED
_A, _X, _P, _C, _R = (
    ValueKind.ADDRESS,
    ValueKind.EXTERNAL_IP,
    ValueKind.PORT,
    ValueKind.COUNT,
    ValueKind.PEER_RANGE,
)
#: coturn 4.7 turned TLS 1.0/1.1 off by default and dropped the ``no-tlsv1*`` switches (PRs #1617, #1693)
TLS_SWITCHES_CHANGED_IN: Version = (4, 7)

#: name -> spec, for every directive callops renders or checks
DIRECTIVES: dict[str, DirectiveSpec] = {
    spec.name: spec
    for spec in (
        # listening and relay addresses
        DirectiveSpec("listening-ip", _A, repeatable=True, short="L"),
        DirectiveSpec("relay-ip", _A, repeatable=True, short="E"),
        DirectiveSpec("external-ip", _X, repeatable=True, short="X"),
        DirectiveSpec("aux-server-ip", _A, repeatable=True),
        DirectiveSpec("listening-port", _P, short="p"),
        DirectiveSpec("tls-listening-port", _P),
        DirectiveSpec("alt-listening-port", _P),
        DirectiveSpec("alt-tls-listening-port", _P),
        DirectiveSpec("min-port", _P),
        DirectiveSpec("max-port", _P),
        # authentication
        DirectiveSpec("use-auth-secret", _F),
        DirectiveSpec("static-auth-secret", _T, repeatable=True),
        DirectiveSpec("lt-cred-mech", _F, short="a"),
        DirectiveSpec("no-auth", _F, short="z"),
        DirectiveSpec("user", _T, repeatable=True, short="u"),
        DirectiveSpec("realm", _T, short="r"),
        DirectiveSpec("fingerprint", _F, short="f"),
        DirectiveSpec("stale-nonce", _C),
        # TLS
        DirectiveSpec("cert", _T),
        DirectiveSpec("pkey", _T),
        DirectiveSpec("cipher-list", _Q),
        DirectiveSpec("no-tls", _F),
        DirectiveSpec("no-dtls", _F),
        DirectiveSpec("no-tlsv1", _F, until=TLS_SWITCHES_CHANGED_IN),
        DirectiveSpec("no-tlsv1_1", _F, until=TLS_SWITCHES_CHANGED_IN),
        DirectiveSpec("tlsv1", _F, since=TLS_SWITCHES_CHANGED_IN),
        DirectiveSpec("tlsv1_1", _F, since=TLS_SWITCHES_CHANGED_IN),
        # hardening and the telnet CLI
        DirectiveSpec("no-cli", _F),
        DirectiveSpec("cli", _F),
        DirectiveSpec("cli-ip", _A),
        DirectiveSpec("cli-port", _P),
        DirectiveSpec("cli-password", _T),
        DirectiveSpec("cli-max-output-sessions", _C),
        DirectiveSpec("no-multicast-peers", _F),
        DirectiveSpec("no-software-attribute", _F),
        DirectiveSpec("allow-loopback-peers", _F),
        DirectiveSpec("server-relay", _F),
        # quotas, bandwidth, lifetimes
        DirectiveSpec("user-quota", _C, short="q"),
        DirectiveSpec("total-quota", _C, short="Q"),
        DirectiveSpec("max-bps", _C),
        DirectiveSpec("bps-capacity", _C),
        DirectiveSpec("max-allocate-lifetime", _C),
        DirectiveSpec("channel-lifetime", _C),
        DirectiveSpec("permission-lifetime", _C),
        DirectiveSpec("max-allocate-timeout", _C),
        DirectiveSpec("relay-threads", _C),
        # peers
        DirectiveSpec("denied-peer-ip", _R, repeatable=True),
        DirectiveSpec("allowed-peer-ip", _R, repeatable=True),
        # metrics, logging, privileges
        DirectiveSpec("prometheus", _F),
        DirectiveSpec("prometheus-port", _P),
        DirectiveSpec("syslog", _F),
        DirectiveSpec("log-file", _T),
        DirectiveSpec("simple-log", _F),
        DirectiveSpec("verbose", _F),
        DirectiveSpec("proc-user", _T),
        DirectiveSpec("proc-group", _T),
    )
}
#: short option letter -> directive name
SHORT_OPTIONS: dict[str, str] = {spec.short: spec.name for spec in DIRECTIVES.values() if spec.short}


# --- values -----------------------------------------------------------------------------------

_DIGITS_RE = re.compile(r"^[0-9]{1,19}$")


def is_address(value: str) -> bool:
    """An IP address, IPv6 with an optional ``%scope``."""
    try:
        ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return False
    return True


def integer(value: str | None) -> int | None:
    """A directive's integer value, or ``None`` when missing or not a plain non-negative integer."""
    return int(value) if value is not None and _DIGITS_RE.match(value) else None


def _address_problem(key: str, value: str) -> tuple[str, str] | None:
    if not value or not is_address(value):
        return "not an IP address", f"write one IPv4 or IPv6 address, e.g. {key}=192.0.2.10"
    return None


def _external_problem(key: str, value: str) -> tuple[str, str] | None:
    public, _, private = value.partition("/")
    if not value or not is_address(public) or (private and not is_address(private)):
        return "not PUBLIC or PUBLIC/PRIVATE addresses", "write e.g. external-ip=203.0.113.5/10.0.0.5"
    return None


def _port_problem(key: str, value: str) -> tuple[str, str] | None:
    port = integer(value)
    if port is None or not 1 <= port <= 65535:
        return "not a port (1-65535)", f"write a port number, e.g. {key}=3478"
    return None


def _count_problem(key: str, value: str) -> tuple[str, str] | None:
    if integer(value) is None:
        return "not a non-negative integer", f"write a whole number, e.g. {key}=0 (0 means unlimited)"
    return None


def _peer_range_problem(value: str) -> tuple[str, str] | None:
    # not in value_problem: the lint reports a bad peer range with its own finding (bad-peer-range)
    try:
        parse_coturn_range(value)
    except ValueError:
        return "not an address or range", "write ip or first-last"
    if "/" in value:
        return "CIDR, which coturn does not take here", "write first-last"
    return None


_CHECKS = {
    ValueKind.ADDRESS: _address_problem,
    ValueKind.EXTERNAL_IP: _external_problem,
    ValueKind.PORT: _port_problem,
    ValueKind.COUNT: _count_problem,
}


def value_problem(key: str, value: str | None) -> tuple[str, str] | None:
    """``(what is wrong, the fix)`` for a value coturn cannot use as ``key``'s, else ``None``.

    Only addresses, ports and counts are checked; a directive not in :data:`DIRECTIVES`, a flag
    and text pass.
    """
    spec = DIRECTIVES.get(key)
    check = _CHECKS.get(spec.kind) if spec is not None else None
    return check(key, value or "") if check is not None else None


# --- the parser ---------------------------------------------------------------------------------


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
_META = META_PREFIX.strip()


def _normalise_key(raw: str) -> str:
    key = raw.strip()
    if key.startswith("--"):
        return key[2:]
    if key.startswith("-") and len(key) == 2:
        return SHORT_OPTIONS.get(key[1], key[1:])
    return key


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_turnserver_conf(text: str) -> TurnserverConf:
    """Parse the text of a ``turnserver.conf`` (the same line grammar coturn's own reader accepts)."""
    conf = TurnserverConf()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith(_META):
                key, sep, value = line[len(_META) :].strip().partition("=")
                if sep:
                    conf.meta[key.strip()] = value.strip()
            continue
        match = _LINE_RE.match(line)
        if match:
            value = _unquoted(match.group(2).strip())
            conf.directives.append(Directive(_normalise_key(match.group(1)), value, number))
        else:
            conf.directives.append(Directive(_normalise_key(line), None, number))
    return conf


# --- the writer ---------------------------------------------------------------------------------


def _reads_back_as_written(value: str) -> bool:
    return (
        bool(value)
        and not any(ch in value for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        and value == value.strip()
        and _unquoted(value) == value
    )


def format_directive(key: str, value: str | None = None, *, version: Version | None = None) -> str:
    """The line for directive ``key`` (with ``value``), as :func:`parse_turnserver_conf` reads it back.

    :class:`ValueError` says why not: ``key`` is not in :data:`DIRECTIVES`, coturn ``version`` does
    not have it, a flag got a value or another directive none, the value is not of the directive's
    type or would not read back the same.
    """
    spec = DIRECTIVES.get(key)
    if spec is None:
        raise ValueError(f"{key} is not a directive callops knows (add it to DIRECTIVES)")
    if version is not None and not spec.available(version):
        raise ValueError(f"{key} is not an option of coturn {'.'.join(map(str, version))}")
    if spec.kind is ValueKind.FLAG:
        if value is not None:
            raise ValueError(f"{key} is a flag and takes no value")
        return key
    if value is None:
        raise ValueError(f"{key} needs a value")
    if spec.kind is ValueKind.QUOTED:
        if '"' in value or not _reads_back_as_written(value):
            raise ValueError(f"the {key} value cannot be written in double quotes on one line")
        return f'{key}="{value}"'
    if not _reads_back_as_written(value):
        # the value is not shown: it may be a secret
        raise ValueError(
            f"the {key} value would not read back the same (empty, a line break, blanks or quotes around it)"
        )
    problem = value_problem(key, value)
    if problem is None and spec.kind is ValueKind.PEER_RANGE:
        problem = _peer_range_problem(value)
    if problem is not None:
        raise ValueError(f"{key}={value[:64]}: {problem[0]}")
    return f"{key}={value}"


#: a line of a config being rendered: a comment or blank line as it is, or a ``(key, value)`` directive
ConfLine = str | tuple[str, str | None]


def render_lines(lines: list[ConfLine], *, version: Version | None = None) -> str:
    """The text of a config: comments as they are, directives by :func:`format_directive`.

    A directive that is not repeatable may appear once.
    """
    seen: set[str] = set()
    out = []
    for line in lines:
        if isinstance(line, str):
            out.append(line)
            continue
        key, value = line
        if key in seen and not DIRECTIVES[key].repeatable:
            raise ValueError(f"{key} may appear only once")
        seen.add(key)
        out.append(format_directive(key, value, version=version))
    return "\n".join(out) + "\n"


__all__ = [
    "DIRECTIVES",
    "META_PREFIX",
    "SHORT_OPTIONS",
    "TLS_SWITCHES_CHANGED_IN",
    "ConfLine",
    "Directive",
    "DirectiveSpec",
    "TurnserverConf",
    "ValueKind",
    "Version",
    "format_directive",
    "integer",
    "is_address",
    "parse_turnserver_conf",
    "render_lines",
    "value_problem",
]
