"""``callops deploy render``: one coturn deployment, three ways to run it.

:func:`render_bundle` turns a :class:`~callops.turn.config.TurnDeployment` plus the
:class:`DeployOptions` of ``callops.yaml``'s ``deploy:`` section into the files of one target,
as a mapping of relative path to text (pure, no I/O); :func:`write_bundle` writes them.

- ``systemd``: ``install-coturn.sh`` + ``turnserver.conf`` (Debian/Ubuntu hosts).
- ``kubernetes``: ``coturn.yaml`` -- Namespace, ConfigMap, Secret, Deployment (hostNetwork),
  CronJob running ``callops probe --json``.
- ``compose``: ``compose.yaml`` + ``turnserver.conf`` with ``network_mode: host``.

Every target ships the rendered ``turnserver.conf`` *without* the shared secret; the secret is
joined to it at start-up from a file (systemd, compose) or a Kubernetes Secret, never inlined in
a manifest, a command line or a log.
"""

from __future__ import annotations

import os
import shlex
from importlib import resources
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from callops.deploy.manifests import Manifest, k8s_object, run_as_nobody, to_yaml
from callops.deploy.render_exporter import exporter_files
from callops.errors import UsageError
from callops.orchestrator.exporter.exporter_config import ExporterSettings
from callops.secret import Secret
from callops.turn.config import CallopsConfig, TurnDeployment, config_error_from, render_turnserver_conf

Target = Literal["systemd", "kubernetes", "compose", "kubernetes-load"]
TARGETS: tuple[Target, ...] = ("systemd", "kubernetes", "compose")
#: ``callops load`` shards as a Kubernetes Indexed Job (not a relay deployment: not in TARGETS)
LOAD_TARGET: Target = "kubernetes-load"

#: where Debian's coturn package and the official image read their config
CONF_PATH = "/etc/turnserver.conf"
_K8S_SECRET_KEY = "turn-secret"
_IMAGE_CONF_DIR = "/etc/coturn"


class LoadJobOptions(BaseModel):
    """``deploy: load:`` -- the ``callops load`` run the ``kubernetes-load`` target renders."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    shards: int = Field(default=2, ge=1, le=100)
    """Load pods (Indexed Job completions and parallelism); each runs ``--shard i/N``."""
    profile: Literal["voice", "video"] = "voice"
    transport: Literal["udp", "tcp", "tls"] = "udp"
    calls: int = Field(default=100, ge=1)
    """Concurrent calls of the whole plan (spread over the shards); with ``ramp``, the ramp's maximum."""
    ramp: bool = False
    step_s: float = Field(default=30.0, ge=2)
    duration_s: float = Field(default=120.0, gt=0)
    workers: int = Field(default=2, ge=1, le=64)
    """Generator processes per pod (one per requested core)."""
    results_storage: str = "1Gi"
    """Size of the ReadWriteMany volume the shard reports are written to (merge reads them there)."""
    storage_class: str | None = None


class DeployOptions(BaseModel):
    """``callops.yaml``'s ``deploy:`` section: how the relay runs, beyond coturn's own config."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = Field(default="coturn", pattern=r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
    """Name of the Kubernetes objects and compose service."""
    namespace: str = Field(default="callops", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    """Kubernetes namespace."""
    image: str | None = None
    """coturn container image; default ``coturn/coturn:<coturn_version>``."""
    callops_image: str = "callops:0.1.0"
    """Image with callops installed, for the probe CronJob (build it from this repository)."""
    replicas: int = Field(default=2, ge=1)
    """Relays to run; anti-affinity puts each on its own node."""
    probe_schedule: str = "*/5 * * * *"
    """Cron schedule of the probe CronJob."""
    probe_host: str | None = None
    """Host the probe targets; default the first external IP, else the first listening IP, else the realm."""
    probe_timeout: float = Field(default=20.0, gt=0)
    """Seconds the probe may take."""
    cpu_request: str = "500m"
    memory_request: str = "256Mi"
    memory_limit: str = "1Gi"
    nofile_limit: int = Field(default=65536, ge=1024)
    """``LimitNOFILE`` of the systemd unit: each allocation holds sockets."""
    nftables: bool = False
    """Install nftables rules for the listening and relay ports by default (systemd target)."""
    turn_user: str = "turnserver"
    """The user Debian's coturn package runs as."""
    load: LoadJobOptions = Field(default_factory=LoadJobOptions)
    """The load test the ``kubernetes-load`` target renders (only against relays you operate)."""

    def coturn_image(self, deployment: TurnDeployment) -> str:
        return self.image or f"coturn/coturn:{deployment.coturn_version}"

    def probe_target(self, deployment: TurnDeployment) -> str:
        if self.probe_host:
            return self.probe_host
        if deployment.external_ips:
            return str(deployment.external_ips[0].public)
        if deployment.listening_ips:
            return str(deployment.listening_ips[0])
        return deployment.realm


