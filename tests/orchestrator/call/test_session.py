"""Calls along the whole invitation path through the in-process emulator: every scenario."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from callops.errors import AuthenticationError, UsageError
from callops.orchestrator.call.embedded import EmbeddedTurn
from callops.orchestrator.call.environment import EnvironmentRequest, call_environment
from callops.orchestrator.call.legs import AiortcConsumer
from callops.orchestrator.call.report import CallReport
from callops.orchestrator.call.roles import AgentRole, ConsumerRole
from callops.orchestrator.call.runs import CallEnvironment, CallRun, CallSettings, run_call
from callops.orchestrator.emulator.auth import mint_jwt
from callops.orchestrator.emulator.channel import ChannelRefused, CoBrowseChannel
from callops.secret import Secret
from callops.testing import run_bounded

ORDER = [
    "invited",
    "offered",
    "accepted",
    "offer_sent",
    "answer_received",
    "ice_connected",
    "dtls_connected",
    "first_audio",
    "closed",
]


def _settings(**overrides: Any) -> CallSettings:
    values: dict[str, Any] = {
        "duration_s": 0.3,
        # generous: the suite shares 2 cores with coturn, netns labs and other aiortc peers
        "ice_timeout_s": 20.0,
        "media_timeout_s": 20.0,
        "step_timeout_s": 20.0,
        "invite_expiry_s": 30.0,
        "video_size": (160, 120),
    }
    values.update(overrides)
    return CallSettings(**values)


def _call(settings: CallSettings, *, turn: bool = False, run: type[CallRun] = CallRun) -> CallReport:
    async def body() -> CallReport:
        request = EnvironmentRequest(invite_expiry_s=settings.invite_expiry_s, embedded_turn=turn)
        async with call_environment(request) as env:
            if turn and env.turn_url is None:
                pytest.skip("coturn's turnserver is not installed")
            return await run(settings, env).run()

    return run_bounded(body(), 90)


def test_accepted_voice_call_reaches_every_phase_in_order_with_audio_both_ways() -> None:
    report = _call(_settings())
    assert report.ok, report.failure
    assert report.outcome == "connected"
    marks = [report.timeline_ms[p] for p in ORDER]
    assert marks == sorted(marks)
    assert "first_video" not in report.timeline_ms
    assert report.selected_pair is not None
    assert (report.selected_pair.local.type, report.selected_pair.remote.type) == ("host", "host")
    audio = [m for m in report.stats.media if m.kind == "audio"]
    assert {m.direction for m in audio} == {"agent->consumer", "consumer->agent"}
    assert all(m.frames_decoded > 0 and m.packets_received > 0 for m in audio)
    # one estimate per direction; the band itself depends on the machine's load (bench/, not here)
    assert [q.direction for q in report.stats.audio_quality] == ["agent->consumer", "consumer->agent"]
    assert all(1.0 <= q.mos <= 4.5 for q in report.stats.audio_quality)
    assert report.errors == []


def test_the_visitor_reads_the_invitation_before_answering_and_the_call_still_connects() -> None:
    report = _call(_settings(answer_after_s=0.4))
    assert report.ok, report.failure
    assert report.outcome == "connected"
    marks = report.timeline_ms
    assert marks["accepted"] - marks["offered"] >= 400.0, marks


def test_video_call_verifies_audio_and_video_in_both_directions() -> None:
    report = _call(_settings(mode="VIDEO_CALL"))
    assert report.ok, report.failure
    assert "first_video" in report.timeline_ms
    kinds = {(m.kind, m.direction) for m in report.stats.media if m.frames_decoded > 0}
    assert kinds == {
        ("audio", "agent->consumer"),
        ("audio", "consumer->agent"),
        ("video", "agent->consumer"),
        ("video", "consumer->agent"),
    }


@pytest.mark.coturn
def test_relay_policy_call_through_coturn_reports_relay_pair_on_both_sides() -> None:
    report = _call(_settings(policy="relay"), turn=True)
    assert report.ok, report.failure
    for pair in (report.selected_pair, report.agent_selected_pair):
        assert pair is not None
        assert pair.local.type == "relay"
        assert pair.local.relay_protocol == "udp"
        assert pair.remote.type == "relay"


def test_decline_closes_the_call_without_media() -> None:
    report = _call(_settings(scenario="decline"))
    assert report.ok, report.failure
    assert report.outcome == "declined"
    assert "closed" in report.timeline_ms
    assert "accepted" not in report.timeline_ms
    assert "offer_sent" not in report.timeline_ms
    assert report.stats.media == []


def test_agent_cancel_before_acceptance_closes_and_a_late_accept_is_refused() -> None:
    report = _call(_settings(scenario="cancel"))
    assert report.ok, report.failure
    assert report.outcome == "cancelled"
    assert any("accept after cancel refused: 409" in note for note in report.notes)


def test_unanswered_invitation_expires_at_the_invite_expiry() -> None:
    report = _call(_settings(scenario="expire", invite_expiry_s=1.0))
    assert report.ok, report.failure
    assert report.outcome == "expired"
    assert 900 <= report.timeline_ms["closed"] <= 1000 + 20_000  # expiry + the step bound
    assert any("accept after expire refused" in note for note in report.notes)


@pytest.mark.parametrize("scenario", ["hangup-consumer", "hangup-agent"])
def test_hangup_from_either_side_ends_in_closed(scenario: str) -> None:
    report = _call(_settings(scenario=scenario))
    assert report.ok, report.failure
    assert report.timeline_ms["closed"] > report.timeline_ms["first_audio"]


def test_agent_vanishing_mid_call_raises_agent_disconnected_within_seconds() -> None:
    report = _call(_settings(scenario="agent-disconnect"))
    assert report.ok, report.failure
    assert [e.id for e in report.errors] == ["AGENT_DISCONNECTED"]
    assert "closed" in report.timeline_ms
    # the agent leaves after the watched media phase: a hang-up path, not a dropped call
    assert report.outcome == "connected" and "dropped" not in report.timeline_ms
    assert report.interruptions == [] and report.transport_events == []


def test_ice_that_cannot_connect_raises_unable_to_connect_within_the_ice_timeout() -> None:
    report = _call(_settings(scenario="ice-fail", ice_timeout_s=2.0))
    assert report.ok, report.failure
    assert report.outcome == "failed"
    assert report.policy == "relay"
    assert [e.id for e in report.errors] == ["UNABLE_TO_CONNECT"]
    assert report.selected_pair is None
    # the ICE timeout, a bounded diagnosis and the hang-up: never a hang
    assert report.timeline_ms["closed"] - report.timeline_ms["answer_received"] < 2000 + 20_000
    assert "connection refused" in report.errors[0].msg


@pytest.mark.coturn
def test_relay_policy_with_a_wrong_turn_secret_raises_unable_to_connect() -> None:
    report = _call(_settings(scenario="ice-fail", ice_timeout_s=2.0), turn=True)
    assert report.ok, report.failure
    assert any("wrong credential" in note for note in report.notes)
    assert [e.id for e in report.errors] == ["UNABLE_TO_CONNECT"]
    assert "401: credentials rejected" in report.errors[0].msg


def test_resume_after_a_reload_reestablishes_media_and_reports_the_time() -> None:
    report = _call(_settings(scenario="resume"))
    assert report.ok, report.failure
    assert report.resume_to_media_ms is not None
    assert report.resume_to_media_ms > 0
    assert report.timeline_ms["resumed"] < report.timeline_ms["media_again"] < report.timeline_ms["closed"]


class _FaultyAgent(AgentRole):
    """Injects faults on the CoBrowse channel once the call is accepted, before the real offer."""

    faults: list[str]
    consumer_leg: AiortcConsumer
    env: CallEnvironment

    async def _wait_accepted(self, control: Any) -> bool:
        accepted = await super()._wait_accepted(control)
        self.faults = []
        agent, consumer = self.cobrowse.channel, self.consumer_leg.cobrowse.channel
        assert agent is not None and consumer is not None
        # malformed signalling: the consumer notes it and waits for a valid offer
        await agent.send_signal({"kind": "offer"})
        await agent.send_signal("not an object")
        # a duplicate accept is idempotent
        ack = await consumer.publish("cobrowseAccepted", self._accept_payload())
        self.faults.append(f"duplicate accept: {ack['sessionState']}")
        # an unknown serviceId is refused
        with pytest.raises(ChannelRefused) as unknown:
            await consumer.request({"type": "join", "serviceId": "nobody#0"})
        self.faults.append(f"unknown serviceId: {unknown.value.code}")
        # a second consumer claiming this serviceId is refused
        other_jwt = mint_jwt("someone-else", None, now=0, lifetime=10**10)
        assert self.state.service_id is not None
        with pytest.raises((AuthenticationError, ChannelRefused)) as claimed:
            second = await CoBrowseChannel.connect(
                self.env.cobrowse_url(self.settings.account),
                role="consumer",
                service_id=self.state.service_id,
                jwt=other_jwt,
                join=True,
            )
            await second.close()
        self.faults.append(f"second consumer: {claimed.value}")
        return accepted

    def _accept_payload(self) -> dict[str, Any]:
        from callops.consumer.lptag import Visitor, build_accepted

        assert self.consumer_leg.invite is not None
        return build_accepted(self.consumer_leg.invite, Visitor("v", ssid="s", svid="v")).payload()


def test_faults_on_the_channel_get_clear_errors_and_the_call_still_connects() -> None:
    agents: list[_FaultyAgent] = []

    class Recorded(CallRun):
        def __init__(self, settings: CallSettings, env: CallEnvironment) -> None:
            super().__init__(settings, env)
            self.agent.__class__ = _FaultyAgent
            agent = self.agent
            assert isinstance(agent, _FaultyAgent) and isinstance(self.consumer, ConsumerRole)
            assert isinstance(self.consumer.leg, AiortcConsumer)
            agent.consumer_leg, agent.env = self.consumer.leg, env
            agents.append(agent)

    report = _call(_settings(), run=Recorded)
    assert report.ok, report.failure
    faults = agents[0].faults
    assert faults[0] == "duplicate accept: ACCEPTED"
    assert faults[1] == "unknown serviceId: 404"
    assert "403" in faults[2] or "another consumer" in faults[2]
    ignored = [n for n in report.notes if "malformed signalling message" in n]
    assert len(ignored) == 2
    assert "offer.sdp" in ignored[0]


def _children() -> set[int]:
    """Live child processes of this process (started from any thread), zombies excluded."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(entry))
    return found


