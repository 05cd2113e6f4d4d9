"""The consumer side: Messaging Window API models, the invitation tracker, lpTag payloads, the client.

- :mod:`callops.consumer.models` -- pydantic v2 wire models (envelope, requests, notifications).
- :mod:`callops.consumer.tracker` -- the sans-I/O invitation tracker (CallInvited/Accepted/Closed).
- :mod:`callops.consumer.lptag` -- lpTag payload builders and validation (cobrowseOffered ...).
- :mod:`callops.consumer.call_states` -- the call dialog's state table, shared with the emulator.
- :mod:`callops.consumer.protocol` -- the sans-I/O protocol: requests, answers, keep-alive, reconnects.
- :mod:`callops.consumer.client` -- the asyncio websocket client that carries the protocol out.
- :mod:`callops.consumer.discovery` -- the Domain API (CSDS): the account's websocket and IDP hosts.
- :mod:`callops.consumer.identity` -- IDP signup (unauthenticated), the brand's JWT, renewal.
- :mod:`callops.consumer.rest` -- JSON over HTTPS (``httpx``), its errors translated.

The client imports ``websockets`` and ``httpx`` only when it connects, so importing this package
stays light.
"""

from __future__ import annotations

from callops.consumer.client import ConsumerClient, ConsumerProtocol, RequestRejected, consumer_url
from callops.consumer.lptag import (
    AutoAnswer,
    LpTagCallPayload,
    LpTagEventName,
    LpTagPublication,
    SessionErrorId,
    Visitor,
    answer_invitation,
    build_accepted,
    build_declined,
    build_offered,
    validate_event,
)
from callops.consumer.tracker import (
    CallAccepted,
    CallClosed,
    CallInvited,
    CloseReason,
    InvitationTracker,
    TrackerEvent,
)

__all__ = [
    "AutoAnswer",
    "CallAccepted",
    "CallClosed",
    "CallInvited",
    "CloseReason",
    "ConsumerClient",
    "ConsumerProtocol",
    "InvitationTracker",
    "LpTagCallPayload",
    "LpTagEventName",
    "LpTagPublication",
    "RequestRejected",
    "SessionErrorId",
    "TrackerEvent",
    "Visitor",
    "answer_invitation",
    "build_accepted",
    "build_declined",
    "build_offered",
    "consumer_url",
    "validate_event",
]
