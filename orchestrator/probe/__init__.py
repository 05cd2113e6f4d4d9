"""``callops probe``: will calls connect from this network, and over what?

:mod:`~callops.orchestrator.probe.verdict` decides the one-site verdict (pure),
:mod:`~callops.orchestrator.probe.onesite_report` builds the report from probe results,
:mod:`~callops.orchestrator.probe.settings` merges config, environment and flags,
:mod:`~callops.orchestrator.probe.onesite` runs the probes under one deadline;
:mod:`~callops.orchestrator.probe.paths` (messages, two-site verdict),
:mod:`~callops.orchestrator.probe.ice` (aioice glue) and
:mod:`~callops.orchestrator.probe.twosite` (``serve``/``peer``) are the two-site test.
"""

from __future__ import annotations

__all__: list[str] = []
