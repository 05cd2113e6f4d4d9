"""Messaging Window API wire models (consumer side), pydantic v2.

These are the boundary models shared by the consumer client and the emulator. They follow
``shared/protocol/messaging-window-api.md`` and the voice/video tutorial:

- Unknown fields are kept (``extra="allow"``) and never fatal: servers add fields over time.
- "An array containing a single element may be sent using the element itself instead of the
  array" -- every list field accepts a bare element.
- ``expires`` in the call dialog's metaData is epoch **seconds** (float); every other timestamp
  (``creationTs``, ``metaDataLastUpdateTs``, ``currentTime`` ...) is epoch **milliseconds**.
- A dialog's participants come either as ``participants`` (a list of ids, as in the tutorial's
  COBROWSE dialog) or ``participantsDetails`` (objects with ``id`` and ``role``); both are accepted.
"""

from __future__ import annotations

import json
import math
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, field_validator
from pydantic import ValidationError as PydanticValidationError

from callops.errors import RemoteProtocolError
from callops.jsontypes import JsonObject, JsonValue
from callops.validation import describe_validation_error

#: Largest frame callops accepts or sends (the emulator closes or answers 400 above it).
MAX_FRAME_BYTES = 1024 * 1024
#: ConsumerAuthentication.jwt is at most this many characters.
MAX_JWT_LENGTH = 2048
#: JSON nested deeper than this (arrays and objects) is refused: no frame needs it, and a
#: deeper one could exhaust the recursion limit where it is decoded or encoded again.
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def json_depth(data: bytes) -> int:
    """How deeply arrays and objects nest in ``data``, a valid JSON text (strings ignored)."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def decode_json(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> JsonValue:
    """``data`` as JSON; :class:`RemoteProtocolError` when it is not valid JSON (RFC 8259: no NaN,
    no Infinity), or nests deeper than ``max_depth``. Never another exception."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        value: JsonValue = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise RemoteProtocolError(f"nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RemoteProtocolError(f"not valid JSON: {exc}") from None
    # a cheap count first: most frames have fewer brackets than the limit
    if raw.count(b"[") + raw.count(b"{") > max_depth and json_depth(raw) > max_depth:
        raise RemoteProtocolError(f"nested deeper than {max_depth} levels")
    return value


def _listify(value: object) -> object:
    """A single element may stand for a one-element array."""
    if value is None or isinstance(value, list):
        return value
    return [value]


T = TypeVar("T")
ListOf = Annotated[list[T], BeforeValidator(_listify)]


class WireModel(BaseModel):
    """Base of every wire model: unknown fields kept, names exactly as on the wire."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def wire(self) -> JsonObject:
        """The JSON-ready dict, without the fields that were never set."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


# --- enums -------------------------------------------------------------------------------------


class ChannelType(StrEnum):
    MESSAGING = "MESSAGING"
    COBROWSE = "COBROWSE"


class DialogType(StrEnum):
    MAIN = "MAIN"
    OTHER = "OTHER"
    POST_SURVEY = "POST_SURVEY"


class CallMode(StrEnum):
    """The modes that make a COBROWSE dialog a call (co-browsing uses shared/view/follow)."""

    VOICE_CALL = "VOICE_CALL"
    VIDEO_CALL = "VIDEO_CALL"


class SessionState(StrEnum):
    INVITED = "INVITED"
    ACCEPTED = "ACCEPTED"
    CLOSED = "CLOSED"


class ChangeType(StrEnum):
    UPSERT = "UPSERT"
    DELETE = "DELETE"


# --- headers -----------------------------------------------------------------------------------

CLIENT_PROPERTIES: Literal[".ams.headers.ClientProperties"] = ".ams.headers.ClientProperties"
CONSUMER_AUTHENTICATION: Literal[".ams.headers.ConsumerAuthentication"] = (
    ".ams.headers.ConsumerAuthentication"
)


