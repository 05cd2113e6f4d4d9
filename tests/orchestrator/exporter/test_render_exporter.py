"""``callops deploy render`` also renders the exporter: Kubernetes objects, systemd unit, scrape jobs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from click.testing import CliRunner

from callops.deploy.render import DeployOptions, render_bundle
from callops.errors import ConfigError
from callops.orchestrator.cli import cli
from callops.orchestrator.exporter.exporter_config import TurnModule, exporter_settings
from callops.secret import Secret
from callops.turn.config import TurnDeployment

if TYPE_CHECKING:
    from tests.orchestrator.exporter.conftest import Kit

K8S_VERSIONS = ("1.28", "1.30", "1.33")


@pytest.fixture
def deployment() -> TurnDeployment:
    return TurnDeployment.model_validate(
        {
            "realm": "turn.example.com",
            "listening_ips": ["10.0.0.5"],
            "relay_ips": ["10.0.0.5"],
            "external_ips": [{"public": "203.0.113.10", "private": "10.0.0.5"}],
            "tls_listening_port": 443,
            "tls_cert_file": "/etc/coturn/tls/fullchain.pem",
            "tls_key_file": "/etc/coturn/tls/privkey.pem",
        }
    )


def docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_exporter_manifests_validate(deployment: TurnDeployment, version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = docs(render_bundle(deployment, "kubernetes")["callops-exporter.yaml"])
    assert [d["kind"] for d in objects] == ["ConfigMap", "Secret", "Deployment", "Service"]
    for doc in objects:
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_exporter_is_non_root_read_only_limited_and_probed(deployment: TurnDeployment) -> None:
    objects = {d["kind"]: d for d in docs(render_bundle(deployment, "kubernetes")["callops-exporter.yaml"])}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/metrics"
    assert container["livenessProbe"]["httpGet"]["path"] == "/metrics"
    assert objects["Secret"]["stringData"] == {}
    assert objects["Service"]["spec"]["ports"][0]["port"] == 9478
    # the ConfigMap is a valid exporter config whose secret is the mounted Secret
    config = yaml.safe_load(objects["ConfigMap"]["data"]["callops.yaml"])
    settings = exporter_settings(config["exporter"])
    assert {"turn_udp", "turn_tcp", "turn_tls", "relay"} <= set(settings.modules)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    for module in settings.modules.values():
        assert isinstance(module, TurnModule) and module.secret_file is not None
        assert str(module.secret_file.parent) in mounts


def test_kubernetes_exporter_secret_is_filled_only_on_request(deployment: TurnDeployment) -> None:
    secret = Secret("exporter-secret-0123456789abcdef", source="test")
    filled = render_bundle(deployment, "kubernetes", secret=secret)["callops-exporter.yaml"]
    (doc,) = [d for d in docs(filled) if d["kind"] == "Secret"]
    assert doc["stringData"] == {"turn-secret": secret.reveal()}
    plain = render_bundle(deployment, "kubernetes")
    assert all(secret.reveal() not in text for text in plain.values())


def test_scrape_jobs_point_each_module_at_the_relay_through_the_exporter(deployment: TurnDeployment) -> None:
    bundle = render_bundle(deployment, "kubernetes", DeployOptions(namespace="relays"))
    jobs = yaml.safe_load(bundle["prometheus-callops-exporter.yaml"])["scrape_configs"]
    by_module = {j["params"]["module"][0]: j for j in jobs if j.get("metrics_path") == "/probe"}
    assert by_module["turn_udp"]["static_configs"][0]["targets"] == ["203.0.113.10:3478"]
    assert by_module["turn_tls"]["static_configs"][0]["targets"] == ["203.0.113.10:443"]
    address = by_module["relay"]["relabel_configs"][-1]
    assert address == {"target_label": "__address__", "replacement": "coturn-exporter.relays.svc:9478"}
    promtool = shutil.which("promtool")
    if promtool is not None:
        result = subprocess.run(
            [promtool, "check", "config", "/dev/stdin"],
            input=bundle["prometheus-callops-exporter.yaml"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_jobs_give_bandwidth_and_profile_modules_their_timeout_and_a_slow_interval(
    deployment: TurnDeployment,
) -> None:
    from callops.deploy.render_exporter import scrape_jobs

    secret = {"secret_file": "/etc/callops/turn-secret"}
    config = {
        "exporter": {
            "modules": {
                "turn_udp": {"prober": "turn", **secret},
                "bandwidth_video": {"prober": "bandwidth", "item": "bandwidth-video", **secret},
                "liveperson": {"prober": "liveperson", "serves": ["udp/3478", "tls/443"], **secret},
            }
        }
    }
    text = scrape_jobs(deployment, config, "127.0.0.1:9478", "203.0.113.10", "paris")
    jobs = {j["params"]["module"][0]: j for j in yaml.safe_load(text)["scrape_configs"] if "params" in j}
    times = {name: (job["scrape_interval"], job["scrape_timeout"]) for name, job in jobs.items()}
    # the budget is the scrape timeout minus the 0.5 s margin: 8 s and 20 s modules get 9 -> 10 s, 21 s
    assert times == {
        "turn_udp": ("30s", "10s"),
        "bandwidth_video": ("5m", "10s"),
        "liveperson": ("5m", "21s"),
    }
    promtool = shutil.which("promtool")
    if promtool is not None:
        result = subprocess.run(
            [promtool, "check", "config", "/dev/stdin"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_unit_takes_the_secret_as_a_credential(deployment: TurnDeployment) -> None:
    bundle = render_bundle(deployment, "systemd")
    unit = bundle["callops-exporter.service"]
    assert f"LoadCredential=turn-secret:{deployment.secret_file}" in unit
    assert "DynamicUser=yes" in unit and "ProtectSystem=strict" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert "secret" not in exec_start
    config = yaml.safe_load(bundle["callops-exporter.yaml"])
    settings = exporter_settings(config["exporter"])
    assert settings.listen == "127.0.0.1:9478"
    module = settings.modules["turn_udp"]
    assert isinstance(module, TurnModule)
    assert str(module.secret_file).startswith("/run/credentials/callops-exporter.service/")


def test_cli_render_uses_the_exporter_section_and_names_its_bad_fields(tmp_path: Path, kit: Kit) -> None:
    config = kit.config_file(
        tmp_path,
        "turn:\n  realm: turn.example.com\n  secret_file: {secret_file}\n"
        "exporter:\n  site: paris\n  modules:\n    stun_only:\n      prober: stun\n",
        secret="render-secret-0123456789",
    )
    out = tmp_path / "k8s"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["deploy", "render", "--target", "kubernetes", "--config", str(config), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    jobs = yaml.safe_load((out / "prometheus-callops-exporter.yaml").read_text())["scrape_configs"]
    assert [j["params"]["module"] for j in jobs if "params" in j] == [["stun_only"]]
    assert jobs[0]["static_configs"][0]["labels"] == {"site": "paris"}
    # the rendered config loads back: a module whose prober is its default still names it
    (config_map,) = [d for d in docs((out / "callops-exporter.yaml").read_text()) if d["kind"] == "ConfigMap"]
    rendered = yaml.safe_load(config_map["data"]["callops.yaml"])
    assert exporter_settings(rendered["exporter"]).modules["stun_only"].prober == "stun"

    config.write_text(config.read_text().replace("prober: stun", "prober: stun\n      colour: red"))
    result = runner.invoke(
        cli, ["deploy", "render", "--target", "kubernetes", "--config", str(config), "-o", str(out)]
    )
    assert isinstance(result.exception, ConfigError)
    assert "exporter.modules.stun_only.stun.colour: unknown field" in str(result.exception)