def deploy_options(config: CallopsConfig, source: str = "callops.yaml") -> DeployOptions:
    """The ``deploy:`` section of ``config`` (defaults when absent)."""
    try:
        return DeployOptions.model_validate(config.section("deploy") or {})
    except pydantic.ValidationError as exc:
        raise config_error_from(exc, source, section="deploy") from None


def _sh(value: object) -> str:
    return shlex.quote(str(value))


def render_install_script(deployment: TurnDeployment, options: DeployOptions) -> str:
    """``install-coturn.sh`` with the deployment's values filled in."""
    template = resources.files("callops.deploy").joinpath("install-coturn.sh").read_text("utf-8")
    d = deployment
    values = {
        "REALM": d.realm,
        "CONF_PATH": CONF_PATH,
        "SECRET_PATH": d.secret_file,
        "TURN_USER": options.turn_user,
        "LISTENING_PORT": d.listening_port,
        "TLS_LISTENING_PORT": d.tls_listening_port,
        "MIN_PORT": d.min_port,
        "MAX_PORT": d.max_port,
        "TLS_CERT_FILE": d.tls_cert_file or "",
        "TLS_KEY_FILE": d.tls_key_file or "",
        "PROBE_HOST": options.probe_target(d),
        "PROBE_TIMEOUT": options.probe_timeout,
        "NOFILE_LIMIT": options.nofile_limit,
        "NFTABLES_DEFAULT": 1 if options.nftables else 0,
    }
    block = "# Rendered from callops.yaml:\n" + "\n".join(f"{k}={_sh(v)}" for k, v in values.items())
    return template.replace("# @@RENDERED-VALUES@@", block, 1)


def _labels(options: DeployOptions) -> dict[str, str]:
    return {"app.kubernetes.io/name": options.name, "app.kubernetes.io/part-of": "callops"}


_HOST_NETWORK_COMMENT = """\
# Why hostNetwork: a TURN relay hands out relay addresses (its own IP + a port from a range of
# thousands) that peers on the internet must reach directly. Through a Service or the pod network
# every relay port would need its own port mapping and the NAT would rewrite the addresses coturn
# advertises; with hostNetwork coturn binds the node's addresses, external-ip maps the node's
# public IP 1:1, and the relay range is reachable as-is. One relay per node (anti-affinity below),
# since two on one node would fight over the same ports.
# allowPrivilegeEscalation is true only when a port below 1024 is used (TURN/TLS on 443): the
# coturn image gives turnserver CAP_NET_BIND_SERVICE as a file capability, which no_new_privs
# (allowPrivilegeEscalation: false) would ignore; all other capabilities stay dropped.
"""


def _binds_privileged_port(d: TurnDeployment) -> bool:
    """A listener below 1024 (e.g. TURN/TLS on 443)."""
    return min(d.listening_port, d.tls_listening_port if d.tls_enabled else 65535) < 1024


#: where the coturn pod mounts the shared secret and writes the joined config
_SECRET_DIR = "/etc/coturn-secret"
_RUN_DIR = "/run/coturn"


