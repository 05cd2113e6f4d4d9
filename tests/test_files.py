"""Bounded reads of user-named files: regular files only, capped, never blocking.

Each hostile path is a real one: a FIFO without a writer (``open`` would block forever without
O_NONBLOCK), ``/dev/zero`` (endless), a directory, a sparse file larger than the cap, a missing and
an unreadable file. The CLI cases run ``callops.orchestrator.cli.main`` in-process (so the 1 s
bound measures callops, not the interpreter's start-up) and once as a real process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from callops.errors import ConfigError, UsageError
from callops.files import CONFIG_CAP, SECRET_CAP, read_user_file, read_user_text
from callops.orchestrator.cli import main

Maker = Callable[[Path], Path]


def fifo(tmp: Path) -> Path:
    path = tmp / "pipe"
    os.mkfifo(path)
    return path


def directory(tmp: Path) -> Path:
    path = tmp / "adir"
    path.mkdir()
    return path


def dev_zero(tmp: Path) -> Path:
    return Path("/dev/zero")


def huge(tmp: Path) -> Path:
    path = tmp / "huge"
    with open(path, "wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB on paper, nothing on disk
    return path


def missing(tmp: Path) -> Path:
    return tmp / "missing"


HOSTILE: dict[str, tuple[Maker, str]] = {
    "fifo": (fifo, "is a FIFO (named pipe), not a regular file"),
    "directory": (directory, "is a directory, not a regular file"),
    "dev-zero": (dev_zero, "is a character device, not a regular file"),
    "huge": (huge, "over the limit of"),
    "missing": (missing, "does not exist"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_paths_are_refused_at_once_naming_path_and_reason(tmp_path: Path, kind: str) -> None:
    make, reason = HOSTILE[kind]
    path = make(tmp_path)
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        read_user_file(path, what="config file", cap=CONFIG_CAP, error=ConfigError)
    assert time.monotonic() - started < 1.0
    assert caught.value.exit_code == 2
    assert str(path) in caught.value.message and reason in caught.value.message


def test_a_file_that_is_not_readable_is_refused() -> None:
    """Run as an unprivileged user (root reads every file) against a 0600 file of root's."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to act as another user")
    with tempfile.TemporaryDirectory(prefix="callops-input-") as directory:
        os.chmod(directory, 0o755)
        path = Path(directory) / "secret"
        path.write_text("s3cret-value-123456")
        path.chmod(0o600)
        code = (
            "import sys\n"
            "from callops.errors import UsageError\n"
            "from callops.files import SECRET_CAP, read_user_file\n"
            "try:\n"
            f"    read_user_file({str(path)!r}, what='secret file', cap=SECRET_CAP)\n"
            "except UsageError as exc:\n"
            "    print(exc.message)\n"
        )
        root = str(Path(__file__).resolve().parents[1])
        result = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "PYTHONPATH": root},
            cwd="/",
        )
    assert result.stdout.strip() == f"secret file {path} is not readable", result.stderr


def test_the_cap_is_exact_and_a_proc_file_of_unknown_size_is_bounded(tmp_path: Path) -> None:
    at_cap = tmp_path / "at-cap"
    at_cap.write_bytes(b"a" * SECRET_CAP)
    assert len(read_user_file(at_cap, what="secret file", cap=SECRET_CAP)) == SECRET_CAP
    at_cap.write_bytes(b"a" * (SECRET_CAP + 1))
    with pytest.raises(UsageError, match="65537 bytes, over the limit of 64 KiB"):
        read_user_file(at_cap, what="secret file", cap=SECRET_CAP)
    # /proc files report size 0 but have content: the read itself stops at cap + 1.
    with pytest.raises(UsageError, match="over the limit of 16 bytes"):
        read_user_file("/proc/self/status", what="file", cap=16)


def test_text_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"turn:\n  realm: caf\xe9\n")
    with pytest.raises(UsageError, match=r"is not UTF-8 text \(byte 0xe9 on line 2\)"):
        read_user_text(path, what="config file", cap=CONFIG_CAP)


def _commands(path: Path, tmp: Path) -> dict[str, list[str]]:
    ok_secret = tmp / "ok-secret"
    ok_secret.write_text("0123456789abcdef0123\n")
    return {
        "turn lint": ["turn", "lint", str(path)],
        "turn config --config": ["turn", "config", "--config", str(path)],
        "probe --config": ["probe", "--config", str(path), "--stun", "stun:127.0.0.1:9"],
        "deploy render --config": [
            "deploy",
            "render",
            "--target",
            "compose",
            "--config",
            str(path),
            "-o",
            str(tmp / "o"),
        ],
        "turn creds --secret-file": [
            "turn",
            "creds",
            "--secret-file",
            str(path),
            "--user",
            "u",
            "--uri",
            "turn:127.0.0.1",
        ],
        "probe --secret-file": ["probe", "--turn", "turn:127.0.0.1:9", "--secret-file", str(path)],
        "probe --ca-file": [
            "probe",
            "--turn",
            "turns:127.0.0.1:9",
            "--secret-file",
            str(ok_secret),
            "--ca-file",
            str(path),
        ],
        "probe serve --token-file": ["probe", "serve", "--listen", "127.0.0.1:9", "--token-file", str(path)],
        "consumer listen --jwt-file": [
            "consumer",
            "listen",
            "ws://127.0.0.1:9",
            "--account",
            "a",
            "--jwt-file",
            str(path),
        ],
        "emulator serve --jwt-secret-file": [
            "emulator",
            "serve",
            "--port",
            "0",
            "--jwt-secret-file",
            str(path),
        ],
    }


def _run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main(argv)
    elapsed = time.monotonic() - started
    return int(exited.value.code or 0), capsys.readouterr().err, elapsed


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_every_command_refuses_a_hostile_file_with_exit_2_within_a_second(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make, reason = HOSTILE[kind]
    path = make(tmp_path)
    for name, argv in _commands(path, tmp_path).items():
        code, err, elapsed = _run_main(argv, capsys)
        assert code == 2, (name, err)
        assert str(path) in err and reason in err, (name, err)
        assert "Traceback" not in err
        assert elapsed < 1.0, (name, elapsed)


def test_a_directory_is_refused_by_click_or_by_the_reader_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = directory(tmp_path)
    for name, argv in _commands(path, tmp_path).items():
        code, err, _ = _run_main(argv, capsys)
        assert code == 2, (name, err)
        assert str(path) in err and "directory" in err, (name, err)


def test_a_real_process_given_a_fifo_exits_2_and_does_not_hang(tmp_path: Path) -> None:
    path = fifo(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for argv in (["turn", "lint", str(path)], ["turn", "config", "--config", str(path)]):
        result = subprocess.run(
            [sys.executable, "-m", "callops", *argv], capture_output=True, text=True, timeout=30, env=env
        )
        assert result.returncode == 2, result.stderr
        assert f"{path} is a FIFO (named pipe), not a regular file" in result.stderr


def test_a_path_with_a_nul_byte_is_refused_not_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="contains a NUL byte"):
        read_user_file("a\0b", what="secret file", cap=SECRET_CAP)
    # A command line cannot carry a NUL byte, but callops.yaml can (as "\0" in a quoted string).
    config = tmp_path / "callops.yaml"
    config.write_text('probe:\n  secret_file: "a\\0b"\n  turn: ["turn:127.0.0.1:9"]\n')
    code, err, _ = _run_main(["probe", "--config", str(config)], capsys)
    assert code == 2 and "contains a NUL byte" in err, err