@pytest.mark.coturn
def test_a_finished_call_leaves_no_tasks_sockets_or_coturn_behind() -> None:
    async def body() -> None:
        fds_before = len(os.listdir("/proc/self/fd"))
        children_before = _children()
        tasks_before = set(asyncio.all_tasks())
        request = EnvironmentRequest(invite_expiry_s=2.0)
        async with call_environment(request) as env:
            if env.turn_url is None:
                pytest.skip("coturn's turnserver is not installed")
            assert _children() - children_before
            report = await run_call(_settings(policy="relay"), env)
            assert report.ok, report.failure
        leftovers = [t for t in asyncio.all_tasks() if t not in tasks_before and not t.done()]
        for task in leftovers:  # give cancelled tasks time to finish (bounded)
            await asyncio.wait({task}, timeout=10)
        assert [t for t in leftovers if not t.done()] == []
        assert _children() - children_before == set()
        assert len(os.listdir("/proc/self/fd")) <= fds_before

    run_bounded(body(), 90)


def test_wrong_emulator_url_fails_the_call_with_a_network_error_not_a_traceback() -> None:
    from callops.turn.coturn import free_port

    async def body() -> CallReport:
        env = CallEnvironment(base_url=f"http://127.0.0.1:{free_port()}")
        return await run_call(_settings(step_timeout_s=2.0), env)

    report = run_bounded(body(), 30)
    assert not report.ok
    assert report.outcome == "failed"
    assert report.failure is not None
    assert "127.0.0.1" in report.failure


