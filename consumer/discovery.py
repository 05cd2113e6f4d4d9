"""Domain discovery (CSDS): where an account's consumer websocket and identity provider live.

LivePerson's Domain API ("CSDS") maps an account and a service name to a host:

- one service: ``GET {csds}/api/account/{account}/service/{service}/baseURI.json?version=1.0``
  answers ``{"service": "...", "account": "...", "baseURI": "host"}``;
- every service: ``GET {csds}/api/account/{account}/service/baseURI.json?version=1.0`` answers
  ``{"baseURIs": [{"service", "account", "baseURI"}, ...]}``.

A consumer needs ``asyncMessagingEnt`` (the websocket domain) and ``idp`` (identity). The base is
``https://api.liveperson.net`` unless ``--csds`` names another (the emulator, a proxy). The hosts
found are used with the scheme of the CSDS base: ``https`` gives ``wss://`` and ``https://``,
``http`` (the emulator on loopback) gives ``ws://`` and ``http://``.

The pure part (:func:`csds_url`, :func:`parse_service`, :func:`parse_services`) turns requests
and answers into typed values; :class:`DomainDiscovery` fetches them with
:func:`callops.consumer.rest.request_json` and caches each account's answer for the run. The
account id appears in logs at INFO level and below only (``-v``), never in warnings or errors.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from callops.consumer.rest import DEFAULT_TIMEOUT, origin, request_json
from callops.errors import RemoteProtocolError, UsageError
from callops.validation import describe_validation_error

log = logging.getLogger("callops.consumer.discovery")

#: LivePerson's public Domain API.
DEFAULT_CSDS = "https://api.liveperson.net"
#: Environment variable that overrides the CSDS base (as ``--csds`` does).
CSDS_ENV = "CALLOPS_CSDS"
#: The consumer websocket's service name ("usually same as asyncMessaging").
ASYNC_MESSAGING_ENT = "asyncMessagingEnt"
#: The identity provider's service name (unauthenticated signup).
IDP = "idp"
#: What a consumer needs before it connects.
CONSUMER_SERVICES = (ASYNC_MESSAGING_ENT, IDP)


class BaseUri(BaseModel):
    """One CSDS entry: ``{"service", "account", "baseURI"}`` (unknown fields kept)."""

    model_config = ConfigDict(extra="allow")

    service: str = Field(min_length=1)
    account: str | None = None
    baseURI: str = Field(min_length=1)


class BaseUriList(BaseModel):
    """The all-services answer: ``{"baseURIs": [...]}``."""

    model_config = ConfigDict(extra="allow")

    baseURIs: list[BaseUri]


@dataclass(frozen=True, slots=True)
class ConsumerDomains:
    """The hosts one account's consumer uses, and the schemes to reach them."""

    account: str
    #: ``asyncMessagingEnt``: host[:port] of the consumer websocket
    async_messaging: str
    #: ``idp``: host[:port] of the identity provider
    idp: str
    #: ``https`` (LivePerson) or ``http`` (the emulator on loopback)
    scheme: str = "https"

    @property
    def websocket_scheme(self) -> str:
        return "wss" if self.scheme == "https" else "ws"

    @property
    def consumer_url(self) -> str:
        """The consumer websocket: ``wss://{asyncMessagingEnt}/ws_api/account/{account}/messaging/consumer?v=3``."""
        account = quote(self.account, safe="")
        return f"{self.websocket_scheme}://{self.async_messaging}/ws_api/account/{account}/messaging/consumer?v=3"

    @property
    def idp_url(self) -> str:
        """The identity provider's base: ``https://{idp}``."""
        return f"{self.scheme}://{self.idp}"


def csds_base(url: str | None) -> str:
    """The CSDS base URL (``scheme://host[:port]``), checked; None gives :data:`DEFAULT_CSDS`."""
    base = (url or DEFAULT_CSDS).strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"CSDS URL {base!r} must look like https://HOST or http://HOST:PORT",
            hint=f"omit --csds for LivePerson ({DEFAULT_CSDS}), or pass the emulator's http://127.0.0.1:PORT",
        )
    if parts.query or parts.fragment:
        raise UsageError(f"CSDS URL {base!r} must not carry a query or fragment", hint="pass only the base")
    return base


def csds_url(base: str, account: str, service: str | None = None) -> str:
    """The Domain API request: one service, or every service when ``service`` is None."""
    if not account:
        raise UsageError("no account id given", hint="pass --account (the LivePerson site id)")
    path = f"/api/account/{quote(account, safe='')}/service"
    if service is not None:
        path += f"/{quote(service, safe='')}"
    return f"{base}{path}/baseURI.json?version=1.0"


def _host(value: str, *, where: str, service: str) -> str:
    """A baseURI is a host (``va.msg.liveperson.net``) or host:port; a URL is reduced to its netloc."""
    text = value.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.rstrip("/")
    if not text or "/" in text or " " in text:
        raise RemoteProtocolError(f"{where}: service {service!r} has a baseURI that is not a host: {value!r}")
    return text


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: object, what: str, *, hint: str) -> M:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise RemoteProtocolError(f"{what}: {describe_validation_error(exc)}", hint=hint) from None


