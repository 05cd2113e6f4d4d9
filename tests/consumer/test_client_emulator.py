"""The consumer client against the emulator, over real websockets on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from callops.consumer.client import ConsumerClient
from callops.consumer.lptag import AutoAnswer, Visitor, answer_invitation
from callops.consumer.tracker import CallAccepted, CallClosed, CallInvited, CloseReason
from callops.errors import AuthenticationError
from callops.orchestrator.emulator import CoBrowseChannel, ControlClient, Emulator, EmulatorConfig, mint_jwt
from callops.secret import Secret
from callops.testing import run_bounded

ACCOUNT = "le83624296"
VISITOR = Visitor(visitorName="Ada", ssid="ssid-1", svid="svid-1")


def _token(sub: str = "consumer-1", secret: Secret | None = None, **kwargs: float) -> Secret:
    return Secret(
        mint_jwt(sub, secret, now=kwargs.get("now", time.time()), lifetime=kwargs.get("lifetime", 3600))
    )


async def _publish(emu: Emulator, token: Secret, invite: CallInvited, auto: AutoAnswer) -> None:
    """What the page does: cobrowseOffered, then cobrowseAccepted/Declined, on the CoBrowse stand-in."""
    channel = await CoBrowseChannel.connect(
        emu.cobrowse_url(ACCOUNT), role="consumer", service_id=invite.serviceId, jwt=token.reveal()
    )
    try:
        for pub in answer_invitation(invite, VISITOR, auto):
            await channel.publish(str(pub.eventName), pub.data)
    finally:
        await channel.close()


async def _invited(client: ConsumerClient) -> CallInvited:
    event = await client.next_event(15)
    assert isinstance(event, CallInvited), event
    return event


async def _closed(client: ConsumerClient, invite: CallInvited, reason: CloseReason | None = None) -> None:
    """The client reports the end of ``invite``'s call (closed for ``reason``, if given)."""
    event = await client.next_event(15)
    assert isinstance(event, CallClosed) and event.dialogId == invite.dialogId, event
    assert reason is None or event.reason is reason, event


@dataclass
class _Subscribed:
    """A client connected to the emulator, in a conversation of its own and subscribed to it."""

    emu: Emulator
    control: ControlClient
    token: Secret
    client: ConsumerClient
    conversation: str

    async def invite(self, mode: str) -> CallInvited:
        """The agent invites to a call; the client reports the invitation."""
        await self.control.invite(ACCOUNT, self.conversation, mode)
        return await _invited(self.client)

    async def answer(self, invite: CallInvited, auto: AutoAnswer) -> None:
        """The consumer's answer: told to the client, then published on the CoBrowse stand-in."""
        if auto is AutoAnswer.ACCEPT:
            self.client.accepted(invite.dialogId)
        else:
            self.client.declined(invite.dialogId)
        await _publish(self.emu, self.token, invite, auto)

    async def end(self) -> None:
        """The agent ends the call (or cancels the invitation)."""
        await self.control.end_call(ACCOUNT, self.conversation)


@asynccontextmanager
async def _subscribed(config: EmulatorConfig | None = None) -> AsyncIterator[_Subscribed]:
    async with Emulator(config or EmulatorConfig()) as emu:
        token = _token()
        async with ConsumerClient(emu.consumer_url(ACCOUNT), ACCOUNT, token) as client:
            conversation = await client.request_conversation()
            await client.subscribe()
            yield _Subscribed(emu, ControlClient(emu.base_url), token, client, conversation)


def test_connect_request_subscribe_and_receive_an_invitation() -> None:
    async def body() -> None:
        async with _subscribed() as call:
            assert call.conversation and call.client.subscription_id
            assert await call.client.get_clock() > 1_600_000_000_000
            invitation = await call.control.invite(ACCOUNT, call.conversation, "VIDEO_CALL")
            invite = await _invited(call.client)
            assert invite.conversationId == call.conversation
            assert invite.serviceId == invitation.serviceId and invite.dialogId == invitation.dialogId
            assert invite.serviceId.startswith("consumer-1#")
            assert invite.mode == "VIDEO_CALL" and invite.agentId
            assert invite.expires == pytest.approx(invitation.expires)

    run_bounded(body(), 60)


