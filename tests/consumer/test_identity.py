"""Consumer identities over real sockets: IDP signup at the emulator, renewal once on 4401/4407 for
unauthenticated consumers, refusal for authenticated ones and on a repeat, and the likely-cause sentence."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from callops.consumer.client import ConsumerClient, TokenRejected, jwt_subject
from callops.consumer.identity import (
    SignupIdentity,
    StaticIdentity,
    prepare_consumer,
    signup,
    token_claims,
    token_problem,
)
from callops.errors import AuthenticationError, UsageError
from callops.orchestrator.emulator import Emulator, EmulatorConfig, mint_jwt, verify_jwt
from callops.orchestrator.emulator.idp import IdentityConfig
from callops.secret import Secret
from callops.testing import run_bounded

ACCOUNT = "le83624296"
SECRET = Secret("emulator-secret", source="test")


def _emulator(*, secret: Secret | None = SECRET, **identity: Any) -> Emulator:
    return Emulator(EmulatorConfig(jwt_secret=secret, identity=IdentityConfig.model_validate(identity)))


def _token(sub: str, *, account: str = ACCOUNT, now: float | None = None, lifetime: float = 3600) -> Secret:
    at = time.time() if now is None else now
    return Secret(mint_jwt(sub, SECRET, now=at, lifetime=lifetime, extra={"aud": f"acc:{account}"}))


# --- signup ------------------------------------------------------------------------------------


def test_signup_returns_a_jwt_the_emulator_accepts_for_a_fresh_consumer() -> None:
    async def body() -> None:
        async with _emulator(signup_lifetime=600) as emu:
            first = await signup(emu.base_url, ACCOUNT)
            second = await signup(emu.base_url, ACCOUNT)
            now = time.time()
            claims = verify_jwt(first.reveal(), SECRET, now=now)
            assert claims.raw["aud"] == f"acc:{ACCOUNT}" and claims.exp is not None
            assert 598 <= claims.exp - now <= 601
            assert claims.sub != verify_jwt(second.reveal(), SECRET, now=now).sub
            assert str(first) == "***" and first.source == "IDP signup"

    run_bounded(body(), 30)


def test_signup_for_an_unknown_account_is_a_usage_error() -> None:
    async def body() -> None:
        async with _emulator(accounts=[ACCOUNT]) as emu:
            with pytest.raises(UsageError, match="account unknown to the IDP"):
                await signup(emu.base_url, "nobody")

    run_bounded(body(), 30)


def test_prepare_consumer_discovers_and_signs_up_with_no_url_and_no_jwt() -> None:
    async def body() -> None:
        async with _emulator() as emu:
            prepared = await prepare_consumer(ACCOUNT, csds=emu.base_url)
            assert not prepared.authenticated and prepared.url == emu.consumer_url(ACCOUNT)
            async with ConsumerClient(
                prepared.url, ACCOUNT, prepared.jwt, identity=prepared.identity
            ) as client:
                assert await client.request_conversation()
                assert client.consumer_id == jwt_subject(prepared.jwt.reveal())
            given = _token("brand-user-1")
            authenticated = await prepare_consumer(ACCOUNT, csds=emu.base_url, jwt=given)
            assert authenticated.authenticated and authenticated.jwt is given

    run_bounded(body(), 30)


# --- renewal and refusal -------------------------------------------------------------------------


def test_an_unauthenticated_consumer_renews_once_on_4401_at_connect() -> None:
    async def body() -> None:
        async with _emulator() as emu:
            identity = SignupIdentity(emu.base_url, ACCOUNT)
            expired = _token("old-consumer", now=time.time() - 7200)
            client = ConsumerClient(emu.consumer_url(ACCOUNT), ACCOUNT, expired, identity=identity)
            async with client:
                assert client.renewals == 1 and identity.signups == 1
                assert client.consumer_id not in (None, "old-consumer")
                assert client.tracker.consumer_id == client.consumer_id
                assert await client.subscribe()

    run_bounded(body(), 30)


def test_a_short_signup_expiry_is_renewed_on_4401_when_the_consumer_reconnects() -> None:
    """The signup JWT lives 3 s; after it expired the connection drops, the reconnect is refused
    with 4401, the consumer signs up again, reconnects and subscribes again."""

    async def body() -> None:
        async with _emulator(signup_lifetime=3) as emu:
            prepared = await prepare_consumer(ACCOUNT, csds=emu.base_url)
            client = ConsumerClient(
                prepared.url, ACCOUNT, prepared.jwt, identity=prepared.identity, backoff_initial=0.05
            )
            async with client:
                await client.subscribe()
                first_subscription, first_consumer = client.subscription_id, client.consumer_id
                exp = float(token_claims(client.jwt.reveal())["exp"])
                # the expiry itself is what is under test: wait for the wall clock to pass it
                await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
                renewals = client.renewals
                assert client._ws is not None
                client._ws.transport.abort()  # the network drops the connection
                await client.wait_until(
                    lambda: (
                        client.renewals == renewals + 1
                        and client.connected.is_set()
                        and client.subscription_id not in (None, first_subscription)
                    ),
                    within=15,
                )
                assert client.consumer_id != first_consumer and client.reconnects == 1

    run_bounded(body(), 40)


def test_an_authenticated_consumer_is_refused_on_4407_without_retry_naming_the_account_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = _token("brand-user-2", account="another-account")

    async def body() -> None:
        async with _emulator() as emu:
            client = ConsumerClient(
                emu.consumer_url(ACCOUNT),
                ACCOUNT,
                token,
                identity=StaticIdentity(token),
                backoff_initial=0.01,
            )
            with pytest.raises(TokenRejected) as info:
                await client.connect()
            await client.close()
            err = info.value
            assert err.code == 4407 and err.exit_code == 6 and isinstance(err, AuthenticationError)
            assert "another account" in str(err) and "not retried" in str(err)
            assert client.renewals == 0 and not emu.model.sessions

    with caplog.at_level(logging.DEBUG):
        run_bounded(body(), 30)
    assert all(token.reveal() not in r.getMessage() for r in caplog.records)


def test_an_unauthenticated_consumer_renews_once_on_4407() -> None:
    async def body() -> None:
        async with _emulator() as emu:
            identity = SignupIdentity(emu.base_url, ACCOUNT)
            foreign = _token("visitor-elsewhere", account="another-account")
            async with ConsumerClient(
                emu.consumer_url(ACCOUNT), ACCOUNT, foreign, identity=identity
            ) as client:
                assert client.renewals == 1 and await client.get_clock() > 0

    run_bounded(body(), 30)


def test_a_fresh_identity_rejected_again_is_an_authentication_error_not_retried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        # signup_lifetime 0: every signup JWT is already expired, so the fresh one fails too
        async with _emulator(signup_lifetime=0) as emu:
            prepared = await prepare_consumer(ACCOUNT, csds=emu.base_url)
            assert isinstance(prepared.identity, SignupIdentity)
            client = ConsumerClient(prepared.url, ACCOUNT, prepared.jwt, identity=prepared.identity)
            with pytest.raises(TokenRejected, match="again, with a fresh identity") as info:
                await client.connect()
            await client.close()
            assert info.value.code == 4401 and "expired" in str(info.value)
            assert prepared.identity.signups == 2 and client.renewals == 1
            assert "clock" in (info.value.hint or "")

    with caplog.at_level(logging.DEBUG):
        run_bounded(body(), 30)
    assert all("eyJ" not in r.getMessage() for r in caplog.records)


def test_an_authenticated_consumer_with_an_expired_jwt_is_refused_on_4401_saying_expired() -> None:
    token = _token("brand-user-3", now=time.time() - 7200)

    async def body() -> None:
        async with _emulator() as emu:
            client = ConsumerClient(emu.consumer_url(ACCOUNT), ACCOUNT, token)
            with pytest.raises(TokenRejected, match="expired") as info:
                await client.connect()
            await client.close()
            assert info.value.code == 4401 and "not retried" in str(info.value)
            assert token.reveal() not in str(info.value)

    run_bounded(body(), 30)


# --- the likely cause ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "needle"),
    [
        ({"exp": 900, "aud": "acc:A"}, "expired 100 s ago"),
        ({"exp": 2000, "aud": ["acc:B"]}, "another account"),
        ({"exp": 5000, "iat": 1500, "aud": "acc:A"}, "clock skew"),
        ({"exp": 5000, "iat": 990}, "Likely causes"),
    ],
)
def test_token_problem_names_the_likely_cause(claims: dict[str, Any], needle: str) -> None:
    token = mint_jwt("s", None, now=0, extra=claims)
    assert needle in token_problem(Secret(token), "A", now=1000.0)


def test_token_problem_of_an_unreadable_token_lists_every_cause() -> None:
    assert "Likely causes" in token_problem(Secret("not-a-jwt"), "A", now=0.0)
