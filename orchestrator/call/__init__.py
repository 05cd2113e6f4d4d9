"""Headless WebRTC calls along the whole invitation path (``callops call``, ``callops smoke``).

Layers: :mod:`.timeline`, :mod:`.quality` and :mod:`.report` are pure; :mod:`.media`,
:mod:`.pair` and :mod:`.peer` wrap aiortc/aioice; :mod:`.session` drives one call through the
emulator; :mod:`.smoke` runs many. Importing this package does not import aiortc.
"""

from __future__ import annotations

__all__: list[str] = []
