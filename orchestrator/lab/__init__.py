"""The NAT lab: network namespaces, veth pairs and real NATs on one Linux host.

:mod:`~callops.orchestrator.lab.topology` describes the lab as data (pure),
:mod:`~callops.orchestrator.lab.netns` applies it with ``ip``/``iptables``, and
:mod:`~callops.orchestrator.lab.lifecycle` adds coturn, state and the ``callops lab`` operations.
"""

from __future__ import annotations

__all__: list[str] = []