class ClientProperties(WireModel):
    type: Literal[".ams.headers.ClientProperties"] = CLIENT_PROPERTIES
    appId: str | None = None
    appVersion: str | None = None
    ipAddress: str | None = None
    deviceFamily: str | None = None
    os: str | None = None
    osVersion: str | None = None
    osName: str | None = None
    integration: str | None = None
    integrationVersion: str | None = None
    browser: str | None = None
    browserVersion: str | None = None
    timeZone: str | None = None
    deviceManufacture: str | None = None
    deviceModel: str | None = None
    features: ListOf[str] | None = None


class ConsumerAuthentication(WireModel):
    type: Literal[".ams.headers.ConsumerAuthentication"] = CONSUMER_AUTHENTICATION
    jwt: str = Field(min_length=1, max_length=MAX_JWT_LENGTH, repr=False)


# --- envelope ----------------------------------------------------------------------------------


def _id_as_string(value: object) -> object:
    # numeric ids are answered as strings; a huge or non-finite number stays a number (and fails)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value) if abs(value) < 10**64 else value
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() and abs(value) < 1e64 else str(value)
    return value


class Request(WireModel):
    kind: Literal["req"] = "req"
    id: Annotated[str, Field(min_length=1, max_length=64), BeforeValidator(_id_as_string)]
    type: str = Field(min_length=1)
    body: Any = None
    headers: ListOf[dict[str, Any]] | None = None
    metadata: Any = None

    def header(self, header_type: str) -> dict[str, Any] | None:
        """The first header of ``header_type``, if any."""
        for h in self.headers or []:
            if h.get("type") == header_type:
                return h
        return None


class Response(WireModel):
    kind: Literal["resp"] = "resp"
    reqId: Annotated[str, BeforeValidator(_id_as_string)]
    code: int
    type: str | None = None
    body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


class Notification(WireModel):
    kind: Literal["notification"] = "notification"
    type: str
    body: Any = None


Frame = Annotated[Request | Response | Notification, Field(discriminator="kind")]
_FRAME: TypeAdapter[Request | Response | Notification] = TypeAdapter(Frame)


