"""The one stop helper of the long commands: SIGINT, SIGTERM and SIGHUP handled alike."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from callops.orchestrator.cli.stopping import Stopped, run_stoppable, stop_exit_code, stop_signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_cancels_the_work_which_still_returns_what_it_knows(signum: signal.Signals) -> None:
    cleaned: list[str] = []

    async def work() -> str:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signum)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
            await asyncio.sleep(0)  # clean-up may still await
            cleaned.append("yes")
            return "partial report"
        return "full report"

    result, stopped = run_stoppable(work())
    assert (result, cleaned) == ("partial report", ["yes"])
    assert isinstance(stopped, Stopped) and stopped.signum == signum
    assert stopped.exit_code == 128 + signum and stopped.name == signum.name
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers removed afterwards


def test_work_that_lets_the_cancellation_through_gives_no_result_but_the_signal() -> None:
    async def work() -> str:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.sleep(30)
        return "never"

    result, stopped = run_stoppable(work())
    assert result is None and stopped is not None and stopped.signum == signal.SIGTERM
    assert run_stoppable(_quick()) == ("done", None)


async def _quick() -> str:
    return "done"


def test_synchronous_commands_get_stopped_raised_where_ctrl_c_raises_keyboardinterrupt() -> None:
    with pytest.raises(Stopped) as raised, stop_signals():
        os.kill(os.getpid(), signal.SIGHUP)  # delivered to this thread before kill() returns
    assert isinstance(raised.value, KeyboardInterrupt)
    assert stop_exit_code(raised.value) == 129 and stop_exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