def _join_secret_script(o: DeployOptions) -> str:
    """The init container's shell: the ConfigMap's turnserver.conf + ``static-auth-secret``."""
    return (
        "set -eu; umask 077; "
        f"s=$(tr -d '\\r\\n' < {_SECRET_DIR}/{_K8S_SECRET_KEY}); "
        f'[ -n "$s" ] || {{ echo "the Secret {o.name}-secret key {_K8S_SECRET_KEY} is empty:'
        f" kubectl -n {o.namespace} create secret generic {o.name}-secret"
        f' --from-file={_K8S_SECRET_KEY}=FILE" >&2; exit 1; }}; '
        f"cat {_IMAGE_CONF_DIR}/turnserver.conf > {_RUN_DIR}/turnserver.conf; "
        f"printf 'static-auth-secret=%s\\n' \"$s\" >> {_RUN_DIR}/turnserver.conf"
    )


#: container ports of coturn: (name, TLS port?, protocol)
_COTURN_PORTS = (
    ("turn-udp", False, "UDP"),
    ("turn-tcp", False, "TCP"),
    ("turns-tcp", True, "TCP"),
    ("turns-udp", True, "UDP"),
)


def _coturn_ports(d: TurnDeployment) -> list[Manifest]:
    return [
        {
            "name": name,
            "containerPort": d.tls_listening_port if tls else d.listening_port,
            "protocol": protocol,
        }
        for name, tls, protocol in _COTURN_PORTS
        if d.tls_enabled or not tls
    ]


def _secret_volume(o: DeployOptions) -> Manifest:
    return {"name": "secret", "secret": {"secretName": f"{o.name}-secret", "defaultMode": 0o440}}


def _coturn_volumes(d: TurnDeployment, o: DeployOptions) -> tuple[list[Manifest], list[Manifest]]:
    """The pod's volumes and the coturn container's mounts (the TLS Secret when TLS is on)."""
    mounts: list[Manifest] = [{"name": "run", "mountPath": _RUN_DIR}]
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": f"{o.name}-config"}},
        _secret_volume(o),
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
    if d.tls_enabled:
        cert, key = Path(str(d.tls_cert_file)), Path(str(d.tls_key_file))
        if cert.parent != key.parent:
            raise UsageError(
                "for Kubernetes, tls_cert_file and tls_key_file must be in one directory",
                hint="they are mounted from one kubernetes.io/tls Secret",
            )
        items = [{"key": "tls.crt", "path": cert.name}, {"key": "tls.key", "path": key.name}]
        volumes.append(
            {"name": "tls", "secret": {"secretName": f"{o.name}-tls", "defaultMode": 0o440, "items": items}}
        )
        mounts.append({"name": "tls", "mountPath": str(cert.parent), "readOnly": True})
    return volumes, mounts


def _coturn_container(
    d: TurnDeployment, o: DeployOptions, security: Manifest, mounts: list[Manifest]
) -> Manifest:
    return {
        "name": "coturn",
        "image": o.coturn_image(d),
        "args": ["-c", f"{_RUN_DIR}/turnserver.conf", "--log-file=stdout", "--pidfile", f"{_RUN_DIR}/pid"],
        "ports": _coturn_ports(d),
        "resources": {
            "requests": {"cpu": o.cpu_request, "memory": o.memory_request},
            "limits": {"memory": o.memory_limit},
        },
        "readinessProbe": {
            "tcpSocket": {"port": d.listening_port},
            "initialDelaySeconds": 2,
            "periodSeconds": 10,
        },
        "livenessProbe": {
            "tcpSocket": {"port": d.listening_port},
            "initialDelaySeconds": 10,
            "periodSeconds": 20,
        },
        "securityContext": security | {"allowPrivilegeEscalation": _binds_privileged_port(d)},
        "volumeMounts": mounts,
    }


def _coturn_pod_spec(d: TurnDeployment, o: DeployOptions, labels: dict[str, str]) -> Manifest:
    """hostNetwork, one relay per node, an init container joining the secret to the config."""
    volumes, mounts = _coturn_volumes(d, o)
    security: Manifest = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    }
    join_secret = {
        "name": "join-secret",
        "image": o.coturn_image(d),
        "command": ["sh", "-c", _join_secret_script(o)],
        "securityContext": security,
        "volumeMounts": [
            {"name": "config", "mountPath": _IMAGE_CONF_DIR, "readOnly": True},
            {"name": "secret", "mountPath": _SECRET_DIR, "readOnly": True},
            {"name": "run", "mountPath": _RUN_DIR},
        ],
    }
    one_per_node = {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}
    return {
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "securityContext": run_as_nobody(),
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [one_per_node]}},
        "initContainers": [join_secret],
        "containers": [_coturn_container(d, o, security, mounts)],
        "volumes": volumes,
        "terminationGracePeriodSeconds": 30,
    }


