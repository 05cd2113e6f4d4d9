"""``callops load`` option checks: each bad option is named, exit 2, before any traffic (no relay)."""

from __future__ import annotations

import pytest

from callops.orchestrator.cli import main

#: nothing listens there: these runs must end at the option checks
RELAY = "turn:127.0.0.1:9"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["load", "--turn", RELAY, *args])
    code = exit_info.value.code
    return code if isinstance(code, int) else 1, capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calls", "0"], "--calls 0 must be at least 1"),
        (["--ramp-max", "0"], "--ramp-max 0 must be at least 1"),
        (["--duration", "0"], "--duration 0 must be positive"),
        (["--sample-calls", "11"], "--sample-calls 11 must be 0-10"),
        (["--ramp", "--step-duration", "1"], "invalid load plan: step_s:"),
        (["--shard", "2/2"], "--shard"),
    ],
)
def test_a_bad_option_is_named_with_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = _run(capsys, *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_ramp_options_are_checked_only_with_ramp(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLOPS_TURN_SECRET", raising=False)
    monkeypatch.delenv("CALLOPS_TURN_PASSWORD", raising=False)
    code, err = _run(capsys, "--step-duration", "1", "--calls", "1", "--duration", "1")
    # the plan is valid: the run stops at the missing credentials, not at the ramp's step length
    assert code == 2 and "needs credentials" in err and "step_s" not in err


def test_no_relay_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["load"])
    assert exit_info.value.code == 2 and "callops load needs --turn URI" in capsys.readouterr().err
