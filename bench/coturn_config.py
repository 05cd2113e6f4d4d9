"""How fast callops renders and lints coturn configs, and renders deploy bundles.

Run: ``python -m bench.coturn_config`` from the repository root. Pure CPU work, no network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bench._common import median, percentile, write_result
from callops.deploy.render import render_bundle
from callops.turn.config import TurnDeployment, render_turnserver_conf
from callops.turn.lint import lint_conf

ROUNDS = 200


def timed_ms(fn: Callable[[], object], rounds: int = ROUNDS) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    deployment = TurnDeployment.model_validate(
        {
            "realm": "turn.example.com",
            "listening_ips": ["10.0.0.5"],
            "external_ips": [{"public": "203.0.113.10", "private": "10.0.0.5"}],
        }
    )
    conf = render_turnserver_conf(deployment)
    debian_example = Path("/etc/turnserver.conf")
    results: dict[str, object] = {"rounds": ROUNDS}
    cases: dict[str, Callable[[], object]] = {
        "render_turnserver_conf": lambda: render_turnserver_conf(deployment),
        "lint_rendered_conf": lambda: lint_conf(conf),
        "render_kubernetes_bundle": lambda: render_bundle(deployment, "kubernetes"),
        "render_systemd_bundle": lambda: render_bundle(deployment, "systemd"),
    }
    if debian_example.exists():
        text = debian_example.read_text(errors="replace")
        cases["lint_debian_example_conf"] = lambda: lint_conf(text)
    for name, fn in cases.items():
        samples = timed_ms(fn)
        results[name] = {
            "median_ms": round(median(samples), 3),
            "p95_ms": round(percentile(samples, 0.95), 3),
        }
    write_result("coturn_config", results)


if __name__ == "__main__":
    main()