def _probe_cronjob(d: TurnDeployment, o: DeployOptions, labels: dict[str, str]) -> Manifest:
    """``callops probe --json`` against the relay on ``probe_schedule``."""
    probe_uri = f"turn:{o.probe_target(d)}:{d.listening_port}?transport=udp"
    probe = {
        "name": "probe",
        "image": o.callops_image,
        "command": [
            "callops",
            "probe",
            "--turn",
            probe_uri,
            "--secret-file",
            f"{_SECRET_DIR}/{_K8S_SECRET_KEY}",
            "--timeout",
            f"{o.probe_timeout:g}",
            "--json",
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "secret", "mountPath": _SECRET_DIR, "readOnly": True}],
    }
    pod = {
        "metadata": {"labels": {**labels, "app.kubernetes.io/component": "probe"}},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": run_as_nobody(),
            "containers": [probe],
            "volumes": [_secret_volume(o)],
        },
    }
    spec = {
        "schedule": o.probe_schedule,
        "concurrencyPolicy": "Forbid",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 5,
        "jobTemplate": {
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": int(o.probe_timeout) + 60, "template": pod}
        },
    }
    return k8s_object(
        "batch/v1", "CronJob", f"{o.name}-probe", {"namespace": o.namespace, "labels": labels}, spec=spec
    )


def _kubernetes_objects(
    deployment: TurnDeployment, options: DeployOptions, secret: Secret | None
) -> list[Manifest]:
    d, o = deployment, options
    labels = _labels(o)
    meta = {"namespace": o.namespace, "labels": labels}
    deployment_spec = {
        "replicas": o.replicas,
        "selector": {"matchLabels": labels},
        # hostNetwork ports cannot be shared: replace a relay before starting its successor.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        "template": {"metadata": {"labels": labels}, "spec": _coturn_pod_spec(d, o, labels)},
    }
    secret_data = {_K8S_SECRET_KEY: secret.reveal() if secret is not None else ""}
    return [
        k8s_object("v1", "Namespace", o.namespace, {"labels": labels}),
        k8s_object(
            "v1", "ConfigMap", f"{o.name}-config", meta, data={"turnserver.conf": render_turnserver_conf(d)}
        ),
        k8s_object("v1", "Secret", f"{o.name}-secret", meta, type="Opaque", stringData=secret_data),
        k8s_object("apps/v1", "Deployment", o.name, meta, spec=deployment_spec),
        _probe_cronjob(d, o, labels),
    ]


def kubernetes_objects(
    deployment: TurnDeployment, options: DeployOptions, *, secret: Secret | None = None
) -> list[Manifest]:
    """The Kubernetes objects, as dicts (``secret`` fills the Secret; else it is left empty)."""
    return _kubernetes_objects(deployment, options, secret)


def render_kubernetes(
    deployment: TurnDeployment, options: DeployOptions, *, secret: Secret | None = None
) -> str:
    docs = []
    for obj in kubernetes_objects(deployment, options, secret=secret):
        text = to_yaml(obj)
        if obj["kind"] == "Deployment":
            text = _HOST_NETWORK_COMMENT + text
        if obj["kind"] == "Secret" and secret is None:
            text = (
                "# Fill in the shared secret without putting it in this file:\n"
                f"#   kubectl -n {options.namespace} create secret generic {options.name}-secret \\\n"
                f"#     --from-file={_K8S_SECRET_KEY}=/path/to/turn-secret --dry-run=client -o yaml"
                " | kubectl apply -f -\n"
                "# (coturn cannot read the secret from a file: an init container appends it to the config.)\n"
            ) + text
        docs.append(text)
    header = (
        "# coturn for Kubernetes, rendered by `callops deploy render --target kubernetes`.\n"
        "# TLS: put your certificate in a kubernetes.io/tls Secret named "
        f"{options.name}-tls (never generated here); coturn reloads it on SIGUSR2.\n"
    )
    return header + "---\n".join(docs)