def parse_service(data: Any, service: str, *, where: str) -> str:
    """The host of ``service`` from a one-service answer ``{"service","account","baseURI"}``.

    Some CSDS deployments answer the one-service request with the all-services shape; that is
    accepted too.
    """
    if isinstance(data, dict) and "baseURIs" in data:
        hosts = parse_services(data, where=where)
        if service not in hosts:
            raise _missing(service, where, sorted(hosts))
        return hosts[service]
    entry = _validated(
        BaseUri,
        data,
        f"{where}: unexpected answer for service {service!r}",
        hint='expected {"service": ..., "account": ..., "baseURI": "host"}',
    )
    if entry.service != service:
        raise RemoteProtocolError(f"{where}: asked for service {service!r}, answer is for {entry.service!r}")
    return _host(entry.baseURI, where=where, service=service)


def parse_services(data: Any, *, where: str) -> dict[str, str]:
    """Service name -> host from an all-services answer ``{"baseURIs": [...]}``."""
    listing = _validated(
        BaseUriList,
        data,
        f"{where}: unexpected all-services answer",
        hint='expected {"baseURIs": [{"service": ..., "account": ..., "baseURI": "host"}, ...]}',
    )
    return {e.service: _host(e.baseURI, where=where, service=e.service) for e in listing.baseURIs}


def _missing(service: str, where: str, known: list[str]) -> UsageError:
    listed = ", ".join(known) if known else "none"
    return UsageError(
        f"{where}: the account has no {service!r} service (services listed: {listed})",
        hint="check --account; the account may lack the Messaging feature (ask LivePerson support),"
        " or --csds points at the wrong Domain API",
    )


def _unknown_account(where: str, status: int) -> UsageError:
    return UsageError(
        f"{where}: account unknown (HTTP {status})",
        hint="check --account (the LivePerson site id, e.g. 12345678) and --csds",
    )


class DomainDiscovery:
    """CSDS lookups with a per-account cache (one instance per run; see :func:`shared_discovery`)."""

    def __init__(
        self,
        base: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base = csds_base(base)
        self.timeout = timeout
        self.verify = verify
        self._all: dict[str, dict[str, str]] = {}
        self._one: dict[tuple[str, str], str] = {}
        #: requests made (the cache's effect is visible in tests)
        self.requests = 0

    @property
    def scheme(self) -> str:
        return urlsplit(self.base).scheme

    @property
    def _where(self) -> str:
        return f"CSDS {origin(self.base)}"

    async def _get(self, url: str) -> tuple[int, Any]:
        self.requests += 1
        answer = await request_json("GET", url, what="CSDS", timeout=self.timeout, verify=self.verify)
        if answer.status in (400, 404, 410):
            return answer.status, None
        answer.raise_unless_ok(
            self._where,
            refused="account",
            hint="check --account; the Domain API needs no credentials, so a proxy may be in the way",
        )
        return answer.status, answer.body

    async def services(self, account: str) -> dict[str, str]:
        """Every service of ``account`` (the all-services form), cached for the run."""
        cached = self._all.get(account)
        if cached is not None:
            return cached
        status, body = await self._get(csds_url(self.base, account))
        if body is None:
            raise _unknown_account(self._where, status)
        hosts = parse_services(body, where=self._where)
        if not hosts:
            raise _unknown_account(self._where, status)
        log.info("CSDS: account %s has %d services", account, len(hosts))
        self._all[account] = hosts
        return hosts

    async def service(self, account: str, service: str) -> str:
        """The host of one service (the one-service form), cached for the run."""
        cached = self._all.get(account, {}).get(service) or self._one.get((account, service))
        if cached is not None:
            return cached
        status, body = await self._get(csds_url(self.base, account, service))
        if body is None:
            if status == 404:
                # a 404 on one service: is it the account or the service? the listing tells
                try:
                    known = await self.services(account)
                except UsageError:
                    raise _unknown_account(self._where, status) from None
                raise _missing(service, self._where, sorted(known))
            raise _unknown_account(self._where, status)
        host = parse_service(body, service, where=self._where)
        log.info("CSDS: account %s service %s is %s", account, service, host)
        self._one[(account, service)] = host
        return host

    async def consumer_domains(self, account: str) -> ConsumerDomains:
        """``asyncMessagingEnt`` and ``idp`` of ``account`` (the all-services form, then the
        one-service form for anything the listing lacks, as public samples do)."""
        hosts = dict(await self.services(account))
        for name in CONSUMER_SERVICES:
            if name not in hosts:
                hosts[name] = await self.service(account, name)
        return ConsumerDomains(account, hosts[ASYNC_MESSAGING_ENT], hosts[IDP], scheme=self.scheme)


_SHARED: dict[str, DomainDiscovery] = {}


def shared_discovery(base: str | None = None) -> DomainDiscovery:
    """The run's :class:`DomainDiscovery` for ``base`` (one per CSDS base, so one cache per run)."""
    key = csds_base(base)
    found = _SHARED.get(key)
    if found is None:
        found = _SHARED[key] = DomainDiscovery(key)
    return found


__all__ = [
    "ASYNC_MESSAGING_ENT",
    "CONSUMER_SERVICES",
    "CSDS_ENV",
    "DEFAULT_CSDS",
    "IDP",
    "BaseUri",
    "BaseUriList",
    "ConsumerDomains",
    "DomainDiscovery",
    "csds_base",
    "csds_url",
    "parse_service",
    "parse_services",
    "shared_discovery",
]
