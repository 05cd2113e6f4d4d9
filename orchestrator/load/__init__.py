"""``callops load``: call-shaped relayed load against one TURN relay, its capacity, sampled call quality.

Layers: :mod:`.plan` (the schedule and the caps) and :mod:`.report` (per-call results, step
aggregates, capacity, merge) are pure; :mod:`.turnclient` is the sans-I/O TURN control plane;
:mod:`.worker` is one process's tight send/receive loop; :mod:`.runner` starts one worker per core,
aggregates their steps, runs sampled aiortc calls and stops on signals; :mod:`.output` renders the
table, JUnit and the PNG chart. The traffic itself (profiles, schedule, payload, receiver
statistics) is :mod:`callops.turn.traffic`. Importing this package imports none of them.
"""

from __future__ import annotations

__all__: list[str] = []
