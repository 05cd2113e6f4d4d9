"""callops.yaml as a stranger writes it: alias bombs, deep nesting, huge integers, non-UTF-8.

Each case is a real file given to a real command (in-process ``main``), which must end with exit 2
and a message naming the file and the field or line -- never exit 70, never a traceback, and
quickly (an alias bomb that were expanded would take minutes and gigabytes).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from callops.errors import ConfigError
from callops.orchestrator.cli import main
from callops.yamlconfig import MAX_DEPTH, load_yaml

BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    + ["turn:", "  realm: *i"]
)

HOSTILE: dict[str, tuple[bytes, str]] = {
    "alias-bomb": (BOMB.encode(), "line 2: alias *a is not allowed"),
    "deep-flow": (b"turn: " + b"[" * 100_000, f"line 1: nested deeper than {MAX_DEPTH} levels"),
    "deep-block": (
        "".join(" " * i + f"k{i}:\n" for i in range(200)).encode(),
        f"nested deeper than {MAX_DEPTH} levels",
    ),
    "huge-int": (
        b"turn:\n  realm: a\n  listening_port: " + b"9" * 5000 + b"\n",
        "line 3: turn.listening_port: an integer of 5000 characters",
    ),
    "sexagesimal": (
        b"turn:\n  total_quota: " + b":".join([b"59"] * 2000) + b"\n",
        "turn.total_quota: an integer of",
    ),
    "latin-1": (b"turn:\n  realm: caf\xe9.example\n", "is not UTF-8 text (byte 0xe9 on line 2)"),
    "bad-date": (b"turn:\n  realm: 2024-02-30\n", "line 2: turn.realm: '2024-02-30' cannot be read"),
    "nul": (b"turn:\n  realm: a\x00\n", "not valid YAML"),
    "bad-ip": (
        b"turn:\n  realm: a\n  relay_ips: [999.1.1.1]\n",
        "turn.relay_ips.0: '999.1.1.1' is not a valid IP address",
    ),
    "boolean-as-address": (
        b"turn:\n  realm: a\n  allowed_peer_ips: [yes]\n",
        "turn.allowed_peer_ips: is a yes/no value",
    ),
    "number-as-address": (
        b"turn:\n  realm: a\n  relay_ips: [1]\n",
        "turn.relay_ips: write the address as text",
    ),
    "boolean-as-port": (
        b"turn:\n  realm: a\n  listening_port: on\n",
        "turn.listening_port: is a yes/no value",
    ),
    "not-a-mapping": (b"- 1\n- 2\n", "must be a mapping of sections"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_callops_yaml_is_exit_2_naming_file_and_field(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    content, expected = HOSTILE[case]
    path = tmp_path / "callops.yaml"
    path.write_bytes(content)
    for argv in (
        ["turn", "config", "--config", str(path)],
        ["probe", "--config", str(path), "--stun", "stun:127.0.0.1:9"],
    ):
        started = time.monotonic()
        with pytest.raises(SystemExit) as exited:
            main(argv)
        elapsed = time.monotonic() - started
        err = capsys.readouterr().err
        assert exited.value.code == 2, err
        assert str(path) in err and expected in err, err
        assert "Traceback" not in err and "internal error" not in err
        assert elapsed < 2.0


def test_anchors_without_aliases_and_ordinary_values_load() -> None:
    data = load_yaml("turn: &t\n  realm: turn.example.com\n  listening_port: 3478\n", source="c.yaml")
    assert data == {"turn": {"realm": "turn.example.com", "listening_port": 3478}}
    assert load_yaml("", source="c.yaml") is None


def test_nesting_up_to_the_limit_is_accepted() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_yaml(text, source="c.yaml") is not None
    with pytest.raises(ConfigError, match="nested deeper"):
        load_yaml("[" + text + "]", source="c.yaml")
