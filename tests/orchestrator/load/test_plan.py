"""The load plan: the documented ramp schedule, shard and worker shares, caps (pure)."""

from __future__ import annotations

import pytest

from callops.errors import UsageError
from callops.orchestrator.load.plan import MAX_STEPS, Caps, LoadPlan, Ramp, parse_shard

URI = "turn:127.0.0.1:3478"


def test_a_fixed_run_is_one_step() -> None:
    (step,) = LoadPlan(turn=URI, calls=7, duration_s=12).steps()
    assert (step.index, step.calls, step.start_s, step.duration_s) == (0, 7, 0.0, 12)


def test_the_ramp_adds_calls_in_bounded_steps() -> None:
    plan = LoadPlan(turn=URI, ramp=Ramp(start=10, step=20, max=75, step_s=5))
    assert [(s.calls, s.start_s) for s in plan.steps()] == [(10, 0), (30, 5), (50, 10), (70, 15)]
    assert plan.total_s == 20 and plan.peak_calls == 70
    long = LoadPlan(turn=URI, ramp=Ramp(start=1, step=1, max=10_000, step_s=2))
    assert len(long.steps()) == MAX_STEPS


def test_shards_and_workers_split_the_calls_without_overlap() -> None:
    owners: dict[int, tuple[int, int]] = {}
    for shard in range(3):
        plan = LoadPlan(turn=URI, shard_index=shard, shard_count=3, workers=2)
        for worker in range(2):
            for call in plan.call_ids(20, worker):
                assert call not in owners
                owners[call] = (shard, worker)
    assert sorted(owners) == list(range(1, 21))
    # growing the step keeps every call where it was (a ramp only adds calls)
    plan = LoadPlan(turn=URI, shard_index=1, shard_count=3, workers=2)
    assert set(plan.call_ids(10, 0)) <= set(plan.call_ids(20, 0))


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (LoadPlan(turn=URI, calls=601), "the plan reaches 601 concurrent calls, over the cap of 600"),
        (LoadPlan(turn=URI, calls=50, caps=Caps(max_rate=1000)), "the plan sends 5000 packets/s"),
        (LoadPlan(turn=URI, duration_s=901), "the plan runs 901 s, over the cap of 900 s"),
        (LoadPlan(turn="stun:127.0.0.1"), "not a turn:/turns: URI"),
        (LoadPlan(turn=URI, shard_index=2, shard_count=2), "--shard 2/2: the index must be below the count"),
        (LoadPlan(turn=URI, ramp=Ramp(start=50, max=10)), "--ramp-max 10 is below --ramp-start 50"),
    ],
)
def test_plans_over_the_caps_are_refused(plan: LoadPlan, message: str) -> None:
    with pytest.raises(UsageError) as info:
        plan.check()
    assert message in str(info.value) and info.value.exit_code == 2


def test_raised_caps_allow_a_bigger_plan() -> None:
    LoadPlan(turn=URI, calls=601, caps=Caps(max_calls=1000, max_rate=100_000)).check()


def test_transport_and_profile_come_from_the_plan() -> None:
    assert LoadPlan(turn="turns:127.0.0.1:5349").transport == "tls"
    assert LoadPlan(turn="turn:127.0.0.1?transport=tcp").transport == "tcp"
    video = LoadPlan(turn=URI, profile="video", video_bitrate_bps=500_000, video_fps=15).media
    assert (video.kind, video.bitrate_bps, video.fps) == ("video", 500_000, 15)


@pytest.mark.parametrize("text", ["1", "2/2", "a/3", "-1/2", "0/0"])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="expected i/N with 0 <= i < N"):
        parse_shard(text)
    assert parse_shard("3/4") == (3, 4)
