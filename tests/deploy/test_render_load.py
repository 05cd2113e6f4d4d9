"""``callops deploy render --target kubernetes-load``: the Indexed Job that runs load shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from callops.deploy.render import DeployOptions, LoadJobOptions, render_bundle
from callops.errors import UsageError
from callops.orchestrator.cli import cli
from callops.turn.config import TurnDeployment

K8S_VERSIONS = ("1.28", "1.30", "1.33")


@pytest.fixture
def deployment(relay_without_tls: TurnDeployment) -> TurnDeployment:
    return relay_without_tls


def _docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _load_docs(deployment: TurnDeployment, **load: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    files = render_bundle(deployment, "kubernetes-load", DeployOptions(load=LoadJobOptions(**load)))
    assert set(files) == {"load-job.yaml", "load-merge.yaml"}
    return _docs(files["load-job.yaml"]), _docs(files["load-merge.yaml"])


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_load_manifests_validate_against_the_api_schema(deployment: TurnDeployment, version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    job_docs, merge_docs = _load_docs(deployment)
    assert [d["kind"] for d in job_docs] == ["PersistentVolumeClaim", "Job"]
    for doc in job_docs + merge_docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_indexed_job_runs_one_shard_per_pod_against_the_relay(deployment: TurnDeployment) -> None:
    job_docs, merge_docs = _load_docs(deployment, shards=4, calls=800, profile="video")
    job = job_docs[1]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 4, 4)
    container = job["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:4] == ["callops", "load", "--turn", "turn:203.0.113.10:3478?transport=udp"]
    assert command[command.index("--shard") + 1] == "$(SHARD_INDEX)/4"
    assert command[command.index("--report") + 1] == "/results/shard-$(SHARD_INDEX).json"
    assert command[command.index("--max-calls") + 1] == "800"  # the cap is raised explicitly, never removed
    assert "--secret-file" in command and not any("secret=" in part for part in command)
    env = container["env"][0]
    assert env["name"] == "SHARD_INDEX"
    assert "job-completion-index" in env["valueFrom"]["fieldRef"]["fieldPath"]
    merge = merge_docs[0]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "callops load merge /results/shard-*.json" in merge
    claim = job_docs[0]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert {
        v["persistentVolumeClaim"]["claimName"]
        for v in job["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    } == {claim["metadata"]["name"]}


def test_tls_load_needs_tls_on_the_relay(deployment: TurnDeployment) -> None:
    with pytest.raises(UsageError, match="needs TLS on the relay"):
        _load_docs(deployment, transport="tls")


def test_cli_renders_the_load_target(deployment: TurnDeployment, tmp_path: Path) -> None:
    config = tmp_path / "callops.yaml"
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    config.write_text(
        yaml.safe_dump(
            {
                "turn": {**deployment.model_dump(mode="json", exclude_none=True), "secret_file": str(secret)},
                "deploy": {"load": {"shards": 3}},
            }
        )
    )
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            "render",
            "--target",
            "kubernetes-load",
            "--config",
            str(config),
            "-o",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    job = _docs((tmp_path / "out" / "load-job.yaml").read_text())[1]
    assert job["spec"]["completions"] == 3
    assert "ONLY AGAINST RELAYS YOU OPERATE" in (tmp_path / "out" / "load-job.yaml").read_text()
