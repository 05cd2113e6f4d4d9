"""The package and the command line as a user meets them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from callops.errors import CallopsError, UsageError, ValidationError
from callops.secret import Secret, load_secret, redact


def test_no_top_level_turn_or_consumer_module_is_installed(tmp_path: Path) -> None:
    # Run outside the repository, where only what is installed can be imported.
    code = (
        "import importlib.util as u, callops.turn, callops.consumer, callops.orchestrator, callops.deploy\n"
        "print([n for n in ('turn','consumer','orchestrator','deploy') if u.find_spec(n) is not None])"
    )
    res = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_help_does_not_import_aiortc_and_is_fast() -> None:
    code = (
        "import sys,time;t=time.perf_counter();from callops.orchestrator.cli import main\n"
        "try:\n main(['--help'])\nexcept SystemExit:\n pass\n"
        "assert 'aiortc' not in sys.modules, 'aiortc imported';assert 'aioice' not in sys.modules\n"
        "print(time.perf_counter()-t, file=sys.stderr)"
    )
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "Commands:" in res.stdout
    assert time.perf_counter() - started < 5


def test_errors_carry_exit_codes_and_hints() -> None:
    err = UsageError("no secret given", hint="pass --secret-file")
    assert err.exit_code == 2 and "pass --secret-file" in str(err)
    verr = ValidationError("cobrowseOffered", [("serviceId", "missing"), ("ssid", "empty")])
    assert verr.fields == ["serviceId", "ssid"]
    assert "serviceId" in str(verr) and "ssid" in str(verr)
    assert issubclass(ValidationError, CallopsError)


def test_secrets_do_not_print_themselves(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    s = Secret("hunter2-very-secret", source="env X")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    monkeypatch.setenv("CALLOPS_TEST_SECRET", "topsecretvalue")
    loaded = load_secret(file=None, env="CALLOPS_TEST_SECRET")
    assert loaded is not None and loaded.reveal() == "topsecretvalue"
    with pytest.raises(UsageError, match="CALLOPS_TEST_MISSING"):
        load_secret(file=None, env="CALLOPS_TEST_MISSING")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJlX2hlcmU"
    assert redact(f"token {jwt} and topsecretvalue", [loaded]) == "token *** and ***"


def test_cli_renders_errors_once_with_exit_code() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "callops", "turn", "--no-such-option"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