def test_secret_never_appears_in_the_report() -> None:
    secret = Secret("s3cr3t-value-for-test", "test")
    report = _call(_settings(scenario="decline"))
    assert secret.reveal() not in report.model_dump_json()


def test_call_works_against_an_emulator_that_checks_signed_tokens() -> None:
    async def body() -> CallReport:
        request = EnvironmentRequest(embedded_turn=False, jwt_secret=Secret("emulator-jwt-secret", "test"))
        async with call_environment(request) as env:
            assert env.agent_token is not None
            return await run_call(_settings(), env)

    report = run_bounded(body(), 60)
    assert report.ok, report.failure


def test_unknown_scenario_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown scenario 'ring-forever'"):
        CallRun(_settings(scenario="ring-forever"), CallEnvironment(base_url="http://127.0.0.1:1"))


@pytest.mark.coturn
def test_any_call_that_cannot_connect_fails_with_unable_to_connect(local_turn: EmbeddedTurn) -> None:
    async def body() -> CallReport:
        request = EnvironmentRequest(turn_url=local_turn.url, turn_secret=Secret("not-the-secret", "test"))
        async with call_environment(request) as env:
            return await run_call(_settings(policy="relay", ice_timeout_s=2.0), env)

    report = run_bounded(body(), 60)
    assert not report.ok
    assert report.outcome == "failed"
    assert [e.id for e in report.errors] == ["UNABLE_TO_CONNECT"]
    assert "401: credentials rejected -- check the shared secret" in report.errors[0].msg
    assert "not-the-secret" not in report.model_dump_json()
    assert "closed" in report.timeline_ms


