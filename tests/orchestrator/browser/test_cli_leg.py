"""``call-site --leg chromium``: bad combinations and an unsafe namespace are usage errors (exit 2);
no browser starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from callops.errors import UsageError
from callops.orchestrator.cli.call_site import call_site

BASE = ["--emulator", "http://127.0.0.1:9", "--timeout", "1"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--role", "agent", "--leg", "chromium"], "not supported"),
        (["--role", "agent", "--scenario", "decline"], "not supported"),
        (
            ["--role", "consumer", "--leg", "chromium", "--browser-netns", "callops-browser-nope"],
            "no such network namespace",
        ),
    ],
)
def test_bad_leg_options_are_usage_errors(args: list[str], expected: str) -> None:
    result = CliRunner().invoke(call_site, [*BASE, *args])
    assert isinstance(result.exception, UsageError), result.output  # rendered with exit code 2
    assert expected in str(result.exception)


@pytest.mark.usefixtures("route_out")
def test_chromium_is_refused_where_it_could_reach_the_internet() -> None:
    result = CliRunner().invoke(call_site, [*BASE, "--role", "consumer", "--leg", "chromium"])
    assert isinstance(result.exception, UsageError) and "route out" in str(result.exception)
