"""Fixtures of the exporter tests: a real coturn on loopback, the exporter in-process over HTTP (``kit``).

``coturn``: use-auth-secret, UDP/TCP + TLS (self-signed, its own CA file), RFC 5780, loopback peers
allowed (the relay test echoes through a second allocation). ``secret_file`` holds its shared
secret. ``running_exporter(settings)`` serves an :class:`Exporter` on a free loopback port;
``get(url, headers)`` is one HTTP GET (urllib in a thread) -> ``(status, body)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callops.orchestrator.exporter.exporter_config import ExporterSettings, exporter_settings
from callops.orchestrator.exporter.http import HttpServer
from callops.orchestrator.exporter.service import Exporter
from callops.turn.coturn import LoopbackCoturn


@pytest.fixture
def coturn(start_relay: Callable[..., LoopbackCoturn]) -> LoopbackCoturn:
    """coturn on 127.0.0.1 with its RFC 5780 second address (see tests/orchestrator/conftest.py)."""
    return start_relay()


@pytest.fixture
def secret_file(tmp_path: Path, coturn: LoopbackCoturn) -> Path:
    path = tmp_path / "turn-secret"
    path.write_text(coturn.secret.reveal() + "\n")
    path.chmod(0o600)
    return path


def turn_modules(secret_file: Path, ca_file: Path) -> dict[str, object]:
    """The modules a site would configure against one relay: TURN per transport, relay, TLS."""
    return {
        "turn_udp": {"prober": "turn", "transport": "udp", "secret_file": str(secret_file)},
        "turn_tcp": {"prober": "turn", "transport": "tcp", "secret_file": str(secret_file)},
        "turn_tls": {
            "prober": "turn",
            "transport": "tls",
            "secret_file": str(secret_file),
            "ca_file": str(ca_file),
        },
        "relay": {"prober": "relay", "transport": "udp", "secret_file": str(secret_file), "packets": 5},
        "tls_relay": {"prober": "tls", "ca_file": str(ca_file)},
    }


def settings_for(modules: Mapping[str, object], **fields: object) -> ExporterSettings:
    return exporter_settings({"modules": dict(modules), **fields}, source="test")


@contextlib.asynccontextmanager
async def running_exporter(
    settings: ExporterSettings, env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[str, Exporter]]:
    exporter = Exporter(settings, env=env or {})
    server = HttpServer(exporter)
    _, port = await server.start("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}", exporter
    finally:
        await server.close()


def _get(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def get(url: str, headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> tuple[int, str]:
    return await asyncio.to_thread(_get, url, headers or {}, timeout)


def samples(body: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> sample name -> [(labels, value)] (parsed by prometheus_client's parser)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def config_file(directory: Path, text: str, secret: str | None = None) -> Path:
    """``callops.yaml`` in ``directory`` holding ``text``; with ``secret``, a ``turn-secret`` file
    holding it is written first and ``{secret_file}`` in ``text`` names it."""
    if secret is not None:
        secret_file = directory / "turn-secret"
        secret_file.write_text(secret + "\n")
        text = text.format(secret_file=secret_file)
    path = directory / "callops.yaml"
    path.write_text(text)
    return path


def value(body: str, name: str) -> float:
    rows = samples(body)[name]
    assert len(rows) == 1, rows
    return rows[0][1]


class Kit:
    """The helpers above as one fixture (test modules here do not import each other)."""

    turn_modules = staticmethod(turn_modules)
    settings_for = staticmethod(settings_for)
    running_exporter = staticmethod(running_exporter)
    get = staticmethod(get)
    samples = staticmethod(samples)
    value = staticmethod(value)
    config_file = staticmethod(config_file)


@pytest.fixture
def kit() -> Kit:
    return Kit()
