"""Fixtures shared by the orchestrator's NAT-lab tests (the matrix, the call-site matrix, the profile),
by its ``call-site`` process tests (call_site/, browser/), and a loopback coturn.

Tests cannot import this module (``--import-mode=importlib``); they take the helpers below through
the ``lab_kit`` and ``site_kit`` fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import pytest

from callops.orchestrator.lab.lifecycle import LabState, lab_down, lab_up
from callops.orchestrator.lab.netns import exec_argv, lab_environment_problem
from callops.orchestrator.lab.topology import SIGNALLING_PORT
from callops.secret import Secret
from callops.turn.coturn import LoopbackCoturn, find_turnserver, start_loopback_coturn

#: the longest one process of a lab test may take before the test fails instead of hanging
PROCESS_TIMEOUT = 60.0


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LabState]:
    """A lab for the parametrised row (``.agent``, ``.consumer``), under the test module's ``PREFIX``.

    Skips only where root, ``ip netns`` or iptables are missing; always torn down, also on failure.
    """
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    row = request.param
    prefix: str = request.module.PREFIX
    root = tmp_path / "run"
    root.mkdir()
    try:
        yield lab_up(row.agent, row.consumer, prefix=prefix, root=root)
    finally:
        lab_down(prefix, root=root)


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[Callable[..., LoopbackCoturn]]:
    """Factory: coturn on 127.0.0.1 (UDP/TCP and TLS), use-auth-secret with a random secret, loopback
    peers allowed (``rfc5780``: its second address, as :func:`start_loopback_coturn`); every one
    started is stopped after the test."""
    find_turnserver()
    started: list[LoopbackCoturn] = []

    def start(*, rfc5780: bool = True) -> LoopbackCoturn:
        workdir = tmp_path / f"coturn{len(started) or ''}"
        workdir.mkdir()
        secret = Secret(secrets.token_hex(16), source="test")
        server = start_loopback_coturn(
            workdir, secret=secret, extra=["allow-loopback-peers"], rfc5780=rfc5780
        )
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.process.stop()


class LabKit:
    """The NAT-lab helpers, as one fixture (``lab_kit``; test modules here do not import each other)."""

    #: the longest one process of a lab test may take before the test fails instead of hanging
    process_timeout = PROCESS_TIMEOUT

    @staticmethod
    def callops(state: LabState, host: str, *args: str) -> list[str]:
        """``python -m callops ARGS`` in the namespace of the lab's ``host``."""
        return exec_argv(state.namespace(host), [sys.executable, "-m", "callops", *args])

    @staticmethod
    def run_json(state: LabState, host: str, *args: str, timeout: float = PROCESS_TIMEOUT) -> dict[str, Any]:
        """The JSON report ``callops ARGS`` prints on the lab's ``host``, with its exit code as ``_exit``."""
        res = subprocess.run(
            LabKit.callops(state, host, *args), capture_output=True, text=True, timeout=timeout
        )
        assert res.stdout, res.stderr
        report: dict[str, Any] = json.loads(res.stdout)
        report["_exit"] = res.returncode
        return report

    @staticmethod
    def wait_line(proc: subprocess.Popen[str], stream: IO[str] | None, want: str, within: float) -> str:
        """The first line of ``stream`` containing ``want``, bounded by ``within`` seconds."""
        assert stream is not None
        deadline = time.monotonic() + within
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {want!r} within {within:g} s: {seen}"
            ready, _, _ = select.select([stream], [], [], left)
            if not ready:
                continue
            line = stream.readline()
            assert line, f"process exited ({proc.poll()}) before {want!r}: {seen}"
            if want in line:
                return str(line)
            seen.append(line)

    @staticmethod
    def stop(proc: subprocess.Popen[str]) -> None:
        """Terminate ``proc`` (killed if it lingers) and close its pipes."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    @staticmethod
    @contextmanager
    def responder(state: LabState, *args: str) -> Iterator[None]:
        """``callops probe serve --listen 0.0.0.0:<signalling port> ARGS`` on the agent, listening, until
        the block ends."""
        argv = LabKit.callops(
            state, "agent", "probe", "serve", "--listen", f"0.0.0.0:{SIGNALLING_PORT}", *args
        )
        serve = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # The responder prints one line once it listens (or dies): wait for it, bounded.
            LabKit.wait_line(serve, serve.stderr, "listening", PROCESS_TIMEOUT)
            yield
        finally:
            LabKit.stop(serve)

    @staticmethod
    def site_call(
        state: LabState, consumer: Sequence[str], agent: Sequence[str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A call through the invitation path, (consumer report, agent report): ``callops emulator serve``
        on the agent's host, ``call-site --role consumer CONSUMER`` in the consumer's site, and once it is
        ready ``call-site --role agent AGENT`` on the agent's host for its conversation."""
        procs: list[subprocess.Popen[str]] = []

        def start(host: str, *args: str) -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                LabKit.callops(state, host, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            procs.append(proc)
            return proc

        common = ["--policy", "all", "--duration", "1", "--timeout", str(PROCESS_TIMEOUT), "--json"]
        emulator_url = state.signalling_url("agent").replace("ws://", "http://")
        try:
            emulator = start(
                "agent", "emulator", "serve", "--host", "0.0.0.0", "--port", str(SIGNALLING_PORT)
            )
            LabKit.wait_line(emulator, emulator.stdout, "emulator on", PROCESS_TIMEOUT)
            side = start(
                "consumer", "call-site", "--role", "consumer", "--emulator", emulator_url, *consumer, *common
            )
            line = LabKit.wait_line(side, side.stderr, '"event": "ready"', PROCESS_TIMEOUT)
            conversation = json.loads(line)["conversation_id"]
            to_call = ["--emulator", f"http://127.0.0.1:{SIGNALLING_PORT}", "--conversation", conversation]
            agent_side = start("agent", "call-site", "--role", "agent", *to_call, *agent, *common)
            a_out, a_err = agent_side.communicate(timeout=PROCESS_TIMEOUT)
            c_out, c_err = side.communicate(timeout=PROCESS_TIMEOUT)
            assert c_out, c_err[-3000:]
            assert a_out, a_err[-3000:]
            return json.loads(c_out), json.loads(a_out)
        finally:
            for proc in reversed(procs):
                LabKit.stop(proc)

    @staticmethod
    def check_selected_pair(
        call_via: str, local: str, remote: str, relay_protocol: str | None, seen: object
    ) -> None:
        """A call's selected pair (its candidate types, the local relay's protocol) is what ``call_via``
        says: "host", "no-relay", "any", "relay-udp" (either side's relay, UDP if the local one), or
        "relay-<transport>" (the consumer's own relay over that transport)."""
        if call_via == "host":
            assert (local, remote) == ("host", "host"), seen
        elif call_via == "no-relay":
            assert "relay" not in (local, remote), seen
        elif call_via == "relay-udp":
            # Either side's relay will do: both reach their TURN server over UDP.
            assert "relay" in (local, remote), seen
            assert local != "relay" or relay_protocol == "udp", seen
        elif call_via.startswith("relay-"):
            # The consumer has no UDP: its own relay, over the one transport that works.
            assert local == "relay", seen
            assert relay_protocol == call_via.removeprefix("relay-"), seen


@pytest.fixture(scope="session")
def lab_kit() -> LabKit:
    return LabKit()


# -- call-site processes (asyncio) ----------------------------------------------------------------


class StartSide(Protocol):
    async def __call__(self, role: str, *more: str, output: int = ...) -> asyncio.subprocess.Process: ...


class SiteKit:
    """The call-site process helpers, as one fixture (``site_kit``)."""

    @staticmethod
    async def line_with(stream: asyncio.StreamReader | None, needle: str, within: float) -> str:
        """The first line of a process's ``stream`` containing ``needle``, bounded by ``within`` seconds."""
        assert stream is not None
        async with asyncio.timeout(within):
            while True:
                line = (await stream.readline()).decode()
                assert line, f"the process ended before printing {needle!r}"
                if needle in line:
                    return line

    @staticmethod
    async def ready(proc: asyncio.subprocess.Process, within: float) -> str:
        """The conversation id from the consumer side's readiness line on stderr (other lines skipped)."""
        assert proc.stderr is not None
        async with asyncio.timeout(within):
            while True:
                line = await proc.stderr.readline()
                assert line, "the consumer side exited before it was ready"
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and event.get("event") == "ready":
                        return str(event["conversation_id"])

    @staticmethod
    def report(out: bytes, err: bytes, who: str) -> dict[str, Any]:
        """A side's JSON report from its stdout; without one, an assertion naming ``who`` with its stderr."""
        try:
            report = json.loads(out)
        except ValueError:
            raise AssertionError(f"{who}: no JSON report; stderr: {err.decode()[-2000:]}") from None
        assert isinstance(report, dict)
        return report

    @staticmethod
    @asynccontextmanager
    async def call_sites(
        *common: str, verbose: bool = False, prefix: Sequence[str] = ()
    ) -> AsyncIterator[StartSide]:
        """A starter of ``callops [-v] call-site --role ROLE COMMON MORE`` processes (``prefix``: e.g.
        ``ip netns exec NS``; stdout and stderr to ``output``: pipes unless told); those still running
        when the block ends are killed."""
        procs: list[asyncio.subprocess.Process] = []
        options = ["-v"] if verbose else []

        async def start(
            role: str, *more: str, output: int = asyncio.subprocess.PIPE
        ) -> asyncio.subprocess.Process:
            argv = [*prefix, sys.executable, "-m", "callops", *options, "call-site", "--role", role]
            proc = await asyncio.create_subprocess_exec(*argv, *common, *more, stdout=output, stderr=output)
            procs.append(proc)
            return proc

        try:
            yield start
        finally:
            for proc in procs:
                await SiteKit.reap(proc)

    @staticmethod
    async def reap(proc: asyncio.subprocess.Process) -> None:
        """Kill ``proc`` if it still runs, and wait for it to end."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()


@pytest.fixture
def site_kit() -> SiteKit:
    return SiteKit()
