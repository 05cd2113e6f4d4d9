"""Run a load plan: worker processes (one per core), step aggregation, sample calls, stop on signal.

The parent resolves the relay once (load goes to that address only), starts the workers with the
plan and the credentials (through the process pipe, never in ``argv``), gives them one start time,
and gathers their :class:`~.report.StepPart` messages. When every worker has reported a step, the
step is aggregated (per-call data pooled, figures recomputed), printed as a progress row, and
judged; a ramp stops at its first failing step. SIGINT/SIGTERM set the shared stop event: the
workers end their current step at once (counted as partial), release their allocations, and the
parent returns the report -- within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from callops.errors import CallopsError, NetworkError
from callops.orchestrator.load.cpu import (
    busy_percent,
    cpu_count,
    find_listener_pid,
    load_average,
    machine_cpu,
    process_cpu_s,
)
from callops.orchestrator.load.plan import LoadPlan
from callops.orchestrator.load.reporting import (
    LoadReport,
    SampleCall,
    StepPart,
    StepReport,
    StoppedBy,
    aggregate_step,
    conclude,
)
from callops.secret import Secret

log = logging.getLogger(__name__)

#: how long the parent waits for workers to report after a stop
STOP_GRACE_S = 0.7
#: how long the workers may take to spawn and import
WORKER_START_S = 60.0
#: how long sampled calls still running at the end of the load may take to finish
SAMPLE_GRACE_S = 20.0


#: a worker process and the parent's end of its pipe
_WorkerProcess = tuple[Connection, SpawnProcess]


@dataclass
class SampleCallAuth:
    """How the sampled aiortc calls authenticate (the same relay, the same credentials source)."""

    secret: Secret | None = None
    user: str | None = None
    password: Secret | None = None


@dataclass
class LoadRun:
    """One ``callops load`` run's inputs besides the plan."""

    username: str
    password: Secret
    sample_calls: int = 0
    sample_auth: SampleCallAuth = field(default_factory=SampleCallAuth)
    relay_pid: int | None = None
    progress: Callable[[StepReport], None] | None = None


