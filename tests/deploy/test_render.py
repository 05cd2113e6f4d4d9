"""``callops deploy render``: every target from one model, lint-clean configs, valid Kubernetes."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from callops.deploy.render import (
    TARGETS,
    DeployOptions,
    Target,
    kubernetes_objects,
    render_bundle,
    write_bundle,
)
from callops.errors import UsageError
from callops.orchestrator.cli import cli
from callops.secret import Secret
from callops.turn.config import TurnDeployment
from callops.turn.lint import lint_conf

#: Kubernetes versions the manifests must validate against (schemas shipped by kubernetes-validate)
K8S_VERSIONS = ("1.28", "1.30", "1.33")


def k8s_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_every_target_renders_from_one_model(deployment: TurnDeployment) -> None:
    bundles = {target: render_bundle(deployment, target) for target in TARGETS}
    exporter = {"callops-exporter.service", "callops-exporter.yaml", "prometheus-callops-exporter.yaml"}
    assert set(bundles["systemd"]) == {"install-coturn.sh", "turnserver.conf"} | exporter
    assert set(bundles["kubernetes"]) == {"coturn.yaml"} | (exporter - {"callops-exporter.service"})
    assert set(bundles["compose"]) == {"compose.yaml", "turnserver.conf"}
    assert bundles["systemd"]["turnserver.conf"] == bundles["compose"]["turnserver.conf"]
    configmap = next(d for d in k8s_docs(bundles["kubernetes"]["coturn.yaml"]) if d["kind"] == "ConfigMap")
    assert configmap["data"]["turnserver.conf"] == bundles["systemd"]["turnserver.conf"]


def test_rendered_configs_lint_clean(deployment: TurnDeployment) -> None:
    targets: tuple[Target, ...] = ("systemd", "compose")
    for target in targets:
        conf = render_bundle(deployment, target)["turnserver.conf"]
        assert lint_conf(conf) == [], target


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_validate_against_the_api_schema(
    deployment: TurnDeployment, version: str
) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = k8s_docs(render_bundle(deployment, "kubernetes")["coturn.yaml"])
    assert [d["kind"] for d in docs] == ["Namespace", "ConfigMap", "Secret", "Deployment", "CronJob"]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_schema_validation_catches_a_broken_manifest(deployment: TurnDeployment) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    workload = kubernetes_objects(deployment, DeployOptions())[3]
    workload["spec"]["template"]["spec"]["hostNetwork"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(workload, K8S_VERSIONS[-1], strict=True)


def test_kubernetes_deployment_has_host_network_probes_resources_and_anti_affinity(
    deployment: TurnDeployment,
) -> None:
    text = render_bundle(deployment, "kubernetes")["coturn.yaml"]
    assert "# Why hostNetwork:" in text
    docs = {d["kind"]: d for d in k8s_docs(text)}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    container = pod["containers"][0]
    assert container["readinessProbe"]["tcpSocket"]["port"] == 3478
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert {"name": "turns-tcp", "containerPort": 443, "protocol": "TCP"} in container["ports"]
    # 443 needs the image's file capability, which no_new_privs would ignore
    assert container["securityContext"]["allowPrivilegeEscalation"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert pod["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["items"] == [
        {"key": "tls.crt", "path": "fullchain.pem"},
        {"key": "tls.key", "path": "privkey.pem"},
    ]
    assert "static-auth-secret" in pod["initContainers"][0]["command"][2]
    cron = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cron[:2] == ["callops", "probe"] and "--json" in cron
    assert "turn:203.0.113.10:3478?transport=udp" in cron
    assert docs["Secret"]["stringData"] == {"turn-secret": ""}


def test_kubernetes_secret_is_filled_only_on_request(deployment: TurnDeployment) -> None:
    text = render_bundle(deployment, "kubernetes", secret=Secret("k8s-secret-0123456789"))["coturn.yaml"]
    secret = next(d for d in k8s_docs(text) if d["kind"] == "Secret")
    assert secret["stringData"] == {"turn-secret": "k8s-secret-0123456789"}
    assert "k8s-secret-0123456789" not in render_bundle(deployment, "kubernetes")["coturn.yaml"]


def test_kubernetes_needs_certificate_and_key_in_one_directory(deployment: TurnDeployment) -> None:
    split = deployment.model_copy(update={"tls_key_file": Path("/elsewhere/key.pem")})
    with pytest.raises(UsageError, match="one directory"):
        render_bundle(split, "kubernetes")


def test_compose_uses_host_network_and_mounts_config_and_secret(deployment: TurnDeployment) -> None:
    doc = yaml.safe_load(render_bundle(deployment, "compose")["compose.yaml"])
    service = doc["services"]["coturn"]
    assert service["network_mode"] == "host"
    assert "./turnserver.conf:/etc/coturn/turnserver.conf:ro" in service["volumes"]
    assert "/etc/coturn/tls/fullchain.pem:/etc/coturn/tls/fullchain.pem:ro" in service["volumes"]
    assert service["secrets"] == ["turn_secret"]
    assert doc["secrets"]["turn_secret"]["file"] == "/etc/coturn/turn-secret"
    assert "ports" not in service


def test_install_script_values_are_shell_quoted(deployment: TurnDeployment) -> None:
    options = DeployOptions(probe_host="turn.example.com")
    script = render_bundle(deployment, "systemd", options)["install-coturn.sh"]
    assert "REALM=turn.example.com\n" in script
    assert "SECRET_PATH=/etc/coturn/turn-secret\n" in script
    assert "TLS_CERT_FILE=/etc/coturn/tls/fullchain.pem\n" in script
    assert "PROBE_HOST=turn.example.com\n" in script
    assert "@@" not in script


def _render(config: Path, target: str, out: Path, *more: str) -> Result:
    """``callops deploy render --target TARGET --config CONFIG -o OUT MORE``, in process."""
    args = ["deploy", "render", "--target", target, "--config", str(config), "-o", str(out), *more]
    return CliRunner().invoke(cli, args)


def test_cli_render_writes_each_target(tmp_path: Path) -> None:
    secret_file = tmp_path / "turn-secret"
    secret_file.write_text("cli-render-secret-0123456789\n")
    config = tmp_path / "callops.yaml"
    config.write_text(
        f"turn:\n  realm: turn.example.com\n  secret_file: {secret_file}\n"
        "deploy:\n  namespace: relays\n  replicas: 3\nprobe:\n  anything: kept\n"
    )
    for target in ("systemd", "kubernetes", "compose"):
        result = _render(config, target, tmp_path / target)
        assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "systemd/install-coturn.sh").stat().st_mode) == 0o755
    docs = k8s_docs((tmp_path / "kubernetes/coturn.yaml").read_text())
    assert {d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs} == {"relays"}
    assert next(d for d in docs if d["kind"] == "Deployment")["spec"]["replicas"] == 3

    out = tmp_path / "k8s-secret"
    result = _render(config, "kubernetes", out, "--with-secret")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((out / "coturn.yaml").stat().st_mode) == 0o600
    assert "cli-render-secret" not in result.output

    result = _render(config, "compose", out, "--with-secret")
    assert isinstance(result.exception, UsageError)


def test_cli_render_names_a_bad_deploy_field(tmp_path: Path) -> None:
    config = tmp_path / "callops.yaml"
    config.write_text("turn:\n  realm: turn.example.com\ndeploy:\n  replicas: 0\n")
    result = _render(config, "kubernetes", tmp_path / "o")
    assert isinstance(result.exception, UsageError)
    assert "deploy.replicas" in str(result.exception)


def test_write_bundle_refuses_an_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match="cannot create"):
        write_bundle({"a.txt": "x"}, blocker / "sub")


def test_kubernetes_keeps_no_new_privs_without_privileged_ports() -> None:
    plain = TurnDeployment(realm="turn.example.com")
    workload = kubernetes_objects(plain, DeployOptions())[3]
    container = workload["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
