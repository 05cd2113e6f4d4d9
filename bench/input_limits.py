"""What bounded input costs: the hardened readers and parsers against the unbounded baselines.

Run: ``python -m bench.input_limits`` from the repository root. Pure CPU and local files, no network.

* ``read_user_text`` (regular file check, cap) vs ``Path.read_text`` on a 4 KiB callops.yaml;
* ``load_yaml`` (no aliases, depth and integer limits) vs ``yaml.safe_load`` on the same text;
* ``parse_stun`` vs aioice's ``parse_message`` on a Binding success response;
* how long refusing ``/dev/zero``, a FIFO and a 1 GiB sparse file takes (the baseline for
  ``/dev/zero`` and the FIFO is "never": ``read_text`` reads forever or blocks);
* how long refusing a billion-laughs YAML takes (``yaml.safe_load`` of it is not run: it would
  take minutes and gigabytes).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from aioice import stun

from bench._common import median, write_result
from callops.errors import UsageError
from callops.files import CONFIG_CAP, read_user_text
from callops.turn.stun import parse_stun
from callops.yamlconfig import load_yaml

ROUNDS = 300

CONFIG = """turn:
  realm: turn.example.com
  coturn_version: 4.6.1
  listening_ips: [10.0.0.5]
  external_ips:
    - {public: 203.0.113.10, private: 10.0.0.5}
  min_port: 49152
  max_port: 65535
  user_quota: 12
  total_quota: 1000
  denied_peer_ips: [192.0.2.0/24, 198.51.100.0/24]
probe:
  stun: ["stun:turn.example.com:3478"]
  turn: ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"]
  secret_file: /etc/callops/turn-secret
  timeout: 10
""" + "".join(f"# comment line {i} to make the file a realistic 4 KiB\n" for i in range(60))

BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
)


def timed_ms(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return round(median(samples), 4)


def refused_ms(fn: Callable[[], object], rounds: int = 50) -> float:
    def attempt() -> None:
        try:
            fn()
        except UsageError:
            return
        raise AssertionError("not refused")

    return timed_ms(attempt, rounds)


def main() -> None:
    results: dict[str, object] = {"rounds": ROUNDS}
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "callops.yaml"
        config.write_text(CONFIG)
        fifo = Path(directory) / "fifo"
        os.mkfifo(fifo)
        sparse = Path(directory) / "sparse"
        with open(sparse, "wb") as handle:
            handle.truncate(1 << 30)
        bomb = Path(directory) / "bomb.yaml"
        bomb.write_text(BOMB)
        pairs = {
            "read_config": (
                lambda: read_user_text(config, what="config file", cap=CONFIG_CAP),
                lambda: config.read_text(encoding="utf-8"),
            ),
            "load_yaml": (lambda: load_yaml(CONFIG, source="c"), lambda: yaml.safe_load(CONFIG)),
        }
        response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE)
        response.attributes["XOR-MAPPED-ADDRESS"] = ("203.0.113.7", 40000)
        response.attributes["OTHER-ADDRESS"] = ("203.0.113.8", 3479)
        response.add_fingerprint()
        packet = bytes(response)
        pairs["parse_stun"] = (lambda: parse_stun(packet), lambda: stun.parse_message(packet))
        for name, (ours, baseline) in pairs.items():
            ours_ms, baseline_ms = timed_ms(ours), timed_ms(baseline)
            results[name] = {
                "median_ms": ours_ms,
                "baseline_median_ms": baseline_ms,
                "ratio": round(ours_ms / baseline_ms, 2) if baseline_ms else None,
            }
        results["refuse_ms"] = {
            "dev_zero": refused_ms(lambda: read_user_text("/dev/zero", what="f", cap=CONFIG_CAP)),
            "fifo": refused_ms(lambda: read_user_text(fifo, what="f", cap=CONFIG_CAP)),
            "sparse_1GiB": refused_ms(lambda: read_user_text(sparse, what="f", cap=CONFIG_CAP)),
            "billion_laughs_yaml": refused_ms(lambda: load_yaml(bomb.read_text(), source="bomb.yaml")),
        }
    write_result("input_limits", results)


if __name__ == "__main__":
    main()
