"""``callops exporter`` next to the relay: Kubernetes manifests, a systemd unit, a scrape config.

:func:`exporter_files` gives the files :func:`callops.deploy.render.render_bundle` adds for a target:

- ``kubernetes``: ``callops-exporter.yaml`` -- ConfigMap (the exporter's ``callops.yaml``), Secret
  (the TURN shared secret, empty unless asked), Deployment (non-root, read-only root filesystem, all
  capabilities dropped, resource limits, HTTP readiness/liveness probes) and Service; and
  ``prometheus-callops-exporter.yaml``, the scrape jobs for the site's Prometheus.
- ``systemd``: ``callops-exporter.service`` (a sandboxed unit that receives the secret through
  ``LoadCredential=``, never in its command line), ``callops-exporter.yaml`` and the scrape jobs.

The exporter's modules are the ``exporter:`` section of ``callops.yaml`` when given, else derived
from the relay: TURN per transport it serves, the relay data test, and the TLS certificate.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import TypeAdapter

from callops.deploy.manifests import Manifest, k8s_object, run_as_nobody, to_yaml
from callops.orchestrator.exporter.exporter_config import DEFAULT_TIMEOUT_MARGIN, ExporterSettings, Module
from callops.secret import Secret
from callops.turn.config import TurnDeployment

#: the port ``callops exporter`` listens on in rendered deployments
EXPORTER_PORT = 9478
_SECRET_KEY = "turn-secret"
_K8S_SECRET_DIR = "/etc/callops-secret"
_K8S_CONFIG_DIR = "/etc/callops"
#: where systemd's LoadCredential= puts the secret for the unit
_SYSTEMD_SECRET = "/run/credentials/callops-exporter.service/turn-secret"
_SYSTEMD_CONFIG = "/etc/callops/callops-exporter.yaml"


def default_modules(deployment: TurnDeployment, secret_file: str) -> dict[str, Any]:
    """Modules for one relay: TURN over UDP and TCP (and TLS when it serves TLS), relay, TLS."""
    modules: dict[str, Any] = {
        "turn_udp": {"prober": "turn", "transport": "udp", "secret_file": secret_file},
        "turn_tcp": {"prober": "turn", "transport": "tcp", "secret_file": secret_file},
        "relay": {"prober": "relay", "transport": "udp", "secret_file": secret_file},
    }
    if deployment.tls_enabled:
        modules["turn_tls"] = {"prober": "turn", "transport": "tls", "secret_file": secret_file}
    return modules


def exporter_config(
    deployment: TurnDeployment, exporter: ExporterSettings | None, secret_file: str, listen: str
) -> dict[str, Any]:
    """The ``callops.yaml`` the rendered exporter reads (``exporter:`` section only)."""
    if exporter is not None and exporter.modules:
        section = exporter.model_dump(mode="json", exclude_defaults=True)
        # a module's prober is its default too, but the rendered file must name it (the discriminator)
        for name, module in exporter.modules.items():
            section["modules"][name] = {"prober": module.prober, **section["modules"].get(name, {})}
        section["listen"] = listen
        section.pop("site", None)
        return {"exporter": section}
    return {"exporter": {"listen": listen, "modules": default_modules(deployment, secret_file)}}


def scrape_jobs(
    deployment: TurnDeployment, config: dict[str, Any], exporter_address: str, relay_host: str, site: str
) -> str:
    """Prometheus scrape jobs: one per module, each relay target relabelled through the exporter."""
    d = deployment
    relabel = [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"source_labels": ["__param_module"], "target_label": "module"},
        {"target_label": "__address__", "replacement": exporter_address},
    ]
    jobs: list[dict[str, Any]] = []
    margin = float(config["exporter"].get("timeout_margin", DEFAULT_TIMEOUT_MARGIN))
    modules: TypeAdapter[Module] = TypeAdapter(Module)
    for name, module in config["exporter"]["modules"].items():
        prober = module.get("prober")
        if prober == "ice_two_site":
            continue
        secure = prober == "tls" or module.get("transport") == "tls"
        port = d.tls_listening_port if secure else d.listening_port
        # the probe's budget is the scrape timeout minus the margin: leave room for the module's timeout
        timeout = max(10, math.ceil(modules.validate_python(module).timeout + margin))
        jobs.append(
            {
                "job_name": f"callops-{name.replace('_', '-')}",
                "metrics_path": "/probe",
                "params": {"module": [name]},
                # a certificate changes slowly; bandwidth and profile probes load the site's link
                "scrape_interval": "5m" if prober in ("tls", "bandwidth", "liveperson") else "30s",
                "scrape_timeout": f"{timeout}s",
                "static_configs": [{"targets": [f"{relay_host}:{port}"], "labels": {"site": site}}],
                "relabel_configs": relabel,
            }
        )
    jobs.append(
        {
            "job_name": "callops-exporter",
            "static_configs": [{"targets": [exporter_address], "labels": {"site": site}}],
        }
    )
    return (
        "# Scrape jobs for the site's Prometheus (add them to scrape_configs), rendered by callops.\n"
        "# Alert rules: callops-exporter-rules.yaml in the callops package's deploy/ folder.\n"
    ) + to_yaml({"scrape_configs": jobs})


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "callops"}


def _exporter_container(image: str) -> Manifest:
    """``callops exporter`` on :data:`EXPORTER_PORT`, non-root, read-only, probed over HTTP."""
    http_probe = {"httpGet": {"path": "/metrics", "port": "http"}}
    return {
        "name": "exporter",
        "image": image,
        "args": [
            "exporter",
            "--config",
            f"{_K8S_CONFIG_DIR}/callops.yaml",
            "--listen",
            f"0.0.0.0:{EXPORTER_PORT}",
        ],
        "ports": [{"name": "http", "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "readinessProbe": {**http_probe, "periodSeconds": 10},
        "livenessProbe": {**http_probe, "initialDelaySeconds": 10, "periodSeconds": 20},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": _K8S_CONFIG_DIR, "readOnly": True},
            {"name": "secret", "mountPath": _K8S_SECRET_DIR, "readOnly": True},
        ],
    }


def _exporter_pod_spec(exporter: str, image: str) -> Manifest:
    return {
        "automountServiceAccountToken": False,
        "securityContext": run_as_nobody() | {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_exporter_container(image)],
        "volumes": [
            {"name": "config", "configMap": {"name": f"{exporter}-config"}},
            {"name": "secret", "secret": {"secretName": f"{exporter}-secret", "defaultMode": 0o440}},
        ],
    }


def kubernetes_exporter_objects(
    deployment: TurnDeployment,
    *,
    name: str,
    namespace: str,
    image: str,
    config: dict[str, Any],
    secret: Secret | None = None,
) -> list[Manifest]:
    """ConfigMap, Secret, Deployment and Service of the exporter."""
    exporter = f"{name}-exporter"
    labels = _labels(exporter)
    meta = {"namespace": namespace, "labels": labels}
    deployment_spec = {
        "replicas": 1,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": _exporter_pod_spec(exporter, image)},
    }
    ports = [{"name": "http", "port": EXPORTER_PORT, "targetPort": "http", "protocol": "TCP"}]
    secret_data = {_SECRET_KEY: secret.reveal()} if secret is not None else {}
    return [
        k8s_object("v1", "ConfigMap", f"{exporter}-config", meta, data={"callops.yaml": to_yaml(config)}),
        k8s_object("v1", "Secret", f"{exporter}-secret", meta, type="Opaque", stringData=secret_data),
        k8s_object("apps/v1", "Deployment", exporter, meta, spec=deployment_spec),
        k8s_object("v1", "Service", exporter, meta, spec={"selector": labels, "ports": ports}),
    ]


def render_kubernetes_exporter(objects: list[Manifest], *, name: str, namespace: str, filled: bool) -> str:
    docs = []
    for obj in objects:
        text = to_yaml(obj)
        if obj["kind"] == "Secret" and not filled:
            text = (
                "# Fill in the TURN shared secret without putting it in this file:\n"
                f"#   kubectl -n {namespace} create secret generic {name}-exporter-secret \\\n"
                f"#     --from-file={_SECRET_KEY}=/path/to/turn-secret --dry-run=client -o yaml"
                " | kubectl apply -f -\n"
            ) + text
        docs.append(text)
    header = (
        "# callops exporter for Kubernetes: STUN/TURN probes of the relay for Prometheus,\n"
        "# rendered by `callops deploy render --target kubernetes`.\n"
        "# Scrape jobs for the site's Prometheus: prometheus-callops-exporter.yaml.\n"
    )
    return header + "---\n".join(docs)


def render_systemd_unit(*, user_config: str = _SYSTEMD_CONFIG, secret_source: str, listen: str) -> str:
    """A sandboxed unit; the secret arrives through systemd credentials, never on the command line."""
    return f"""\