def test_accepting_through_lptag_moves_the_call_to_accepted_and_hangup_ends_it() -> None:
    async def body() -> None:
        async with _subscribed() as call:
            invite = await call.invite("VOICE_CALL")
            await call.answer(invite, AutoAnswer.ACCEPT)
            accepted = await call.client.next_event(15)
            assert isinstance(accepted, CallAccepted) and accepted.dialogId == invite.dialogId
            await call.end()
            await _closed(call.client, invite, CloseReason.ENDED)

    run_bounded(body(), 60)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("VIDEO_CALL", CloseReason.DECLINED), ("VOICE_CALL", CloseReason.CANCELLED)],
    ids=["the-visitor-declines", "the-agent-cancels"],
)
def test_an_invitation_declined_or_cancelled_before_an_answer_closes_for_that_reason(
    mode: str, reason: CloseReason
) -> None:
    async def body() -> None:
        async with _subscribed() as call:
            invite = await call.invite(mode)
            if reason is CloseReason.DECLINED:
                await call.answer(invite, AutoAnswer.DECLINE)
            else:
                await call.end()  # the agent cancels the invitation
            await _closed(call.client, invite, reason)

    run_bounded(body(), 60)


def test_unanswered_invitation_expires() -> None:
    async def body() -> None:
        async with _subscribed(EmulatorConfig(invite_expiry=1.0)) as call:
            invite = await call.invite("VIDEO_CALL")
            assert invite.expires - time.time() <= 1.5
            await _closed(call.client, invite, CloseReason.EXPIRED)
            assert call.client.tracker.active_calls() == []

    run_bounded(body(), 60)


def test_two_invitations_in_one_conversation_are_reported_apart() -> None:
    async def body() -> None:
        async with _subscribed() as call:
            first = await call.invite("VOICE_CALL")
            await call.end()
            await _closed(call.client, first)
            second = await call.invite("VIDEO_CALL")
            assert second.dialogId != first.dialogId and second.mode == "VIDEO_CALL"

    run_bounded(body(), 60)


def test_client_reconnects_and_resubscribes_after_the_server_drops_it() -> None:
    async def body() -> None:
        emu = Emulator(EmulatorConfig())
        await emu.start()
        port = emu.port
        token = _token()
        client = ConsumerClient(
            emu.consumer_url(ACCOUNT), ACCOUNT, token, backoff_initial=0.05, backoff_max=0.5
        )
        try:
            await client.connect()
            await client.request_conversation()
            await client.subscribe()
            first_subscription = client.subscription_id
            await emu.stop()  # every socket dropped
            emu = Emulator(EmulatorConfig(port=port))
            await emu.start()
            await client.wait_until(
                lambda: client.reconnects == 1 and client.subscription_id != first_subscription, 30
            )
            # the new server knows nothing: start again on the same client, which subscribed again
            conversation = await client.request_conversation()
            await ControlClient(emu.base_url).invite(ACCOUNT, conversation, "VOICE_CALL")
            invite = await _invited(client)
            assert invite.conversationId == conversation
        finally:
            await client.close()
            await emu.stop()

    run_bounded(body(), 90)


@pytest.mark.parametrize("problem", ["bad signature", "expired"])
def test_bad_or_expired_jwt_is_rejected_with_4401_and_not_retried(problem: str) -> None:
    secret = Secret("emulator-secret")

    async def body() -> None:
        async with Emulator(EmulatorConfig(jwt_secret=secret)) as emu:
            if problem == "expired":
                token = _token(secret=secret, now=time.time() - 7200, lifetime=3600)
            else:
                token = _token(secret=Secret("some-other-secret"))
            client = ConsumerClient(emu.consumer_url(ACCOUNT), ACCOUNT, token, backoff_initial=0.01)
            with pytest.raises(AuthenticationError, match="4401") as info:
                await client.connect()
            assert info.value.exit_code == 6
            await client.close()
            # a good token works on the same emulator
            async with ConsumerClient(emu.consumer_url(ACCOUNT), ACCOUNT, _token(secret=secret)) as good:
                assert await good.request_conversation()

    run_bounded(body(), 60)
