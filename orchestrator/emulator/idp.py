"""The emulator's Domain API (CSDS) and identity provider (IDP), sans-I/O.

Routes, as LivePerson documents them publicly (``shared/protocol/messaging-window-api.md``,
"Domains and identity"):

- ``GET /api/account/{account}/service/{service}/baseURI.json?version=1.0`` -> 200
  ``{"service","account","baseURI"}``;
- ``GET /api/account/{account}/service/baseURI.json?version=1.0`` -> 200
  ``{"baseURIs":[{"service","account","baseURI"}, ...]}``;
- ``POST /api/account/{account}/signup`` -> 200 ``{"jwt": "..."}``: a fresh unauthenticated
  consumer (``sub`` a new UUID, ``aud`` ``acc:{account}``, ``iss``, ``iat``, ``exp`` after
  :attr:`IdentityConfig.signup_lifetime` seconds), HS256 with the emulator's secret (or the dev
  key in dev mode), so the emulator's consumer websocket accepts it until it expires (then 4401).

Every service's ``baseURI`` is the emulator itself: the ``host:port`` the client addressed (its
``Host`` header), so the same emulator answers for loopback and for a network namespace.
Errors use the control API's body ``{"code","title","details"}``: 404 for an unknown account
(when :attr:`IdentityConfig.accounts` is set) or a service the account lacks, 405, 400 for a
``version`` other than 1.0.

:func:`foreign_audience` is the websocket's check behind close code 4407: a token whose ``aud``
names another account is an identity that is invalid for this account.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callops.orchestrator.emulator.auth import mint_jwt
from callops.secret import Secret

#: Close code for a token whose identity is not valid for this account (protocol reference: 4407).
CLOSE_IDENTITY_INVALID = 4407
#: The services a consumer looks up, plus ``asyncMessaging`` (public samples list both).
DEFAULT_SERVICES = ("asyncMessagingEnt", "asyncMessaging", "idp")

_ACCOUNT = r"(?P<account>[^/]+)"
_ONE_SERVICE = re.compile(rf"^/api/account/{_ACCOUNT}/service/(?P<service>[^/]+)/baseURI\.json$")
_ALL_SERVICES = re.compile(rf"^/api/account/{_ACCOUNT}/service/baseURI\.json$")
_SIGNUP = re.compile(rf"^/api/account/{_ACCOUNT}/signup/?$")
_AUTHORITY = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


class IdentityConfig(BaseModel):
    """What the emulator's CSDS and IDP serve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: seconds a signup JWT is valid (short: test renewal; 0: already expired, test refusal)
    signup_lifetime: float = Field(default=3600.0, ge=0)
    #: accounts that exist; None: every account id exists
    accounts: frozenset[str] | None = None
    #: services every account lists (leave one out to test a CSDS answer without it)
    services: tuple[str, ...] = DEFAULT_SERVICES


@dataclass(slots=True, repr=False)
class IdentityAnswer:
    """An HTTP status and a JSON body."""

    status: int
    body: Any

    def __repr__(self) -> str:
        return f"IdentityAnswer({self.status})"


def _error(status: int, details: str) -> IdentityAnswer:
    return IdentityAnswer(status, {"code": status, "title": HTTPStatus(status).phrase, "details": details})


def authority(host_header: str | None, fallback: str) -> str:
    """The ``host:port`` the client addressed (its ``Host`` header when well-formed, else ``fallback``)."""
    value = (host_header or "").strip()
    return value if value and _AUTHORITY.match(value) else fallback


def handle_identity(
    method: str,
    path: str,
    query: Mapping[str, str],
    *,
    host: str,
    config: IdentityConfig,
    secret: Secret | None,
    now: float,
) -> IdentityAnswer | None:
    """Answer one CSDS or IDP request; None when ``path`` is not under ``/api/`` (not ours).

    ``host`` is the emulator's ``host:port`` as the client addressed it (see :func:`authority`).
    """
    if not path.startswith("/api/"):
        return None
    one, every, signup = _ONE_SERVICE.match(path), _ALL_SERVICES.match(path), _SIGNUP.match(path)
    match = one or every or signup
    if match is None:
        return _error(404, f"no route {method} {path}")
    account = match.group("account")
    if signup is not None:
        if method != "POST":
            return _error(405, f"{method} not allowed on {path}; use POST")
    elif method != "GET":
        return _error(405, f"{method} not allowed on {path}; use GET")
    if config.accounts is not None and account not in config.accounts:
        return _error(404, f"account {account!r} not found")
    if signup is not None:
        token = mint_jwt(
            str(uuid.uuid4()),
            secret,
            now=now,
            lifetime=config.signup_lifetime,
            extra={"aud": f"acc:{account}", "iss": f"http://{host}/idp"},
        )
        return IdentityAnswer(200, {"jwt": token})
    version = query.get("version")
    if version is not None and version != "1.0":
        return _error(400, f"version {version!r} is not supported; use version=1.0")
    if one is not None:
        service = one.group("service")
        if service not in config.services:
            return _error(404, f"service {service!r} not found for account {account!r}")
        return IdentityAnswer(200, {"service": service, "account": account, "baseURI": host})
    entries = [{"service": s, "account": account, "baseURI": host} for s in config.services]
    return IdentityAnswer(200, {"baseURIs": entries})


def foreign_audience(claims: Mapping[str, Any], account: str) -> str | None:
    """Why a token is not an identity of ``account`` (its ``aud`` names only other accounts), or None.

    Tokens without an ``acc:`` audience (``mint_jwt`` without ``extra``) are not checked.
    """
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    accounts = [a[4:] for a in audiences if isinstance(a, str) and a.startswith("acc:")]
    if accounts and account not in accounts:
        return f"4407: identity is for another account (aud acc:{accounts[0]})"
    return None


__all__ = [
    "CLOSE_IDENTITY_INVALID",
    "DEFAULT_SERVICES",
    "IdentityAnswer",
    "IdentityConfig",
    "authority",
    "foreign_audience",
    "handle_identity",
]