def frame_object(data: str | bytes) -> JsonObject:
    """One websocket frame as a JSON object, not yet validated: within :data:`MAX_FRAME_BYTES`,
    JSON (see :func:`decode_json`) and an object; :class:`RemoteProtocolError` says what is wrong."""
    if len(data) > MAX_FRAME_BYTES:
        raise RemoteProtocolError(f"frame of {len(data)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    try:
        raw = decode_json(data)
    except RemoteProtocolError as exc:
        raise RemoteProtocolError(f"frame is {exc.message}") from None
    if not isinstance(raw, dict):
        raise RemoteProtocolError(f"frame must be a JSON object, got {type(raw).__name__}")
    return raw


def parse_frame(data: str | bytes) -> Request | Response | Notification:
    """Parse one websocket frame; :class:`RemoteProtocolError` says exactly what is wrong."""
    raw = frame_object(data)
    if raw.get("kind") not in ("req", "resp", "notification"):
        raise RemoteProtocolError(
            f"frame field 'kind' must be 'req', 'resp' or 'notification', got {raw.get('kind')!r}"
        )
    try:
        frame: Request | Response | Notification = _FRAME.validate_python(raw)
    except PydanticValidationError as exc:
        raise RemoteProtocolError(
            f"invalid {raw['kind']} frame: {describe_validation_error(exc, skip_tag=True)}"
        ) from None
    return frame


# --- request and answer bodies -----------------------------------------------------------------

INIT_CONNECTION = "InitConnection"
GET_CLOCK = "GetClock"
REQUEST_CONVERSATION = "cm.ConsumerRequestConversation"
REQUEST_CONVERSATION_RESPONSE = "cm.RequestConversationResponse"
UPDATE_CONVERSATION_FIELD = "cm.UpdateConversationField"
SUBSCRIBE_EX_CONVERSATIONS = "cqm.SubscribeExConversations"
SUBSCRIBE_EX_CONVERSATIONS_RESPONSE = "cqm.SubscribeExConversationsResponse"
UNSUBSCRIBE_EX_CONVERSATIONS = "cqm.UnsubscribeExConversations"
EX_CONVERSATION_CHANGE_NOTIFICATION = "cqm.ExConversationChangeNotification"
SUBSCRIBE_MESSAGING_EVENTS = "ms.SubscribeMessagingEvents"
PUBLISH_EVENT = "ms.PublishEvent"
PUBLISH_EVENT_RESPONSE = "ms.PublishEventResponse"
MESSAGING_EVENT_NOTIFICATION = "ms.MessagingEventNotification"
GENERIC_SUBSCRIBE_RESPONSE = ".ams.GenericSubscribeResponse"
#: Not documented publicly; callops uses these names (README).
STRING_RESP = ".ReqBody$StringResp"
ERROR_RESP = ".ReqBody$ErrorResp"
GET_CLOCK_RESPONSE = ".GetClock$Response"


class ErrorBody(WireModel):
    """The unified error answer body."""

    title: str
    details: str | None = None
    errorCode: int | None = None


class GetClockResponse(WireModel):
    currentTime: int


class CampaignInfo(WireModel):
    campaignId: int | str | None = None
    engagementId: int | str | None = None


class ConversationContext(WireModel):
    visitorId: str | None = None
    sessionId: str | None = None
    interactionContextId: str | None = None
    type: str | None = None
    lang: str | None = None


class ConsumerRequestConversation(WireModel):
    channelType: str | None = None
    skillId: str | None = None
    ttrDefName: str | None = None
    campaignInfo: CampaignInfo | None = None
    conversationContext: ConversationContext | None = None


class RequestConversationResponse(WireModel):
    conversationId: str


class SubscribeExConversations(WireModel):
    convState: ListOf[str] | None = None
    stage: ListOf[str] | None = None
    minLastUpdatedTime: int | None = None
    agentIds: ListOf[str] | None = None
    consumerId: str | None = None


class SubscribeExConversationsResponse(WireModel):
    subscriptionId: str


class UnsubscribeExConversations(WireModel):
    subscriptionId: str


class SubscribeMessagingEvents(WireModel):
    dialogId: str
    conversationId: str | None = None
    fromSeq: int | None = None


class PublishEvent(WireModel):
    dialogId: str
    conversationId: str | None = None
    event: dict[str, Any]


class PublishEventResponse(WireModel):
    sequence: int


class ConversationField(WireModel):
    field: str
    conversationState: str | None = None
    type: str | None = None
    dialog: dict[str, Any] | None = None


class UpdateConversationField(WireModel):
    conversationId: str
    conversationField: ListOf[ConversationField]


# --- conversations and dialogs -----------------------------------------------------------------


class Participant(WireModel):
    id: str
    role: str | None = None
    state: str | None = None


#: A participant list as sent: plain ids (the tutorial's COBROWSE dialog) or objects. The wire
#: shape is kept so that a dialog round-trips; use ``all_participants()`` for a normalised view.
ParticipantList = Annotated[list[str | Participant], BeforeValidator(_listify)]


def _normalise(*lists: list[str | Participant] | None) -> list[Participant]:
    """Participants of several lists merged by id (first occurrence wins), ids made objects."""
    seen: dict[str, Participant] = {}
    for lst in lists:
        for p in lst or []:
            participant = Participant(id=p) if isinstance(p, str) else p
            seen.setdefault(participant.id, participant)
    return list(seen.values())


class CallMetaData(WireModel):
    """``metaData`` of a COBROWSE dialog. Partial in CLOSED updates: every field is optional."""

    serviceId: str | None = None
    mode: str | None = None
    #: epoch seconds (float), e.g. ``1.502893131855E9``
    expires: float | None = None
    sessionState: str | None = None
    dialogId: str | None = None
    notificationKey: str | None = None


class Dialog(WireModel):
    dialogId: str
    #: plain ids (as in the tutorial) or participant objects
    participants: ParticipantList | None = None
    participantsDetails: ParticipantList | None = None
    dialogType: str | None = None
    channelType: str | None = None
    metaData: CallMetaData | None = None
    state: str | None = None
    creationTs: int | None = None
    endTs: int | None = None
    metaDataLastUpdateTs: int | None = None
    closedBy: str | None = None
    closedCause: str | None = None

    @field_validator("metaData", mode="before")
    @classmethod
    def _metadata_object(cls, value: object) -> object:
        return value if value is not None and value != "" else None

    def all_participants(self) -> list[Participant]:
        """``participantsDetails`` and ``participants`` merged, first occurrence wins."""
        return _normalise(self.participantsDetails, self.participants)

    @property
    def is_cobrowse(self) -> bool:
        return self.channelType == ChannelType.COBROWSE


class ConversationDetails(WireModel):
    skillId: str | None = None
    brandId: str | None = None
    participants: ParticipantList | None = None
    participantsDetails: ParticipantList | None = None
    dialogs: ListOf[Dialog] | None = None
    state: str | None = None
    stage: str | None = None
    startTs: int | None = None
    endTs: int | None = None
    metaDataLastUpdateTs: int | None = None
    ttr: dict[str, Any] | None = None

    def all_participants(self) -> list[Participant]:
        """``participantsDetails`` and ``participants`` merged, first occurrence wins."""
        return _normalise(self.participantsDetails, self.participants)


class ConversationResult(WireModel):
    convId: str
    effectiveTTR: int | None = None
    conversationDetails: ConversationDetails | None = None


class ConversationChange(WireModel):
    type: ChangeType
    result: ConversationResult


class ExConversationChangeNotification(WireModel):
    """Body of ``cqm.ExConversationChangeNotification``."""

    subscriptionId: str | None = None
    changes: ListOf[ConversationChange] = Field(default_factory=list)


W = TypeVar("W", bound=BaseModel)


def parse_body(model: type[W], body: object, *, what: str | None = None) -> W:
    """Validate a frame body; :class:`RemoteProtocolError` names every bad field."""
    try:
        return model.model_validate(body if body is not None else {})
    except PydanticValidationError as exc:
        raise RemoteProtocolError(
            f"invalid {what or model.__name__} body: {describe_validation_error(exc)}"
        ) from None


__all__ = [
    "CLIENT_PROPERTIES",
    "CONSUMER_AUTHENTICATION",
    "ERROR_RESP",
    "EX_CONVERSATION_CHANGE_NOTIFICATION",
    "GENERIC_SUBSCRIBE_RESPONSE",
    "GET_CLOCK",
    "GET_CLOCK_RESPONSE",
    "INIT_CONNECTION",
    "MAX_FRAME_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JWT_LENGTH",
    "MESSAGING_EVENT_NOTIFICATION",
    "PUBLISH_EVENT",
    "PUBLISH_EVENT_RESPONSE",
    "REQUEST_CONVERSATION",
    "REQUEST_CONVERSATION_RESPONSE",
    "STRING_RESP",
    "SUBSCRIBE_EX_CONVERSATIONS",
    "SUBSCRIBE_EX_CONVERSATIONS_RESPONSE",
    "SUBSCRIBE_MESSAGING_EVENTS",
    "UNSUBSCRIBE_EX_CONVERSATIONS",
    "UPDATE_CONVERSATION_FIELD",
    "CallMetaData",
    "CallMode",
    "CampaignInfo",
    "ChangeType",
    "ChannelType",
    "ClientProperties",
    "ConsumerAuthentication",
    "ConsumerRequestConversation",
    "ConversationChange",
    "ConversationContext",
    "ConversationDetails",
    "ConversationField",
    "ConversationResult",
    "Dialog",
    "DialogType",
    "ErrorBody",
    "ExConversationChangeNotification",
    "Frame",
    "GetClockResponse",
    "Notification",
    "Participant",
    "PublishEvent",
    "PublishEventResponse",
    "Request",
    "RequestConversationResponse",
    "Response",
    "SessionState",
    "SubscribeExConversations",
    "SubscribeExConversationsResponse",
    "SubscribeMessagingEvents",
    "UnsubscribeExConversations",
    "UpdateConversationField",
    "WireModel",
    "decode_json",
    "frame_object",
    "json_depth",
    "parse_body",
    "parse_frame",
]
