"""A local Messaging Window API emulator: consumer websocket, agent control API, CoBrowse stand-in.

Layers: :mod:`.model` (conversations and the call state machine), :mod:`.session` (one consumer
websocket), :mod:`.cobrowse` (one CoBrowse channel socket), :mod:`.control_api` (the agent control
API) and :mod:`.http11` (the h11 codec) are sans-I/O; :mod:`.server` is the asyncio adapter;
:mod:`.control` and :mod:`.channel` are the clients. See docs/emulator.md.

The names below are imported on first use: a user of one submodule (the exporter serves HTTP with
:mod:`.http11`) does not load the server, websockets, httpx and PyJWT with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callops.orchestrator.emulator.auth import mint_jwt, verify_jwt
    from callops.orchestrator.emulator.channel import CoBrowseChannel
    from callops.orchestrator.emulator.control import (
        ControlClient,
        ControlError,
        ConversationInfo,
        Invitation,
    )
    from callops.orchestrator.emulator.model import CALL_TRANSITIONS, CallEvent, EmulatorModel
    from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

#: each public name and the submodule that defines it
_EXPORTS = {
    "CALL_TRANSITIONS": "model",
    "CallEvent": "model",
    "CoBrowseChannel": "channel",
    "ControlClient": "control",
    "ControlError": "control",
    "ConversationInfo": "control",
    "Emulator": "server",
    "EmulatorConfig": "server",
    "EmulatorModel": "model",
    "Invitation": "control",
    "mint_jwt": "auth",
    "verify_jwt": "auth",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CALL_TRANSITIONS",
    "CallEvent",
    "CoBrowseChannel",
    "ControlClient",
    "ControlError",
    "ConversationInfo",
    "Emulator",
    "EmulatorConfig",
    "EmulatorModel",
    "Invitation",
    "mint_jwt",
    "verify_jwt",
]