#: the pod annotation an Indexed Job sets to the pod's completion index
_COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def _load_relay_uri(d: TurnDeployment, o: DeployOptions) -> str:
    lo = o.load
    if lo.transport != "tls":
        return f"turn:{o.probe_target(d)}:{d.listening_port}?transport={lo.transport}"
    if not d.tls_enabled:
        raise UsageError("deploy.load.transport tls needs TLS on the relay", hint="set turn.tls_cert_file")
    return f"turns:{o.probe_target(d)}:{d.tls_listening_port}"


def _load_plan_args(lo: LoadJobOptions) -> tuple[list[str], float]:
    """``callops load``'s plan options and the seconds the plan runs."""
    plan = ["--profile", lo.profile, "--workers", str(lo.workers)]
    if lo.ramp:
        plan += ["--ramp", "--ramp-max", str(lo.calls), "--step-duration", f"{lo.step_s:g}"]
        total = lo.step_s * 50
    else:
        plan += ["--calls", str(lo.calls), "--duration", f"{lo.duration_s:g}"]
        total = lo.duration_s
    plan += ["--max-calls", str(max(600, lo.calls)), "--max-duration", f"{max(900.0, total):g}"]
    return plan, total


_LOAD_SECRET_DIR = "/etc/callops-secret"
_RESULTS_DIR = "/results"


