"""Debian's Chromium, headless, driven over the DevTools protocol on ``--remote-debugging-pipe``.

:meth:`Chromium.launch` starts ``/usr/lib/chromium/chromium`` (the binary, not the wrapper script)
with a temporary ``HOME`` and profile, fake media devices and everything that phones home turned
off -- and, above all, inside a network namespace with no route out
(:func:`callops.orchestrator.browser.isolation.check_browser_namespace` refuses the root one). The
browser runs in its own process group with a parent-death signal, and is killed in ``finally``.

``turns:`` servers are checked by Chromium as for real visitors: the CAs in
:attr:`ChromiumOptions.trusted_ca` are added to the temporary profile's NSS database
(``certutil``, libnss3-tools); nothing turns certificate checking off.

A :class:`Page` collects console messages and page exceptions (they go to the call report),
navigates, and evaluates expressions (``awaitPromise``: the page decides when an answer is ready;
no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callops.errors import DeadlineExceeded, EnvironmentProblem, LocalProtocolError, RemoteProtocolError
from callops.orchestrator.browser.cdp import CdpConnection, CommandResult, Event
from callops.orchestrator.browser.isolation import CHROMIUM_BINARY, check_browser_namespace

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
#: console and exception entries kept per page (the oldest are dropped beyond)
MAX_CONSOLE_ENTRIES = 500


@dataclass
class ChromiumOptions:
    """How one browser starts."""

    #: network namespace to start in; None: the caller's own (refused when that is the root one)
    netns: str | None = None
    #: the page's peers are on 127.0.0.1 (Chromium drops loopback candidates otherwise)
    loopback_peers: bool = False
    #: PEM CA certificates trusted in the profile's NSS database (``turns:`` with a lab CA)
    trusted_ca: Sequence[Path] = ()
    #: http:// origins treated as secure contexts (getUserMedia needs one)
    secure_origins: Sequence[str] = ()
    #: grant camera/microphone (fake devices); False: every permission prompt is denied
    grant_media: bool = True
    binary: str = CHROMIUM_BINARY
    launch_timeout_s: float = 20.0
    extra_args: Sequence[str] = ()


def chromium_argv(options: ChromiumOptions, profile: Path) -> list[str]:
    """The command line (pure); prefixed with ``ip netns exec`` when a namespace is named."""
    disabled = "WebRtcHideLocalIpsWithMdns,MediaRouter,OptimizationHints,Translate,DialMediaRouteProvider"
    argv = [
        options.binary,
        "--headless",
        "--remote-debugging-pipe",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-gpu",
        "--no-sandbox",
        "--no-pings",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-default-apps",
        "--disable-extensions",
        "--password-store=basic",
        "--autoplay-policy=no-user-gesture-required",
        f"--disable-features={disabled}",
        "--use-fake-device-for-media-stream",
    ]
    if options.grant_media:
        argv.append("--use-fake-ui-for-media-stream")
    else:
        argv.append("--deny-permission-prompts")
    if options.loopback_peers:
        argv.append("--allow-loopback-in-peer-connection")
    if options.secure_origins:
        argv.append("--unsafely-treat-insecure-origin-as-secure=" + ",".join(options.secure_origins))
    argv += [*options.extra_args, "about:blank"]
    if options.netns is not None:
        argv = ["ip", "netns", "exec", options.netns, *argv]
    return argv


def trust_ca_in_profile(home: Path, cas: Sequence[Path]) -> None:
    """Create ``$HOME/.pki/nssdb`` and trust each CA for TLS servers (``certutil -t C,,``)."""
    if not cas:
        return
    if shutil.which("certutil") is None:
        raise EnvironmentProblem("'certutil' is missing", hint="apt-get install libnss3-tools")
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    commands = [["certutil", "-N", "-d", f"sql:{db}", "--empty-password"]]
    for index, ca in enumerate(cas):
        if not ca.is_file():
            raise EnvironmentProblem(f"CA file {ca} does not exist")
        commands.append(
            ["certutil", "-A", "-d", f"sql:{db}", "-n", f"callops-ca-{index}", "-t", "C,,", "-i", str(ca)]
        )
    for argv in commands:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        if res.returncode != 0:
            raise EnvironmentProblem(f"'{' '.join(argv[:2])}' failed: {res.stderr.strip() or res.returncode}")


class _PipeReader(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        self._on_data = on_data
        self._on_eof = on_eof

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_eof()


class Chromium:
    """One running browser; use :meth:`launch` (an async context manager via ``async with``)."""

    def __init__(self, options: ChromiumOptions) -> None:
        self.options = options
        self.version: str | None = None
        #: seconds from starting the process to a page attached and ready for commands
        self.launch_to_ready_s: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._cdp = CdpConnection()
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None
        self._waiting: dict[int, asyncio.Future[CommandResult]] = {}
        self._listeners: list[Callable[[Event], None]] = []
        self._gone = asyncio.Event()

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    async def launch(cls, options: ChromiumOptions) -> Chromium:
        browser = cls(options)
        try:
            await browser._start()
        except BaseException:
            await browser.close()
            raise
        return browser

    async def __aenter__(self) -> Chromium:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, argv: list[str], env: dict[str, str]) -> tuple[int, int, float]:
        """Start Chromium with the DevTools pipe on its fds 3 and 4: our ends ``(to, from)`` and
        when it started (monotonic)."""
        assert self._dir is not None
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Above 3/4 so that dup2 onto 3 and 4 in the child cannot clobber one of them.
        import fcntl

        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 100)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 100)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def child() -> None:  # runs in the forked child, before exec
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

        stderr = open(self._dir / "chromium.log", "wb")  # noqa: SIM115 -- closed below
        started = time.monotonic()
        try:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                close_fds=False,
                preexec_fn=child,  # noqa: PLW1509 -- dup2 + prctl only
            )
        except FileNotFoundError as exc:
            raise EnvironmentProblem(f"cannot start Chromium: {exc}") from None
        finally:
            stderr.close()
            os.close(high_r)
            os.close(high_w)
        log.info("chromium started (pid %d, namespace %s)", self.process.pid, self.options.netns or "(own)")
        return to_browser_w, from_browser_r, started

    async def _start(self) -> None:
        options = self.options
        check_browser_namespace(options.netns)
        if not os.access(options.binary, os.X_OK):
            raise EnvironmentProblem(f"{options.binary} is missing", hint="apt-get install chromium")
        self._dir = Path(tempfile.mkdtemp(prefix="callops-chromium-"))
        home, profile = self._dir / "home", self._dir / "profile"
        home.mkdir()
        profile.mkdir()
        trust_ca_in_profile(home, options.trusted_ca)
        argv = chromium_argv(options, profile)
        env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        to_browser_w, from_browser_r, started = self._spawn(argv, env)
        loop = asyncio.get_running_loop()
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(to_browser_w, "wb", 0))
        self._reader, _ = await loop.connect_read_pipe(
            lambda: _PipeReader(self._received, self._gone.set), os.fdopen(from_browser_r, "rb", 0)
        )
        try:
            async with asyncio.timeout(options.launch_timeout_s):
                version = await self.command("Browser.getVersion")
        except TimeoutError:
            raise DeadlineExceeded(
                f"Chromium did not answer within {options.launch_timeout_s:g} s: {self.log_tail()}"
            ) from None
        product = str(version.get("product", ""))
        self.version = product.partition("/")[2] or product
        self.launch_to_ready_s = time.monotonic() - started

    def log_tail(self, lines: int = 8) -> str:
        if self._dir is None:
            return ""
        with contextlib.suppress(OSError):
            text = (self._dir / "chromium.log").read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:])
        return ""

    async def close(self) -> None:
        """Close gracefully if possible, then kill the process group; remove the profile."""
        try:
            if self.process is not None and self.process.poll() is None and not self._gone.is_set():
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await self.command("Browser.close")
                        await self._gone.wait()
        finally:
            if self.process is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=5)
            for transport in (self._writer, self._reader):
                if transport is not None:
                    transport.close()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(LocalProtocolError("Chromium closed"))
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    # -- the protocol ------------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        try:
            messages = self._cdp.receive_data(data)
        except RemoteProtocolError as exc:
            log.error("chromium: %s", exc.message)
            self._gone.set()
            return
        for message in messages:
            if isinstance(message, CommandResult):
                future = self._waiting.pop(message.id, None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                for listener in list(self._listeners):
                    listener(message)

    async def command(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        """Send one command; its ``result`` (RemoteProtocolError with Chromium's message on error)."""
        if self._writer is None or self._gone.is_set():
            raise LocalProtocolError(f"{method}: Chromium is not running ({self.log_tail(3)})")
        command_id = self._cdp.send_command(method, params, session_id)
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        self._writer.write(self._cdp.data_to_send())
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            waiters: set[asyncio.Future[Any]] = {future, gone}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not future.done():
            self._waiting.pop(command_id, None)
            raise LocalProtocolError(f"{method}: Chromium exited ({self.log_tail(3)})")
        answer = future.result()
        if answer.error is not None:
            raise RemoteProtocolError(f"DevTools {method}: {answer.error.get('message', answer.error)}")
        return answer.result

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    async def new_page(self) -> Page:
        """A fresh tab, attached (flat session), with Runtime, Page and Log events on."""
        target = await self.command("Target.createTarget", {"url": "about:blank"})
        attached = await self.command(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, str(attached["sessionId"]), str(target["targetId"]))
        self.add_listener(page._event)
        for method in ("Runtime.enable", "Page.enable", "Log.enable"):
            await page.command(method)
        return page


@dataclass
class ConsoleEntry:
    """One console message, log entry or uncaught exception of a page."""

    level: str
    text: str


def _console_text(params: dict[str, Any]) -> str:
    parts = []
    for arg in params.get("args", []):
        if "value" in arg:
            value = arg["value"]
            parts.append(value if isinstance(value, str) else repr(value))
        else:
            parts.append(str(arg.get("description", arg.get("type", ""))))
    return " ".join(parts)


@dataclass
class Page:
    """One attached tab."""

    browser: Chromium
    session_id: str
    target_id: str
    console: list[ConsoleEntry] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    _loaded: asyncio.Event = field(default_factory=asyncio.Event)

    def _keep(self, entry: ConsoleEntry) -> None:
        self.console.append(entry)
        del self.console[:-MAX_CONSOLE_ENTRIES]

    def _event(self, event: Event) -> None:
        if event.session_id != self.session_id:
            return
        params = event.params
        if event.method == "Runtime.consoleAPICalled":
            self._keep(ConsoleEntry(str(params.get("type", "log")), _console_text(params)))
        elif event.method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = str(details.get("exception", {}).get("description") or details.get("text", "exception"))
            self.exceptions.append(text)
            del self.exceptions[:-MAX_CONSOLE_ENTRIES]
            self._keep(ConsoleEntry("exception", text))
        elif event.method == "Log.entryAdded":
            entry = params.get("entry", {})
            self._keep(ConsoleEntry(str(entry.get("level", "info")), str(entry.get("text", ""))))
        elif event.method == "Page.loadEventFired":
            self._loaded.set()

    async def command(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.command(method, params, session_id=self.session_id)

    async def navigate(self, url: str, timeout: float = 15.0) -> None:
        """Load ``url`` and wait for its load event (a network error is raised with its text)."""
        self._loaded.clear()
        result = await self.command("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise RemoteProtocolError(f"Chromium could not load {url}: {result['errorText']}")
        try:
            await asyncio.wait_for(self._loaded.wait(), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"{url} did not finish loading within {timeout:g} s") from None

    async def reload(self, timeout: float = 15.0) -> None:
        self._loaded.clear()
        await self.command("Page.reload", {"ignoreCache": True})
        try:
            await asyncio.wait_for(self._loaded.wait(), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"the page did not reload within {timeout:g} s") from None

    async def evaluate(self, expression: str, timeout: float = 15.0) -> Any:
        """The JSON value of ``expression`` (a Promise is awaited); a page exception is raised as
        RemoteProtocolError with its description."""
        try:
            async with asyncio.timeout(timeout):
                result = await self.command(
                    "Runtime.evaluate",
                    {"expression": expression, "awaitPromise": True, "returnByValue": True},
                )
        except TimeoutError:
            raise DeadlineExceeded(
                f"the page did not answer {expression[:60]!r} within {timeout:g} s"
            ) from None
        details = result.get("exceptionDetails")
        if details:
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            raise RemoteProtocolError(f"page: {text}")
        return result.get("result", {}).get("value")


__all__ = ["Chromium", "ChromiumOptions", "ConsoleEntry", "Page", "chromium_argv", "trust_ca_in_profile"]
