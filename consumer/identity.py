"""Consumer identities: an unauthenticated signup at the account's IDP, or a brand's JWT.

- Unauthenticated: ``POST https://{idp}/api/account/{account}/signup`` answers ``{"jwt": "..."}``
  (:func:`signup`). :class:`SignupIdentity` signs up again when the messaging service closes the
  socket with 4401 (the token expired) or 4407 (the identity must be renewed). LivePerson's
  "extend" call is not public, so a renewal is a fresh signup: a new consumer id.
- Authenticated: the brand's JWT (or its code flow's output) from a file or ``CALLOPS_JWT``
  (:class:`StaticIdentity`); callops cannot renew it, so a rejection is final.

:func:`token_problem` reads a rejected token's claims (unverified) and names the likely cause --
expired, issued for another account, or a skewed clock -- in one sentence. JWTs are handled as
:class:`~callops.secret.Secret` and never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from callops.consumer.models import MAX_JWT_LENGTH
from callops.consumer.rest import DEFAULT_TIMEOUT, origin, request_json
from callops.errors import RemoteProtocolError, UsageError
from callops.secret import Secret

log = logging.getLogger("callops.consumer.identity")

#: Seconds of clock difference treated as skew rather than ordinary delay.
CLOCK_SKEW_TOLERANCE = 60.0


def signup_url(idp_url: str, account: str) -> str:
    """``{idp}/api/account/{account}/signup``."""
    return f"{idp_url.rstrip('/')}/api/account/{quote(account, safe='')}/signup"


def parse_signup(data: Any, *, where: str) -> str:
    """The JWT of a signup answer ``{"jwt": "..."}``."""
    token = data.get("jwt") if isinstance(data, dict) else None
    if not isinstance(token, str) or token.count(".") != 2:
        shape = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise RemoteProtocolError(
            f"{where}: signup answer has no JWT (got {shape})",
            hint='expected {"jwt": "header.payload.signature"}',
        )
    if len(token) > MAX_JWT_LENGTH:
        raise RemoteProtocolError(f"{where}: signup JWT of {len(token)} characters exceeds {MAX_JWT_LENGTH}")
    return token


async def signup(
    idp_url: str, account: str, *, timeout: float = DEFAULT_TIMEOUT, verify: ssl.SSLContext | bool = True
) -> Secret:
    """A new unauthenticated consumer identity from the IDP at ``idp_url`` (``https://host``)."""
    where = f"IDP {origin(idp_url)}"
    answer = await request_json(
        "POST", signup_url(idp_url, account), what="IDP", timeout=timeout, verify=verify
    )
    if answer.status in (400, 404):
        raise UsageError(
            f"{where}: signup refused (HTTP {answer.status}): account unknown to the IDP",
            hint="check --account; unauthenticated messaging must be enabled on the account",
        )
    answer.raise_unless_ok(
        where,
        refused="signup",
        request="signup",
        hint="the account does not allow unauthenticated consumers: pass the brand's JWT with --jwt-file",
    )
    token = parse_signup(answer.body, where=where)
    log.info("IDP: new unauthenticated identity for account %s", account)
    return Secret(token, source="IDP signup")


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified ({} when it cannot be read)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def token_problem(token: Secret, account: str, *, now: float | None = None) -> str:
    """One sentence naming the likely cause of a rejected token, from its (unverified) claims."""
    now = time.time() if now is None else now
    claims = token_claims(token.reveal())
    exp, iat, aud = claims.get("exp"), claims.get("iat"), claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    accounts = [a[4:] for a in audiences if isinstance(a, str) and a.startswith("acc:")]
    if accounts and account not in accounts:
        return "Likely cause: the token was issued for another account (its aud is not acc:<--account>)."
    if isinstance(exp, int | float) and not isinstance(exp, bool) and exp <= now:
        return (
            f"Likely cause: the token expired {now - exp:.0f} s ago by this machine's clock"
            " (or this clock is ahead: compare `date -u` with a time server)."
        )
    if isinstance(iat, int | float) and not isinstance(iat, bool) and iat > now + CLOCK_SKEW_TOLERANCE:
        return (
            f"Likely cause: clock skew -- the token was issued {iat - now:.0f} s in this machine's future;"
            " synchronise the clock (NTP)."
        )
    return (
        "Likely causes: the token expired, it was issued for another account,"
        " or a clock is skewed (compare `date -u` with a time server)."
    )


class IdentitySource(Protocol):
    """Where a consumer's JWT comes from, and whether callops may get a fresh one."""

    #: True: a rejected token is replaced by a fresh identity once (unauthenticated consumers)
    renewable: bool

    async def token(self) -> Secret:
        """The current JWT (signing up first if there is none yet)."""
        ...

    async def renew(self) -> Secret:
        """A fresh JWT replacing the rejected one."""
        ...


class StaticIdentity:
    """An authenticated consumer: the brand's JWT, used as given and never renewed."""

    renewable = False

    def __init__(self, jwt: Secret) -> None:
        self._jwt = jwt

    async def token(self) -> Secret:
        return self._jwt

    async def renew(self) -> Secret:
        raise UsageError(
            "an authenticated consumer's JWT cannot be renewed by callops",
            hint="get a fresh JWT from the brand's identity flow",
        )


class SignupIdentity:
    """An unauthenticated consumer: signs up at the account's IDP, and again to renew."""

    renewable = True

    def __init__(
        self,
        idp_url: str,
        account: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.idp_url = idp_url
        self.account = account
        self.timeout = timeout
        self.verify = verify
        self._jwt: Secret | None = None
        #: signups made (the first, then one per renewal)
        self.signups = 0

    async def token(self) -> Secret:
        if self._jwt is None:
            self._jwt = await self._signup()
        return self._jwt

    async def renew(self) -> Secret:
        self._jwt = await self._signup()
        return self._jwt

    async def _signup(self) -> Secret:
        self.signups += 1
        return await signup(self.idp_url, self.account, timeout=self.timeout, verify=self.verify)


@dataclass(slots=True)
class PreparedConsumer:
    """What a consumer needs to connect: the websocket URL, the first JWT and its source."""

    url: str
    jwt: Secret
    identity: IdentitySource

    @property
    def authenticated(self) -> bool:
        return not self.identity.renewable


async def prepare_consumer(
    account: str,
    *,
    url: str | None = None,
    jwt: Secret | None = None,
    csds: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PreparedConsumer:
    """Discover what is missing and get an identity, the way a consumer starts.

    - ``url`` None: CSDS (``csds``, default LivePerson's) gives ``asyncMessagingEnt``;
    - ``jwt`` given: an authenticated consumer (:class:`StaticIdentity`, never renewed);
    - ``jwt`` None: CSDS gives ``idp`` and the consumer signs up (:class:`SignupIdentity`).

    With both ``url`` and ``jwt`` nothing is fetched. Discovery is cached per account for the run
    (:func:`callops.consumer.discovery.shared_discovery`).
    """
    from callops.consumer.discovery import IDP, shared_discovery

    if url is not None and jwt is not None:
        return PreparedConsumer(url, jwt, StaticIdentity(jwt))
    discovery = shared_discovery(csds)
    discovery.timeout = timeout
    if url is None:
        domains = await discovery.consumer_domains(account)
        url, idp_url = domains.consumer_url, domains.idp_url
    else:
        idp_url = f"{discovery.scheme}://{await discovery.service(account, IDP)}"
    if jwt is not None:
        return PreparedConsumer(url, jwt, StaticIdentity(jwt))
    identity = SignupIdentity(idp_url, account, timeout=timeout, verify=discovery.verify)
    return PreparedConsumer(url, await identity.token(), identity)


__all__ = [
    "CLOCK_SKEW_TOLERANCE",
    "IdentitySource",
    "PreparedConsumer",
    "SignupIdentity",
    "StaticIdentity",
    "parse_signup",
    "prepare_consumer",
    "signup",
    "signup_url",
    "token_claims",
    "token_problem",
]