def resolve_relay(plan: LoadPlan) -> tuple[str, int]:
    """The one address load goes to."""
    uri = plan.uri
    try:
        infos = socket.getaddrinfo(uri.host, uri.port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise NetworkError(
            f"{uri.label}: cannot resolve {uri.host}: {exc}", hint="check the relay's name"
        ) from None
    address = infos[0][4]
    return str(address[0]), int(address[1])


async def _sample_calls(
    plan: LoadPlan, auth: SampleCallAuth, count: int, *, step: int, calls_running: int, duration_s: float
) -> list[SampleCall]:
    """``count`` real aiortc calls through the relay (``--policy relay``), with their MOS."""
    from callops.orchestrator.call.environment import EnvironmentRequest, call_environment
    from callops.orchestrator.call.runs import CallSettings, run_call

    request = EnvironmentRequest(
        turn_url=plan.turn,
        turn_secret=auth.secret,
        turn_user=auth.user,
        turn_password=auth.password,
        embedded_turn=False,
    )
    settings = CallSettings(
        mode="VIDEO_CALL" if plan.media.kind == "video" else "VOICE_CALL",
        policy="relay",
        duration_s=duration_s,
        ice_timeout_s=10.0,
        media_timeout_s=10.0,
    )
    samples: list[SampleCall] = []
    async with call_environment(request) as env:
        reports = await asyncio.gather(
            *(run_call(settings, env) for _ in range(count)), return_exceptions=True
        )
    for item in reports:
        if isinstance(item, BaseException):
            samples.append(
                SampleCall(
                    step=step, calls_running=calls_running, ok=False, outcome="error", failure=str(item)
                )
            )
            continue
        quality = item.stats.audio_quality
        audio = [m for m in item.stats.media if m.kind == "audio"]
        samples.append(
            SampleCall(
                step=step,
                calls_running=calls_running,
                ok=item.ok,
                outcome=item.outcome,
                mos=min((q.mos for q in quality), default=None),
                rtt_ms=max((m.rtt_ms for m in audio if m.rtt_ms is not None), default=None),
                jitter_ms=max((m.jitter_ms for m in audio), default=None),
                loss_percent=max((m.loss_percent for m in audio), default=None),
                failure=item.failure,
            )
        )
    return samples


class _Parent:
    def __init__(self, plan: LoadPlan, run: LoadRun) -> None:
        self.plan = plan
        self.run = run
        self.steps = plan.steps()
        self.ctx = multiprocessing.get_context("spawn")
        self.stop = self.ctx.Event()
        self.stopped_by: StoppedBy = "plan"
        self.parts: dict[int, list[StepPart]] = {}
        self.reports: list[StepReport] = []
        self.samples: list[SampleCall] = []
        self.done: set[int] = set()
        self.errors: list[str] = []
        self.finished = asyncio.Event()
        #: set by the workers' end or a signal: the run stops waiting
        self.finished_or_stopped = asyncio.Event()
        self.step_cpu: dict[int, tuple[float | None, tuple[float, float] | None]] = {}
        self.relay_pid = run.relay_pid
        self.sample_tasks: list[asyncio.Task[None]] = []
        self.t0 = 0.0

    # -- workers ----------------------------------------------------------------------------------

    def _receive(self, conn: Connection) -> None:
        try:
            while conn.poll():
                message = conn.recv()
                self._handle(message)
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "step":
            part = StepPart.model_validate_json(message[1])
            self.parts.setdefault(part.step, []).append(part)
            if len(self.parts[part.step]) == self.plan.workers:
                self._step_complete(part.step)
        elif kind == "done":
            self.done.add(int(message[1]))
            if len(self.done) == self.plan.workers:
                self.finished.set()
        elif kind == "error":
            self.errors.append(str(message[1]))
            self.stopped_by = "error"
            self.stop.set()

    def _cpu_mark(self, index: int) -> None:
        pid = self.relay_pid
        self.step_cpu[index] = (process_cpu_s(pid) if pid else None, machine_cpu())

    def _step_complete(self, index: int) -> None:
        parts = self.parts.pop(index)
        plan_step = self.steps[index]
        wall = max(p.wall_s for p in parts) or plan_step.duration_s
        generator = 100 * sum(p.cpu_s for p in parts) / wall
        start = self.step_cpu.get(index)
        end = self.step_cpu.get(index + 1) or (
            (process_cpu_s(self.relay_pid) if self.relay_pid else None),
            machine_cpu(),
        )
        relay = None
        if start is not None and start[0] is not None and end[0] is not None:
            relay = 100 * (end[0] - start[0]) / wall
        machine = busy_percent(start[1], end[1]) if start is not None else None
        report = aggregate_step(
            index,
            plan_step.calls,
            [c for p in parts for c in p.calls],
            [p.histograms for p in parts],
            duration_s=wall,
            max_loss_percent=self.plan.thresholds.max_loss_percent,
            max_jitter_p99_ms=self.plan.thresholds.max_jitter_p99_ms,
            generator_cpu_percent=generator,
            relay_cpu_percent=relay,
            machine_cpu_percent=machine,
            partial=any(p.partial for p in parts),
            expected_calls=sum(len(self.plan.call_ids(plan_step.calls, w)) for w in range(self.plan.workers)),
        )
        self.reports.append(report)
        if self.run.progress is not None:
            self.run.progress(report)
        if self.plan.ramp is not None and not report.ok and not report.partial and not self.stop.is_set():
            self.stopped_by = "capacity"
            self.stop.set()

    async def _marks(self) -> None:
        """Sample the relay's and the machine's CPU at every step boundary."""
        loop = asyncio.get_running_loop()
        for step in self.steps:
            delay = self.t0 + step.start_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._cpu_mark(step.index)
            if self.run.sample_calls and not self.stop.is_set():
                self.sample_tasks.append(
                    loop.create_task(self._sample(step.index, step.calls, step.duration_s))
                )
        last = self.steps[-1]
        delay = self.t0 + last.start_s + last.duration_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._cpu_mark(len(self.steps))

    async def _sample(self, index: int, calls: int, step_s: float) -> None:
        await asyncio.sleep(min(1.0, step_s / 5))
        duration = max(1.0, min(10.0, step_s - 6.0))
        try:
            self.samples.extend(
                await _sample_calls(
                    self.plan,
                    self.run.sample_auth,
                    self.run.sample_calls,
                    step=index,
                    calls_running=calls,
                    duration_s=duration,
                )
            )
        except CallopsError as exc:
            self.samples.append(
                SampleCall(step=index, calls_running=calls, ok=False, outcome="error", failure=str(exc))
            )

    # -- the run ----------------------------------------------------------------------------------

    async def execute(self) -> LoadReport:
        server = resolve_relay(self.plan)
        if self.relay_pid is None and (server[0] == "::1" or server[0].startswith("127.")):
            self.relay_pid = find_listener_pid(server[1])
        loop = asyncio.get_running_loop()
        workers = self._spawn(server)
        installed = self._install_signal_handlers(loop)
        started = time.monotonic()
        marks: asyncio.Task[None] | None = None
        try:
            await self._wait_ready(workers)
            self.t0 = time.monotonic() + 0.2
            for conn, _ in workers:
                conn.send(("start", self.t0))
                loop.add_reader(conn.fileno(), self._receive, conn)
            marks = loop.create_task(self._marks())
            await self._wait_end(loop)
        finally:
            if marks is not None:
                marks.cancel()
            await self._cancel_samples()
            self._collect(loop, workers)
            for signum in installed:
                loop.remove_signal_handler(signum)
        # steps every worker reported in part (a stop cut them short): aggregate what there is
        for index in sorted(self.parts):
            if self.parts[index]:
                self._step_complete(index)
        return self._report(time.monotonic() - started)

    def _spawn(self, server: tuple[str, int]) -> list[_WorkerProcess]:
        """One process per worker; plan and credentials go through the pipe, never ``argv``."""
        from callops.orchestrator.load.worker import worker_main

        workers = []
        for index in range(self.plan.workers):
            parent_conn, child_conn = self.ctx.Pipe()
            process = self.ctx.Process(
                target=worker_main,
                args=(
                    self.plan.model_dump_json(),
                    index,
                    server,
                    self.run.username,
                    self.run.password.reveal(),
                    child_conn,
                    self.stop,
                ),
                name=f"callops-load-{index}",
                daemon=True,
            )
            process.start()
            child_conn.close()
            workers.append((parent_conn, process))
        return workers

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        """SIGINT/SIGTERM stop the workers' current step (the signals handled here, to remove)."""

        def on_signal() -> None:
            if not self.stop.is_set():
                log.warning("stopping: signal received")
                self.stopped_by = "signal"
                self.stop.set()
            self.finished_or_stopped.set()

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal)
                installed.append(signum)
        return installed

    async def _wait_ready(self, workers: list[_WorkerProcess]) -> None:
        """Every worker spawned and imported (so that one common start time is fair to all)."""
        not_started = CallopsError("the load workers did not start", hint="run again with --debug")
        ready = 0
        try:
            async with asyncio.timeout(WORKER_START_S):
                while ready < self.plan.workers and not self.stop.is_set():
                    for conn, _ in workers:
                        if conn.poll(0.01) and conn.recv()[0] == "ready":
                            ready += 1
                    if any(not process.is_alive() for _, process in workers):
                        raise not_started
                    await asyncio.sleep(0)
        except TimeoutError:
            raise not_started from None

    async def _wait_end(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until the workers are done, a signal stops them, or the plan's budget is spent."""
        waiter = loop.create_task(self.finished.wait())
        stopper = loop.create_task(self.finished_or_stopped.wait())
        budget = self.plan.total_s + 30.0
        await asyncio.wait({waiter, stopper}, timeout=budget, return_when=asyncio.FIRST_COMPLETED)
        if not self.finished.is_set():
            self.stop.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE_S):
                    await self.finished.wait()
        waiter.cancel()
        pending = [t for t in self.sample_tasks if not t.done()]
        if pending and self.stopped_by != "signal":  # let running sampled calls finish (bounded)
            samples = loop.create_task(asyncio.wait(pending, timeout=SAMPLE_GRACE_S))
            await asyncio.wait([samples, stopper], return_when=asyncio.FIRST_COMPLETED)
            samples.cancel()
        stopper.cancel()

    async def _cancel_samples(self) -> None:
        for task in self.sample_tasks:
            task.cancel()
        if self.sample_tasks:
            await asyncio.wait(self.sample_tasks, timeout=0.2)

    def _collect(self, loop: asyncio.AbstractEventLoop, workers: list[_WorkerProcess]) -> None:
        """Read what the workers still sent, then end them (politely first)."""
        for conn, _ in workers:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(conn.fileno())
            with contextlib.suppress(OSError, EOFError):
                while conn.poll():
                    self._handle(conn.recv())
        for _, process in workers:
            process.join(timeout=0.1)
            if process.is_alive():
                process.terminate()
        for _, process in workers:
            process.join(timeout=1.0)
            if process.is_alive():
                process.kill()

    def _report(self, duration_s: float) -> LoadReport:
        plan = self.plan
        self.reports.sort(key=lambda s: s.index)
        report = LoadReport(
            profile=plan.media.name,
            transport=plan.transport,
            relay=str(plan.uri),
            steps=self.reports,
            sample_calls=sorted(self.samples, key=lambda s: s.step),
            max_loss_percent=plan.thresholds.max_loss_percent,
            max_jitter_p99_ms=plan.thresholds.max_jitter_p99_ms,
            shards=[plan.shard_index],
            shard_count=plan.shard_count,
            workers=plan.workers,
            duration_s=round(duration_s, 3),
            stopped_by=self.stopped_by,
            machine=_machine(),
            notes=list(self.errors),
        )
        if self.relay_pid is None:
            report.notes.append("relay CPU not measured: the relay is not a process on this machine")
        threads = _threads(self.relay_pid) if self.relay_pid else None
        relay_threads = None if threads is None else min(threads, float(cpu_count()))
        return conclude(
            report, ramp=plan.ramp is not None, generator_cores=float(plan.workers), relay_cores=relay_threads
        )


def _machine() -> dict[str, float]:
    info: dict[str, float] = {"cpus": float(cpu_count())}
    load = load_average()
    if load is not None:
        info["loadavg_1m"], info["loadavg_5m"], info["loadavg_15m"] = load
    return info


def _threads(pid: int) -> float | None:
    from pathlib import Path

    with contextlib.suppress(OSError):
        return float(len(list(Path(f"/proc/{pid}/task").iterdir())))
    return None


async def run_load(plan: LoadPlan, run: LoadRun) -> LoadReport:
    """Run ``plan`` (checked against its caps first) and return the report; never unbounded."""
    plan.check()
    return await _Parent(plan, run).execute()


__all__ = ["LoadRun", "SampleCallAuth", "resolve_relay", "run_load"]
