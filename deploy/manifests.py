"""What every rendered Kubernetes manifest shares: the object envelope, the pod user, the YAML.

Objects are plain dicts in the order Kubernetes documents them (``apiVersion``, ``kind``,
``metadata``, then the body), dumped by :func:`to_yaml`. A dict used twice in one object (the
labels of a Deployment and of its selector) is dumped once with a YAML anchor and aliased.
"""

from __future__ import annotations

from typing import Any

import yaml

#: a Kubernetes object (or a part of one) as the YAML dumper takes it
Manifest = dict[str, Any]


def k8s_object(api_version: str, kind: str, name: str, meta: Manifest, **body: object) -> Manifest:
    """``{apiVersion, kind, metadata: {name, **meta}, **body}``."""
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **meta}, **body}


def run_as_nobody() -> Manifest:
    """A pod security context: every container runs as nobody (65534), never as root."""
    return {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534}


def to_yaml(obj: object) -> str:
    """Block-style YAML in the objects' own key order."""
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=110)


__all__ = ["Manifest", "k8s_object", "run_as_nobody", "to_yaml"]
