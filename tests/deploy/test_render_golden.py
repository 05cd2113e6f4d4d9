"""Rendered deployment files are pinned byte for byte: a refactoring of the renderers changes none.

The files under ``golden/`` are what ``render_bundle`` gave for three fixed configurations. When a
change of the manifests is intended, regenerate them and review the diff::

    CALLOPS_UPDATE_GOLDEN=1 python3 -m pytest tests/deploy/test_render_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callops.deploy.render import DeployOptions, LoadJobOptions, Target, render_bundle
from callops.orchestrator.exporter.exporter_config import ExporterSettings
from callops.secret import Secret
from callops.turn.config import TurnDeployment

GOLDEN = Path(__file__).parent / "golden"

_OPTIONS = DeployOptions(
    name="relay",
    namespace="ops",
    replicas=3,
    probe_timeout=7.5,
    load=LoadJobOptions(ramp=True, calls=900, step_s=10, shards=4, storage_class="fast", workers=3),
)
_EXPORTER = ExporterSettings.model_validate(
    {
        "site": "eu-1",
        "modules": {
            "turn_udp": {
                "prober": "turn",
                "transport": "udp",
                "secret_file": "/etc/callops-secret/turn-secret",
            },
            "cert": {"prober": "tls"},
        },
    }
)
#: (case, target, exporter, secret), rendered for the ``deployment`` fixture (conftest.py)
CASES: list[tuple[str, Target, ExporterSettings | None, Secret | None]] = [
    ("kubernetes", "kubernetes", None, None),
    ("kubernetes-exporter-secret", "kubernetes", _EXPORTER, Secret("golden-test-secret", source="test")),
    ("kubernetes-load", "kubernetes-load", None, None),
    ("compose", "compose", None, None),
    ("systemd", "systemd", None, None),
]


def _rendered(deployment: TurnDeployment, case: str) -> dict[str, str]:
    """The manifests and units of ``case`` (the install script is its template with values filled in)."""
    _, target, exporter, secret = next(c for c in CASES if c[0] == case)
    bundle = render_bundle(deployment, target, _OPTIONS, secret=secret, exporter=exporter)
    return {f"{case}/{n}": text for n, text in bundle.items() if n.endswith((".yaml", ".service"))}


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_rendered_files_are_byte_identical_to_their_golden_copies(
    deployment: TurnDeployment, case: str
) -> None:
    for name, text in _rendered(deployment, case).items():
        path = GOLDEN / name
        if os.environ.get("CALLOPS_UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"no golden copy of {name}: run with CALLOPS_UPDATE_GOLDEN=1 and review it"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from {path} (intended? regenerate)"


def test_every_golden_copy_is_still_rendered(deployment: TurnDeployment) -> None:
    stored = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    assert stored == {name for case, *_ in CASES for name in _rendered(deployment, case)}
