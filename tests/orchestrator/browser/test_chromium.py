"""Chromium in an isolated namespace: launch, console and exceptions, NSS trust, the namespace guard."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from callops.errors import RemoteProtocolError, UsageError
from callops.orchestrator.browser.chromium import (
    Chromium,
    ChromiumOptions,
    chromium_argv,
    trust_ca_in_profile,
)
from callops.orchestrator.browser.isolation import check_browser_namespace, run_in_namespace

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_argv_runs_the_binary_in_the_named_namespace_without_the_wrapper(tmp_path: Path) -> None:
    argv = chromium_argv(ChromiumOptions(netns="callops-browser-x", loopback_peers=True), tmp_path)
    assert argv[:4] == ["ip", "netns", "exec", "callops-browser-x"]
    assert argv[4] == "/usr/lib/chromium/chromium"
    for flag in ("--headless", "--remote-debugging-pipe", "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream", "--disable-background-networking", "--no-sandbox",
                 "--allow-loopback-in-peer-connection", f"--user-data-dir={tmp_path}"):  # fmt: skip
        assert flag in argv


def test_the_guard_refuses_unknown_names() -> None:
    with pytest.raises(UsageError, match="no such network namespace"):
        check_browser_namespace("callops-browser-does-not-exist")


@pytest.mark.usefixtures("route_out")
def test_the_guard_refuses_a_namespace_with_a_route_out() -> None:
    with pytest.raises(UsageError, match="route out"):
        check_browser_namespace(None)


def test_console_messages_exceptions_and_launch_time_are_collected(browser_netns: str) -> None:
    async def main() -> tuple[Chromium, list[tuple[str, str]], list[str]]:
        # netns=None: the caller's namespace, accepted because this thread has no route out
        async with await Chromium.launch(ChromiumOptions()) as browser:
            page = await browser.new_page()
            await page.navigate(
                "data:text/html,<script>console.warn('callops', 42); "
                "setTimeout(() => { throw new Error('boom') })</script>"
            )
            assert (
                await page.evaluate("new Promise(r => setTimeout(() => r(typeof RTCPeerConnection), 50))")
                == "function"
            )
            with pytest.raises(RemoteProtocolError, match="nope"):
                await page.evaluate("Promise.reject(new Error('nope'))")
            return browser, [(c.level, c.text) for c in page.console], page.exceptions

    browser, console, exceptions = run_in_namespace(browser_netns, main, 60)
    assert ("warning", "callops 42") in console
    assert any("boom" in text for text in exceptions)
    assert browser.version and browser.version[0].isdigit()
    assert browser.launch_to_ready_s is not None and 0 < browser.launch_to_ready_s < 20
    assert browser.process is not None and browser.process.poll() is not None  # killed on close


def test_no_network_from_the_isolated_namespace(browser_netns: str) -> None:
    async def main() -> str:
        async with await Chromium.launch(ChromiumOptions(netns=browser_netns)) as browser:
            page = await browser.new_page()
            return str(
                await page.evaluate(
                    "fetch('http://192.0.2.1/').then(() => 'reached', e => 'failed: ' + e.message)"
                )
            )

    assert run_in_namespace(browser_netns, main, 60).startswith("failed")


def test_the_ca_is_trusted_in_the_profile_nss_database(tmp_path: Path) -> None:
    from callops.turn.tls import make_self_signed

    if subprocess.run(["which", "certutil"], capture_output=True).returncode != 0:
        pytest.skip("certutil is missing (apt-get install libnss3-tools)")
    cert, _ = make_self_signed(tmp_path / "ca", ["127.0.0.1"])
    trust_ca_in_profile(tmp_path / "home", [cert])
    listing = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{tmp_path / 'home' / '.pki' / 'nssdb'}"],
        capture_output=True,
        text=True,
    ).stdout
    assert "callops-ca-0" in listing and "C,," in listing