# callops exporter: STUN/TURN probes of the relay for Prometheus (rendered by callops deploy render).
# Install: cp callops-exporter.yaml {user_config}; cp callops-exporter.service /etc/systemd/system/;
#          systemctl daemon-reload && systemctl enable --now callops-exporter
[Unit]
Description=callops exporter: STUN/TURN/ICE probes for Prometheus
Documentation=https://github.com/callops/callops/blob/main/docs/exporter.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
DynamicUser=yes
# The TURN shared secret, readable by this unit only, at {_SYSTEMD_SECRET}
LoadCredential=turn-secret:{secret_source}
ExecStart=/usr/local/bin/callops exporter --config {user_config} --listen {listen}
Restart=on-failure
RestartSec=5
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
MemoryMax=256M
CPUQuota=50%
TasksMax=64

[Install]
WantedBy=multi-user.target
"""


def exporter_files(
    deployment: TurnDeployment,
    target: str,
    *,
    name: str,
    namespace: str,
    image: str,
    relay_host: str,
    exporter: ExporterSettings | None = None,
    secret: Secret | None = None,
) -> dict[str, str]:
    """The exporter's files for ``target`` (``kubernetes`` or ``systemd``; none for others)."""
    site = exporter.site if exporter is not None else "default"
    if target == "kubernetes":
        listen = f"0.0.0.0:{EXPORTER_PORT}"
        config = exporter_config(deployment, exporter, f"{_K8S_SECRET_DIR}/{_SECRET_KEY}", listen)
        objects = kubernetes_exporter_objects(
            deployment, name=name, namespace=namespace, image=image, config=config, secret=secret
        )
        address = f"{name}-exporter.{namespace}.svc:{EXPORTER_PORT}"
        return {
            "callops-exporter.yaml": render_kubernetes_exporter(
                objects, name=name, namespace=namespace, filled=secret is not None
            ),
            "prometheus-callops-exporter.yaml": scrape_jobs(deployment, config, address, relay_host, site),
        }
    if target == "systemd":
        listen = f"127.0.0.1:{EXPORTER_PORT}"
        config = exporter_config(deployment, exporter, _SYSTEMD_SECRET, listen)
        return {
            "callops-exporter.service": render_systemd_unit(
                secret_source=str(deployment.secret_file), listen=listen
            ),
            "callops-exporter.yaml": "# callops exporter config, rendered by callops deploy render.\n"
            + to_yaml(config),
            "prometheus-callops-exporter.yaml": scrape_jobs(
                deployment, config, f"127.0.0.1:{EXPORTER_PORT}", relay_host, site
            ),
        }
    return {}


__all__ = [
    "EXPORTER_PORT",
    "default_modules",
    "exporter_config",
    "exporter_files",
    "kubernetes_exporter_objects",
    "render_systemd_unit",
    "scrape_jobs",
]
