"""The real Prometheus scrapes the exporter through the documented relabelling, against real coturn.

Debian's ``prometheus`` runs on loopback with its own data directory and a 1 s scrape interval; the
exporter runs as ``callops exporter`` (a subprocess, as deployed). The test reads results only
through Prometheus' HTTP API, with bounded polling. One relay is killed (SIGKILL) half-way: its
``probe_success`` must turn 0 while the other stays 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from callops.testing import logged_process
from callops.turn.coturn import LoopbackCoturn, free_port, start_loopback_coturn

pytestmark = [pytest.mark.coturn, pytest.mark.slow]

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_FILE = Path(__file__).parents[3] / "deploy" / "callops-exporter-scrape.yaml"


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            last = check()
            if last:
                return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def scrape_config(exporter: str, targets: dict[str, list[str]]) -> dict[str, Any]:
    """The documented scrape jobs, pointed at this exporter and these targets, scraped every 1 s."""
    documented = yaml.safe_load(SCRAPE_FILE.read_text())
    jobs = []
    for shared in documented["scrape_configs"]:
        job = json.loads(json.dumps(shared))  # un-share the YAML anchor's objects
        job["scrape_interval"] = job["scrape_timeout"] = "1s"
        if job.get("metrics_path") == "/probe":
            module = job["params"]["module"][0]
            if module not in targets:
                continue
            job["static_configs"] = [{"targets": targets[module], "labels": {"site": "test-site"}}]
            (address_rule,) = [r for r in job["relabel_configs"] if r.get("target_label") == "__address__"]
            address_rule["replacement"] = exporter
        else:
            job["static_configs"] = [{"targets": [exporter], "labels": {"site": "test-site"}}]
        jobs.append(job)
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": jobs}


def test_prometheus_sees_working_relays_over_each_transport_and_a_dead_one(
    coturn: LoopbackCoturn, secret_file: Path, tmp_path: Path, kit: Any
) -> None:
    if not Path(PROMETHEUS).exists() or shutil.which("promtool") is None:
        pytest.skip("needs Debian's prometheus package")
    doomed_dir = tmp_path / "doomed"
    doomed_dir.mkdir()
    doomed = start_loopback_coturn(doomed_dir, secret=coturn.secret, rfc5780=False)
    try:
        exporter_port = free_port()
        config = tmp_path / "callops.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "exporter": {
                        "timeout_margin": 0.2,
                        "modules": kit.turn_modules(secret_file, coturn.ca_file),
                    }
                }
            )
        )
        exporter = f"127.0.0.1:{exporter_port}"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
        command = [sys.executable, "-m", "callops", "exporter", "--config", str(config), "--listen", exporter]
        with logged_process(command, tmp_path / "exporter.log", env):
            wait_for(
                "the exporter", lambda: urllib.request.urlopen(f"http://{exporter}/metrics", timeout=2), 20
            )
            prom_port = free_port()
            prom_config = tmp_path / "prometheus.yml"
            targets = {
                "turn_udp": [f"127.0.0.1:{coturn.port}", f"127.0.0.1:{doomed.port}"],
                "turn_tcp": [f"127.0.0.1:{coturn.port}"],
                "turn_tls": [f"127.0.0.1:{coturn.tls_port}"],
                "relay": [f"127.0.0.1:{coturn.port}"],
            }
            prom_config.write_text(yaml.safe_dump(scrape_config(exporter, targets)))
            check = subprocess.run(
                ["promtool", "check", "config", str(prom_config)], capture_output=True, text=True
            )
            assert check.returncode == 0, check.stdout + check.stderr
            api = f"http://127.0.0.1:{prom_port}/api/v1"
            prometheus = [
                PROMETHEUS,
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ]
            with logged_process(prometheus, tmp_path / "prometheus.log"):

                def query(expr: str) -> dict[tuple[str, str], float]:
                    url = f"{api}/query?" + urllib.parse.urlencode({"query": expr})
                    rows = http_json(url)["data"]["result"]
                    return {
                        (r["metric"].get("module", ""), r["metric"]["instance"]): float(r["value"][1])
                        for r in rows
                    }

                expected = {
                    ("turn_udp", f"127.0.0.1:{coturn.port}"): 1.0,
                    ("turn_udp", f"127.0.0.1:{doomed.port}"): 1.0,
                    ("turn_tcp", f"127.0.0.1:{coturn.port}"): 1.0,
                    ("turn_tls", f"127.0.0.1:{coturn.tls_port}"): 1.0,
                    ("relay", f"127.0.0.1:{coturn.port}"): 1.0,
                }
                wait_for("probe_success 1 everywhere", lambda: query("probe_success") == expected, 60)
                rtt = wait_for("the relay RTT series", lambda: query("probe_relay_rtt_seconds"), 20)
                assert list(rtt) == [("relay", f"127.0.0.1:{coturn.port}")]
                assert 0 < next(iter(rtt.values())) < 0.5
                own = 'callops_exporter_probes_total{job="callops-exporter", result="success"}'
                wait_for("the exporter's own metrics", lambda: query(own), 20)

                assert doomed.process.process is not None
                doomed.process.process.kill()  # SIGKILL: the relay dies without a goodbye
                dead = {**expected, ("turn_udp", f"127.0.0.1:{doomed.port}"): 0.0}
                wait_for("probe_success 0 for the killed relay", lambda: query("probe_success") == dead, 30)
                reasons = query("probe_failure_info")
                assert list(reasons) == [("turn_udp", f"127.0.0.1:{doomed.port}")]
                # every scrape answered in time: no probe scrape was ever down
                assert set(query("up").values()) == {1.0}
    finally:
        doomed.process.stop()
