"""STUN/TURN server URIs (RFC 7064, RFC 7065): parse and print.

``parse_uri("turns:turn.example.com:443?transport=tcp")`` gives a :class:`ServerUri`; ``str()`` of it is
the URI again. A pure function, like aiortc's ``parse_stun_turn_uri``, but strict: every error names the
part of the URI that is wrong.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from callops.errors import UsageError

Scheme = Literal["stun", "stuns", "turn", "turns"]
Transport = Literal["udp", "tcp"]

#: Default ports (RFC 7064 section 3.2, RFC 7065 section 3.2).
DEFAULT_PORT = 3478
DEFAULT_SECURE_PORT = 5349

_SCHEMES: tuple[Scheme, ...] = ("stun", "stuns", "turn", "turns")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")


class ServerUri(BaseModel):
    """One STUN or TURN server as given in an ICE server list."""

    model_config = ConfigDict(frozen=True)

    #: ``stun``, ``stuns``, ``turn`` or ``turns``
    scheme: Scheme
    #: host name or IP address (IPv6 without brackets)
    host: str
    port: int
    #: transport to the server: ``tcp`` for ``stuns:``/``turns:`` (TLS runs over TCP)
    transport: Transport
    #: the URI named its transport (``?transport=``); kept so that ``str()`` gives the URI back
    transport_given: bool = False

    @property
    def secure(self) -> bool:
        """TLS to the server (``stuns:``/``turns:``)."""
        return self.scheme in ("stuns", "turns")

    @property
    def is_turn(self) -> bool:
        return self.scheme in ("turn", "turns")

    @property
    def label(self) -> str:
        """How errors name this server: ``TURN/TLS 203.0.113.10:443``."""
        kind = "TURN" if self.is_turn else "STUN"
        proto = "TLS" if self.secure else self.transport.upper()
        return f"{kind}/{proto} {self.hostport}"

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        text = f"{self.scheme}:{self.hostport}"
        if self.is_turn and (self.transport_given or self.transport != ("tcp" if self.secure else "udp")):
            text += f"?transport={self.transport}"
        return text


def parse_uri(text: str) -> ServerUri:
    """Parse ``stun:``/``stuns:``/``turn:``/``turns:`` URIs; :class:`UsageError` names the bad part."""
    uri = text.strip()
    scheme, sep, rest = uri.partition(":")
    if not sep:
        raise UsageError(f"server URI {text!r} has no scheme", hint="write e.g. turn:turn.example.com:3478")
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        raise UsageError(
            f"server URI {text!r}: unknown scheme {scheme!r}", hint="use stun:, stuns:, turn: or turns:"
        )
    if rest.startswith("//"):
        raise UsageError(f"server URI {text!r}: no '//' after the scheme", hint=f"write {scheme}:host:port")
    hostport, _, query = rest.partition("?")
    secure = scheme in ("stuns", "turns")
    transport: Transport = "tcp" if secure else "udp"
    if query:
        if scheme not in ("turn", "turns"):
            raise UsageError(f"server URI {text!r}: {scheme}: URIs take no query ({query!r})")
        key, eq, value = query.partition("=")
        if key != "transport" or not eq:
            raise UsageError(f"server URI {text!r}: unknown query {query!r}", hint="only ?transport=udp|tcp")
        value = value.lower()
        if value not in ("udp", "tcp"):
            raise UsageError(f"server URI {text!r}: transport {value!r} is not udp or tcp")
        if secure and value == "udp":
            raise UsageError(
                f"server URI {text!r}: turns: runs TLS over TCP; DTLS (transport=udp) is not supported"
            )
        transport = "tcp" if value == "tcp" else "udp"
    host, port = _split_hostport(hostport, text)
    if port is None:
        port = DEFAULT_SECURE_PORT if secure else DEFAULT_PORT
    return ServerUri(
        scheme=scheme,
        host=host,
        port=port,
        transport=transport,
        transport_given=bool(query),
    )


def _split_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    if not hostport:
        raise UsageError(f"server URI {text!r} has no host")
    port_text: str | None
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise UsageError(f"server URI {text!r}: IPv6 host {hostport!r} lacks its closing ']'")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"server URI {text!r}: host [{host}] is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise UsageError(f"server URI {text!r}: unexpected {after!r} after the host")
        port_text = after[1:] if after else None
    elif hostport.count(":") > 1:
        raise UsageError(
            f"server URI {text!r}: an IPv6 host must be in brackets, e.g. turn:[2001:db8::1]:3478"
        )
    else:
        host, colon, port_part = hostport.partition(":")
        port_text = port_part if colon else None
        if not _HOSTNAME_RE.match(host):
            raise UsageError(f"server URI {text!r}: host {host!r} is not a host name or IPv4 address")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"server URI {text!r}: port {port_text!r} is not a number in 1-65535")
    return host, int(port_text)


__all__ = ["DEFAULT_PORT", "DEFAULT_SECURE_PORT", "Scheme", "ServerUri", "Transport", "parse_uri"]
