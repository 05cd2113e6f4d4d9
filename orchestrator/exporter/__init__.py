"""``callops exporter``: STUN/TURN/ICE probes for Prometheus, the way blackbox_exporter probes HTTP.

:mod:`~callops.orchestrator.exporter.exporter_config` (the ``exporter:`` section and its modules),
:mod:`~callops.orchestrator.exporter.modules` (the prober registry: one adapter per prober),
:mod:`~callops.orchestrator.exporter.outcome` (a probe's answer as metrics in a fresh registry),
:mod:`~callops.orchestrator.exporter.service` (``/probe``, ``/metrics``, ``/``: timeouts and bounds),
:mod:`~callops.orchestrator.exporter.http` (the h11/asyncio adapter) and
:mod:`~callops.orchestrator.exporter.page` (the HTML index).
"""

from __future__ import annotations

__all__: list[str] = []