def _load_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _results_volumes(o: DeployOptions) -> list[Manifest]:
    return [
        {"name": "results", "persistentVolumeClaim": {"claimName": f"{o.name}-load-results"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]


def _results_mounts() -> list[Manifest]:
    return [{"name": "results", "mountPath": _RESULTS_DIR}, {"name": "tmp", "mountPath": "/tmp"}]


def _results_pvc(o: DeployOptions, meta: Manifest) -> Manifest:
    spec: Manifest = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": o.load.results_storage}},
    }
    if o.load.storage_class:
        spec["storageClassName"] = o.load.storage_class
    return k8s_object("v1", "PersistentVolumeClaim", f"{o.name}-load-results", meta, spec=spec)


def _shard_container(d: TurnDeployment, o: DeployOptions, plan: list[str]) -> Manifest:
    """One ``callops load --shard $(SHARD_INDEX)/N`` writing its report to the results volume."""
    lo, results = o.load, _RESULTS_DIR
    command = [
        "callops",
        "load",
        "--turn",
        _load_relay_uri(d, o),
        "--secret-file",
        f"{_LOAD_SECRET_DIR}/{_K8S_SECRET_KEY}",
        *plan,
        "--shard",
        f"$(SHARD_INDEX)/{lo.shards}",
        "--report",
        f"{results}/shard-$(SHARD_INDEX).json",
        "--junit",
        f"{results}/shard-$(SHARD_INDEX).xml",
    ]
    cpu = str(lo.workers)
    return {
        "name": "load",
        "image": o.callops_image,
        "command": command,
        "env": [{"name": "SHARD_INDEX", "valueFrom": {"fieldRef": {"fieldPath": _COMPLETION_INDEX}}}],
        "resources": {"requests": {"cpu": cpu, "memory": "512Mi"}, "limits": {"cpu": cpu, "memory": "1Gi"}},
        "securityContext": _load_security(),
        "volumeMounts": [
            {"name": "secret", "mountPath": _LOAD_SECRET_DIR, "readOnly": True},
            *_results_mounts(),
        ],
    }


def _shard_job(d: TurnDeployment, o: DeployOptions, labels: dict[str, str], meta: Manifest) -> Manifest:
    """The Indexed Job: ``shards`` pods at once, preferably one per node."""
    lo = o.load
    plan, total = _load_plan_args(lo)
    spread = {
        "weight": 100,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": labels},
            "topologyKey": "kubernetes.io/hostname",
        },
    }
    pod = {
        "restartPolicy": "Never",
        "securityContext": run_as_nobody(),
        # one shard per node: the generators must not share a machine's CPU
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [spread]}},
        "containers": [_shard_container(d, o, plan)],
        "volumes": [_secret_volume(o), *_results_volumes(o)],
    }
    spec = {
        "completionMode": "Indexed",
        "completions": lo.shards,
        "parallelism": lo.shards,
        "backoffLimit": 0,
        "activeDeadlineSeconds": int(total) + 600,
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    return k8s_object("batch/v1", "Job", f"{o.name}-load", meta, spec=spec)


def _merge_job(o: DeployOptions, labels: dict[str, str], meta: Manifest) -> Manifest:
    """``callops load merge`` of the shard reports on the results volume."""
    results = _RESULTS_DIR
    merge = {
        "name": "merge",
        "image": o.callops_image,
        "command": [
            "sh",
            "-c",
            f"exec callops load merge {results}/shard-*.json "
            f"--report {results}/merged.json --junit {results}/merged.xml "
            f"--chart {results}/merged.png",
        ],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": _load_security(),
        "volumeMounts": _results_mounts(),
    }
    pod = {
        "restartPolicy": "Never",
        "securityContext": run_as_nobody(),
        "containers": [merge],
        "volumes": _results_volumes(o),
    }
    template = {"metadata": {"labels": {**labels, "app.kubernetes.io/component": "load-merge"}}, "spec": pod}
    spec = {"backoffLimit": 0, "activeDeadlineSeconds": 600, "template": template}
    return k8s_object("batch/v1", "Job", f"{o.name}-load-merge", meta, spec=spec)


def load_job_objects(deployment: TurnDeployment, options: DeployOptions) -> list[Manifest]:
    """PVC, Indexed Job (N shards of ``callops load``) and the merge Job, as dicts."""
    labels = {**_labels(options), "app.kubernetes.io/component": "load"}
    meta = {"namespace": options.namespace, "labels": labels}
    shard_job = _shard_job(deployment, options, labels, meta)
    return [_results_pvc(options, meta), shard_job, _merge_job(options, labels, meta)]


def render_load_job(deployment: TurnDeployment, options: DeployOptions) -> dict[str, str]:
    """``load-job.yaml`` (results volume + Indexed Job) and ``load-merge.yaml`` (the merge Job)."""
    pvc, shard_job, merge_job = load_job_objects(deployment, options)
    o, lo = options, options.load
    header = (
        "# callops load as a Kubernetes Indexed Job, rendered by\n"
        "# `callops deploy render --target kubernetes-load`. ONLY AGAINST RELAYS YOU OPERATE.\n"
        f"# {lo.shards} pods run `callops load --shard i/{lo.shards}` at once and write\n"
        f"# /results/shard-i.json to the volume {o.name}-load-results; when the Job is complete,\n"
        f"#   kubectl -n {o.namespace} wait --for=condition=complete job/{o.name}-load --timeout=1h\n"
        "#   kubectl apply -f load-merge.yaml\n"
        "# merges them (percentiles recomputed from the per-call data) into /results/merged.json.\n"
        f"# The Secret {o.name}-secret (key {_K8S_SECRET_KEY}) is the relay's, from the kubernetes target.\n"
    )
    return {
        "load-job.yaml": header + to_yaml(pvc) + "---\n" + to_yaml(shard_job),
        "load-merge.yaml": "# Run after the load Job completed (see load-job.yaml).\n" + to_yaml(merge_job),
    }


def render_compose(deployment: TurnDeployment, options: DeployOptions) -> str:
    d, o = deployment, options
    join = (
        "set -eu; umask 077; s=$$(tr -d '\\r\\n' < /run/secrets/turn_secret); "
        "cp /etc/coturn/turnserver.conf /tmp/turnserver.conf; "
        "printf 'static-auth-secret=%s\\n' \"$$s\" >> /tmp/turnserver.conf; "
        "exec turnserver -c /tmp/turnserver.conf --log-file=stdout"
    )
    volumes = ["./turnserver.conf:/etc/coturn/turnserver.conf:ro"]
    if d.tls_enabled:
        volumes += [f"{d.tls_cert_file}:{d.tls_cert_file}:ro", f"{d.tls_key_file}:{d.tls_key_file}:ro"]
    service = {
        "image": o.coturn_image(d),
        "user": "65534:65534",
        # A relay must bind the host's addresses and its relay port range as-is: no port mapping.
        "network_mode": "host",
        "restart": "on-failure",
        "entrypoint": ["sh", "-c", join],
        "volumes": volumes,
        "secrets": ["turn_secret"],
        "tmpfs": ["/tmp:mode=1777,size=1m"],
        "read_only": True,
        "ulimits": {"nofile": {"soft": o.nofile_limit, "hard": o.nofile_limit}},
        "cap_drop": ["ALL"],
        "cap_add": ["NET_BIND_SERVICE"],
        "healthcheck": {
            "test": [
                "CMD-SHELL",
                f"turnutils_stunclient -p {d.listening_port} {o.probe_target(d)} >/dev/null",
            ],
            "interval": "30s",
            "timeout": "5s",
            "retries": 3,
        },
    }
    doc = {
        "name": o.name,
        "services": {o.name: service},
        "secrets": {"turn_secret": {"file": str(d.secret_file)}},
    }
    return (
        "# coturn with docker compose, rendered by `callops deploy render --target compose`.\n"
        f"# The shared secret is read from {d.secret_file} and joined to the config at start-up; coturn\n"
        f"# runs as uid 65534 here, so: chown 65534:65534 {d.secret_file} && chmod 0400 {d.secret_file}\n"
        "# TLS certificates are never generated here; `docker compose kill -s SIGUSR2` reloads them.\n"
    ) + to_yaml(doc)


def render_bundle(
    deployment: TurnDeployment,
    target: Target,
    options: DeployOptions | None = None,
    *,
    secret: Secret | None = None,
    exporter: ExporterSettings | None = None,
) -> dict[str, str]:
    """The files of ``target``: relative path -> text. ``secret`` only fills the Kubernetes Secrets.

    ``systemd`` and ``kubernetes`` also get ``callops exporter`` (:mod:`callops.deploy.render_exporter`)
    with ``exporter``'s modules, else modules derived from the relay.
    """
    o = options or DeployOptions()
    conf = render_turnserver_conf(deployment)
    extra = exporter_files(
        deployment,
        target,
        name=o.name,
        namespace=o.namespace,
        image=o.callops_image,
        relay_host=o.probe_target(deployment),
        exporter=exporter,
        secret=secret,
    )
    if target == "systemd":
        return {"install-coturn.sh": render_install_script(deployment, o), "turnserver.conf": conf, **extra}
    if target == "kubernetes":
        return {"coturn.yaml": render_kubernetes(deployment, o, secret=secret), **extra}
    if target == "compose":
        return {"compose.yaml": render_compose(deployment, o), "turnserver.conf": conf}
    if target == LOAD_TARGET:
        return render_load_job(deployment, o)
    raise UsageError(f"unknown target {target!r}", hint=f"use one of {', '.join(TARGETS)}, {LOAD_TARGET}")


def write_bundle(
    files: dict[str, str], out_dir: str | os.PathLike[str], *, private: frozenset[str] = frozenset()
) -> list[Path]:
    """Write ``files`` under ``out_dir``: scripts 0755, the ``private`` ones (holding a secret) 0600."""
    root = Path(out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {root}: {exc.strerror}", hint="choose another -o DIR") from None
    written = []
    for name, text in files.items():
        path = root / name
        mode = 0o600 if name in private else 0o755 if name.endswith(".sh") else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        path.chmod(mode)
        written.append(path)
    return written


__all__ = [
    "CONF_PATH",
    "LOAD_TARGET",
    "TARGETS",
    "DeployOptions",
    "LoadJobOptions",
    "Target",
    "deploy_options",
    "kubernetes_objects",
    "load_job_objects",
    "render_bundle",
    "render_compose",
    "render_install_script",
    "render_kubernetes",
    "render_load_job",
    "write_bundle",
]
