"""A local Messaging Window API emulator: consumer websocket, agent control API, CoBrowse stand-in.

Layers: :mod:`.model` (conversations and the call state machine), :mod:`.session` (one consumer
websocket), :mod:`.cobrowse` (one CoBrowse channel socket), :mod:`.control_api` (the agent control
API) and :mod:`.http11` (the h11 codec) are sans-I/O; :mod:`.server` is the asyncio adapter;
:mod:`.control` and :mod:`.channel` are the clients. See docs/emulator.md.
"""

from __future__ import annotations

from callops.orchestrator.emulator.auth import mint_jwt, verify_jwt
from callops.orchestrator.emulator.channel import CoBrowseChannel
from callops.orchestrator.emulator.control import ControlClient, ControlError, ConversationInfo, Invitation
from callops.orchestrator.emulator.model import CALL_TRANSITIONS, CallEvent, EmulatorModel
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

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
