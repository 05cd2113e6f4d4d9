"""The shipped alert rules (promtool unit tests), the Grafana dashboard and the scrape config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from callops.orchestrator.exporter.outcome import METRICS
from callops.orchestrator.exporter.service import ExporterMetrics

DEPLOY = Path(__file__).parents[3] / "deploy"
RULES = DEPLOY / "callops-exporter-rules.yaml"
DASHBOARD = DEPLOY / "callops-exporter-dashboard.json"
SCRAPE = DEPLOY / "callops-exporter-scrape.yaml"

RELAY = {
    "job": "callops-turn-udp",
    "instance": "turn.example.com:3478",
    "module": "turn_udp",
    "site": "paris",
}


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


def alert(name: str, labels: dict[str, str], severity: str, value: str) -> dict[str, Any]:
    """The expected alert: labels, and the annotations rendered as Prometheus renders them."""
    (rule,) = [
        r
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for r in group["rules"]
        if r["alert"] == name
    ]

    def render(template: str) -> str:
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
        return re.sub(r"\{\{ \$value[^}]*\}\}", value, text)

    annotations = {k: render(v) for k, v in rule["annotations"].items()}
    return {"exp_labels": {**labels, "severity": severity}, "exp_annotations": annotations}


def rule_test(
    interval: str,
    input_series: list[dict[str, str]],
    name: str,
    quiet: list[str],
    firing: tuple[str, dict[str, str], str, str] | None = None,
) -> dict[str, Any]:
    """A promtool test case: ``input_series`` sampled every ``interval``; alert ``name`` silent at each
    eval time of ``quiet``, then (``firing``: eval time, labels, severity, value) firing."""
    checks: list[dict[str, Any]] = [{"eval_time": t, "alertname": name, "exp_alerts": []} for t in quiet]
    if firing is not None:
        eval_time, labels, severity, value = firing
        expected = [alert(name, labels, severity, value)]
        checks.append({"eval_time": eval_time, "alertname": name, "exp_alerts": expected})
    return {"interval": interval, "input_series": input_series, "alert_rule_test": checks}


def promtool_tests() -> dict[str, Any]:
    tls = {"job": "callops-tls", "instance": "turn.example.com:443", "module": "tls", "site": "paris"}
    relay = {**RELAY, "job": "callops-relay", "module": "relay"}
    bandwidth = {**RELAY, "job": "callops-bandwidth", "module": "bandwidth"}
    flow = {**bandwidth, "direction": "flow"}
    # up for 3 minutes, then down: fires only once down for 2 minutes
    down = [series("probe_success", RELAY, "1x5 0x8")]
    # a flapping relay (down 1 minute) never pages
    flapping = [series("probe_success", RELAY, "1 0 0 1 0 0 1 1 1 1")]
    # 20 days left, falling below 14 at 11 minutes: fires after its 10 minutes
    expiring = [series("probe_tls_cert_days_left", tls, "20x10 13.9x30")]
    # 700 kbit/s over a 600 floor is fine; 400 for 15 minutes alerts (one alert per module: the
    # comparison drops `direction`)
    slow = [
        series("probe_bandwidth_bits_per_second", flow, "700000x5 400000x20"),
        series("probe_bandwidth_floor_bits_per_second", bandwidth, "600000x25"),
    ]
    # 1 % loss is fine, 5 % for 5 minutes alerts
    lossy = [series("probe_relay_loss_ratio", relay, "0.01x5 0.05x10")]
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "30s",
        "tests": [
            rule_test("30s", down, "CallopsRelayDown", ["4m"], ("5m", RELAY, "critical", "0")),
            rule_test("30s", flapping, "CallopsRelayDown", ["4m"]),
            rule_test(
                "1m", expiring, "CallopsCertificateExpiringSoon", ["15m"], ("25m", tls, "warning", "13.9")
            ),
            rule_test(
                "1m", slow, "CallopsBandwidthBelowFloor", ["5m", "15m"], ("22m", bandwidth, "warning", "400k")
            ),
            rule_test("1m", lossy, "CallopsRelayLoss", ["5m", "8m"], ("11m", relay, "warning", "5%")),
        ],
    }


def write_rule_tests(directory: Path, rules: Path = RULES) -> Path:
    """:func:`promtool_tests` against ``rules``, written as ``rules_test.yaml`` into ``directory``."""
    spec = promtool_tests()
    spec["rule_files"] = [str(rules)]
    tests = directory / "rules_test.yaml"
    tests.write_text(yaml.safe_dump(spec))
    return tests


def promtool_run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("needs promtool (Debian package prometheus)")
    return path


def test_alert_rules_pass_promtool_unit_tests(promtool: str, tmp_path: Path) -> None:
    check = promtool_run(promtool, "check", "rules", str(RULES))
    assert check.returncode == 0, check.stdout + check.stderr
    result = promtool_run(promtool, "test", "rules", str(write_rule_tests(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text(RULES.read_text().replace("for: 2m", "for: 10m"))
    result = promtool_run(promtool, "test", "rules", str(write_rule_tests(tmp_path, broken)))
    assert result.returncode != 0


def emitted_metric_names() -> set[str]:
    """Every name the exporter exposes: probe metrics and its own (with their sample suffixes)."""
    names = set(METRICS)
    own = ExporterMetrics()
    own.probes.labels("m", "success").inc()
    own.rejected.labels("busy").inc()
    own.duration.labels("m").observe(1)
    own.in_flight.labels("m")
    own.waiting.labels("m")
    for family in own.registry.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name)
    return names


_METRIC_RE = re.compile(r"\b((?:probe|callops_exporter)_[a-z_]+)\b")


def test_dashboard_parses_and_uses_only_metrics_the_exporter_emits() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in _METRIC_RE.findall(expr)}
    assert used <= emitted_metric_names(), used - emitted_metric_names()
    # per site: success, allocate time, RTT, loss, certificate days left
    for needed in (
        "probe_success",
        "probe_turn_allocate_seconds",
        "probe_relay_rtt_seconds",
        "probe_relay_loss_ratio",
        "probe_tls_cert_days_left",
    ):
        assert needed in used
    assert all("$site" in expr for expr in exprs)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_alert_rules_use_only_metrics_the_exporter_emits() -> None:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in _METRIC_RE.findall(expr)}
    assert used and used <= emitted_metric_names()


def test_scrape_config_follows_the_multi_target_pattern(promtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    probe_jobs = [job for job in config["scrape_configs"] if job.get("metrics_path") == "/probe"]
    assert probe_jobs
    for job in probe_jobs:
        rules = job["relabel_configs"]
        assert {"source_labels": ["__address__"], "target_label": "__param_target"} in rules
        assert {"source_labels": ["__param_target"], "target_label": "instance"} in rules
        assert {"source_labels": ["__param_module"], "target_label": "module"} in rules
        assert any(r.get("target_label") == "__address__" for r in rules)
        assert job["params"]["module"][0] in ("turn_udp", "turn_tcp", "turn_tls", "relay", "tls", "stun")
    path = tmp_path / "prometheus.yml"
    path.write_text(SCRAPE.read_text())
    check = promtool_run(promtool, "check", "config", str(path))
    assert check.returncode == 0, check.stdout + check.stderr
