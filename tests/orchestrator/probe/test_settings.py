"""Probe settings: config file, then environment, then flags; credentials from files or env only."""

from __future__ import annotations

from pathlib import Path

import pytest

from callops.errors import ConfigError, UsageError
from callops.orchestrator.probe.settings import (
    DEFAULT_REST_USER,
    ProbeSettings,
    load_credentials,
    merge_settings,
    settings_from_env,
)
from callops.secret import Secret
from callops.turn.credentials import rest_password

CONFIG = {"stun": ["stun:203.0.113.10"], "turn": ["turn:203.0.113.10"], "timeout": 7}


def test_environment_overrides_the_config_and_flags_override_both() -> None:
    env = {"CALLOPS_PROBE_TIMEOUT": "4", "CALLOPS_PROBE_STUN": "stun:198.51.100.1, stun:198.51.100.2"}
    s = merge_settings(CONFIG, env, {}, source="test")
    assert s.timeout == 4
    assert s.stun == ["stun:198.51.100.1", "stun:198.51.100.2"]
    assert s.turn == ["turn:203.0.113.10"]
    s = merge_settings(CONFIG, env, {"timeout": 2.5, "stun": ("stun:192.0.2.1",), "turn": ()}, source="test")
    assert (s.timeout, s.stun, s.turn) == (2.5, ["stun:192.0.2.1"], ["turn:203.0.113.10"])


def test_a_password_file_flag_replaces_a_configured_secret_file() -> None:
    s = merge_settings({"secret_file": "/a"}, {}, {"user": "u", "password_file": "/p"}, source="t")
    assert s.secret_file is None and s.password_file == Path("/p")


def test_an_unknown_config_field_is_named() -> None:
    with pytest.raises(ConfigError, match="stun_servers"):
        merge_settings({"stun_servers": []}, {}, {}, source="callops.yaml")


def test_insecure_from_the_environment_is_a_boolean() -> None:
    assert settings_from_env({"CALLOPS_PROBE_INSECURE": "yes"}) == {"insecure": True}


def test_without_stun_the_first_udp_turn_server_answers_stun() -> None:
    s = ProbeSettings(turn=["turns:203.0.113.10:443", "turn:203.0.113.10:3478?transport=udp"])
    assert [str(u) for u in s.stun_uris()] == ["stun:203.0.113.10:3478"]


def test_a_turn_uri_passed_as_stun_is_refused() -> None:
    with pytest.raises(UsageError, match="pass it with --turn"):
        ProbeSettings(stun=["turn:203.0.113.10"]).stun_uris()


def test_rest_credentials_come_from_the_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    creds = load_credentials(ProbeSettings(secret_file=secret), {}, now=1000.0)
    assert creds.kind == "rest"
    assert creds.username == f"4600:{DEFAULT_REST_USER}"
    assert creds.password is not None
    assert creds.password.reveal() == rest_password(Secret("s3cret"), creds.username)


def test_long_term_credentials_from_the_environment_need_a_user() -> None:
    creds = load_credentials(ProbeSettings(user="alice"), {"CALLOPS_TURN_PASSWORD": "pw"}, now=0)
    assert creds.kind == "long-term" and creds.username == "alice"
    with pytest.raises(UsageError, match="needs --user"):
        load_credentials(ProbeSettings(password_file=Path("/x")), {}, now=0)


def test_turn_servers_without_credentials_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no credentials"):
        load_credentials(ProbeSettings(turn=["turn:203.0.113.10"]), {}, now=0)
