"""The directive table of ``turnserver.conf``: the writer refuses what would not read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from callops.errors import UsageError
from callops.secret import Secret
from callops.turn.config import TurnDeployment, render_turnserver_conf, write_turnserver_conf
from callops.turn.directives import (
    DIRECTIVES,
    SHORT_OPTIONS,
    format_directive,
    parse_turnserver_conf,
    render_lines,
)
from callops.turn.lint import PRESENCE_RULES


def test_short_options_read_as_their_directive() -> None:
    text = "\n".join(f"-{letter}" for letter in SHORT_OPTIONS) + "\n"
    assert [d.key for d in parse_turnserver_conf(text).directives] == list(SHORT_OPTIONS.values())
    assert SHORT_OPTIONS["a"] == "lt-cred-mech" and SHORT_OPTIONS["X"] == "external-ip"


@pytest.mark.parametrize(
    ("key", "value", "version", "why"),
    [
        ("no-tlsv1", None, (4, 7, 0), "not an option of coturn 4.7.0"),
        ("tlsv1", None, (4, 6, 1), "not an option of coturn 4.6.1"),
        ("fingerprint", "yes", None, "is a flag"),
        ("realm", None, None, "needs a value"),
        ("listening-port", "65536", None, "not a port"),
        ("relay-ip", "10.0.0.300", None, "not an IP address"),
        ("denied-peer-ip", "10.0.0.0/8", None, "CIDR"),
        ("cipher-list", 'A"B', None, "double quotes"),
        ("log-file", "/var/log/a\nb", None, "would not read back"),
        ("no-such-option", None, None, "not a directive callops knows"),
    ],
)
def test_format_directive_refuses_what_coturn_or_the_parser_would_read_otherwise(
    key: str, value: str | None, version: tuple[int, ...] | None, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        format_directive(key, value, version=version)


def test_a_directive_that_is_not_repeatable_is_written_once() -> None:
    assert render_lines([("listening-ip", "192.0.2.1"), ("listening-ip", "192.0.2.2")]).count("\n") == 2
    with pytest.raises(ValueError, match="realm may appear only once"):
        render_lines([("realm", "a.example"), ("realm", "b.example")])


def test_a_secret_that_would_not_read_back_is_refused_without_showing_it() -> None:
    deployment = TurnDeployment(realm="turn.example.com")
    with pytest.raises(UsageError) as caught:
        render_turnserver_conf(deployment, secret=Secret('"quoted-secret-value-1234"'))
    assert "quoted-secret-value" not in str(caught.value) and "static-auth-secret" in str(caught.value)


def test_a_path_with_a_line_break_is_a_usage_error_not_a_second_directive(tmp_path: Path) -> None:
    deployment = TurnDeployment.model_validate(
        {"realm": "turn.example.com", "tls_cert_file": "/etc/c.pem\nno-auth", "tls_key_file": "/etc/k.pem"}
    )
    with pytest.raises(UsageError, match="cert"):
        write_turnserver_conf(deployment, tmp_path / "t.conf", secret=Secret("x" * 32))
    assert not (tmp_path / "t.conf").exists()


def test_every_directive_a_rule_looks_for_is_in_the_table() -> None:
    assert {row.key for row in PRESENCE_RULES} <= set(DIRECTIVES)
    # a removed option has a removed-option row from the version it is gone
    removed = {row.key: row.since for row in PRESENCE_RULES if row.id == "removed-option"}
    assert removed == {spec.name: spec.until for spec in DIRECTIVES.values() if spec.until}