def test_call_through_an_emulator_given_by_url() -> None:
    from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

    async def body() -> CallReport:
        async with Emulator(EmulatorConfig()) as emulator:
            request = EnvironmentRequest(emulator_url=emulator.base_url, embedded_turn=False)
            async with call_environment(request) as env:
                assert env.base_url == emulator.base_url
                return await run_call(_settings(), env)

    report = run_bounded(body(), 60)
    assert report.ok, report.failure


@pytest.mark.coturn
def test_stun_server_is_used_for_gathering_and_the_call_connects(local_turn: EmbeddedTurn) -> None:
    async def body() -> CallReport:
        request = EnvironmentRequest(stun_url=f"stun:127.0.0.1:{local_turn.port}", embedded_turn=False)
        async with call_environment(request) as env:
            assert [s.url for s in env.ice_servers] == [f"stun:127.0.0.1:{local_turn.port}"]
            return await run_call(_settings(), env)

    report = run_bounded(body(), 60)
    assert report.ok, report.failure
    assert report.ice_servers == [f"stun:127.0.0.1:{local_turn.port}"]


def test_without_coturn_the_default_call_runs_host_only_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import callops.orchestrator.call.environment as environment

    monkeypatch.setattr(environment, "available", lambda: False)

    async def body() -> CallReport:
        async with call_environment(EnvironmentRequest()) as env:
            assert env.ice_servers == []
            return await run_call(_settings(), env)

    report = run_bounded(body(), 60)
    assert report.ok, report.failure
    assert any("runs host-only" in note for note in report.notes)


@pytest.mark.coturn
@pytest.mark.parametrize("scenario", ["decline", "cancel"])
def test_unanswered_calls_with_turn_leave_no_unclosed_socket(scenario: str) -> None:
    import gc

    report = _call(_settings(scenario=scenario), turn=True)
    assert report.ok, report.failure
    # an aioice TURN allocation left behind would surface here as an unclosed-socket ResourceWarning
    gc.collect()
