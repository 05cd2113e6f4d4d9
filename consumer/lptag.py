"""lpTag event payloads of a voice/video call, as the page publishes them on channel ``lpCoBrowse``.

After an invitation the page publishes ``cobrowseOffered``, then ``cobrowseAccepted`` or
``cobrowseDeclined``, each with ``serviceId``, ``agentId``, ``visitorName``, ``mode``, ``ssid`` and
``svid`` (mandatory, non-empty strings) and optionally ``scid``, ``cid``, ``eid``. lpTag itself
fails such an event with a terse console error (``Error executing cobrowseOffered eventId: ...``);
:func:`validate_event` instead names every bad field at once, in a
:class:`callops.errors.ValidationError`. After a reload the call app fires ``sessionResume`` and the
page answers ``sliderOpened`` (no payload); problems arrive as ``sessionError`` with ``{msg, id}``.

Unknown extra fields are kept, as lpTag passes them on; only the documented fields are checked.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

from callops.consumer.models import CallMode
from callops.consumer.tracker import ActiveCall, CallAccepted, CallClosed, CallInvited
from callops.errors import ValidationError
from callops.validation import Fix, validation_problems

#: The lpTag events channel of the call application.
LPTAG_CHANNEL = "lpCoBrowse"
#: The ``appName`` of the events the call application raises (``sessionResume``, ``sessionError``).
LPTAG_APP_NAME = "cobrowse"


class LpTagEventName(StrEnum):
    """lpTag event names of the voice/video call flow."""

    COBROWSE_OFFERED = "cobrowseOffered"
    COBROWSE_ACCEPTED = "cobrowseAccepted"
    COBROWSE_DECLINED = "cobrowseDeclined"
    SLIDER_OPENED = "sliderOpened"
    SESSION_RESUME = "sessionResume"
    SESSION_ERROR = "sessionError"


class SessionErrorId(StrEnum):
    """The ``id`` of a ``sessionError`` event."""

    #: there was a problem establishing the WebRTC connection
    UNABLE_TO_CONNECT = "UNABLE_TO_CONNECT"
    #: the browser does not support WebRTC based voice and video calls
    BROWSER_NOT_SUPPORTED = "BROWSER_NOT_SUPPORTED"
    #: the application cannot access the user's camera
    NO_CAMERA_ACCESS = "NO_CAMERA_ACCESS"
    #: the agent got disconnected
    AGENT_DISCONNECTED = "AGENT_DISCONNECTED"


NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]


class LpTagModel(BaseModel):
    """Base of the payload models: unknown fields kept, names exactly as lpTag uses them."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    def payload(self) -> dict[str, Any]:
        """The JSON-ready payload, without optional fields that are not set."""
        return self.model_dump(mode="json", exclude_none=True)


class LpTagCallPayload(LpTagModel):
    """Payload of ``cobrowseOffered``, ``cobrowseAccepted`` and ``cobrowseDeclined``."""

    #: from the dialog's metaData: ``"<consumerId>#<uuid>"``
    serviceId: NonEmpty
    agentId: NonEmpty
    visitorName: NonEmpty
    #: from the dialog's metaData: VOICE_CALL or VIDEO_CALL
    mode: CallMode
    #: monitoring session id (any non-empty string will do)
    ssid: NonEmpty
    #: monitoring visitor id (any non-empty string will do)
    svid: NonEmpty
    scid: NonEmpty | None = None
    cid: NonEmpty | None = None
    eid: NonEmpty | None = None


class SliderOpened(LpTagModel):
    """``sliderOpened``: the page's answer to ``sessionResume`` (no documented payload)."""


class SessionResume(LpTagModel):
    """``sessionResume``: the call app found an active call after a reload."""

    appName: str = LPTAG_APP_NAME


class SessionError(LpTagModel):
    """``sessionError``: a localised message and one of the four error ids."""

    msg: str
    id: SessionErrorId


class LpTagPublication(BaseModel):
    """One ``lpTag.events.publish(channel, eventName, data)`` call."""

    model_config = ConfigDict(frozen=True)

    channel: str = LPTAG_CHANNEL
    eventName: LpTagEventName
    data: dict[str, Any] | None = None


_MODELS: dict[str, type[LpTagModel]] = {
    LpTagEventName.COBROWSE_OFFERED: LpTagCallPayload,
    LpTagEventName.COBROWSE_ACCEPTED: LpTagCallPayload,
    LpTagEventName.COBROWSE_DECLINED: LpTagCallPayload,
    LpTagEventName.SLIDER_OPENED: SliderOpened,
    LpTagEventName.SESSION_RESUME: SessionResume,
    LpTagEventName.SESSION_ERROR: SessionError,
}


def _one_of(err: ErrorDetails) -> str:
    return f"must be one of {err.get('ctx', {}).get('expected', '')}, got {err.get('input')!r}"


_FIXES: dict[str, Fix] = {
    "missing": "is mandatory and missing",
    "string_too_short": "must be a non-empty string",
    "string_type": "must be a string",
    "enum": _one_of,
}


def validate_event(name: str, payload: Any) -> LpTagModel:
    """Validate one lpTag event of the call flow as lpTag would, naming every bad field.

    Raises :class:`callops.errors.ValidationError` whose ``problems`` lists ``(field, message)``
    for every bad field (an unknown event name is reported as field ``event``).
    """
    model = _MODELS.get(name)
    if model is None:
        known = ", ".join(sorted(_MODELS))
        raise ValidationError(f"lpTag event {name!r}", [("event", f"unknown event {name!r}; known: {known}")])
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ValidationError(name, [("(payload)", f"must be an object, got {type(payload).__name__}")])
    try:
        return model.model_validate(payload)
    except PydanticValidationError as exc:
        raise ValidationError(name, validation_problems(exc, root="(payload)", fixes=_FIXES)) from None


def build_call_payload(
    name: LpTagEventName, call: CallInvited | CallAccepted | CallClosed | ActiveCall, visitor: Visitor
) -> LpTagCallPayload:
    """The payload of the call event ``name`` (``cobrowseOffered``, ``cobrowseAccepted``,
    ``cobrowseDeclined``) for an invitation to ``visitor``; ValidationError names every bad field."""
    raw: dict[str, Any] = {"serviceId": call.serviceId, "agentId": call.agentId, "mode": call.mode}
    raw.update((key, value) for key, value in asdict(visitor).items() if value is not None)
    if raw["agentId"] is None:
        raw.pop("agentId")
    model = validate_event(name, raw)
    assert isinstance(model, LpTagCallPayload)
    return model


#: the ``cobrowseOffered`` payload for an invitation
build_offered = functools.partial(build_call_payload, LpTagEventName.COBROWSE_OFFERED)
#: the ``cobrowseAccepted`` payload for an invitation
build_accepted = functools.partial(build_call_payload, LpTagEventName.COBROWSE_ACCEPTED)
#: the ``cobrowseDeclined`` payload for an invitation
build_declined = functools.partial(build_call_payload, LpTagEventName.COBROWSE_DECLINED)


def build_slider_opened() -> SliderOpened:
    """The ``sliderOpened`` answer to ``sessionResume``."""
    return SliderOpened()


def build_session_error(error_id: SessionErrorId | str, msg: str) -> SessionError:
    """A ``sessionError`` payload (ValidationError if ``error_id`` is not one of the four)."""
    model = validate_event(LpTagEventName.SESSION_ERROR, {"id": str(error_id), "msg": msg})
    assert isinstance(model, SessionError)
    return model


def publication(name: LpTagEventName, payload: LpTagModel | None = None) -> LpTagPublication:
    """The ``lpTag.events.publish`` call for ``payload`` on channel ``lpCoBrowse``."""
    data = payload.payload() if payload is not None else None
    if name is LpTagEventName.SLIDER_OPENED and not data:
        data = None
    return LpTagPublication(eventName=name, data=data)


class AutoAnswer(StrEnum):
    """What a headless consumer does with an invitation."""

    ACCEPT = "accept"
    DECLINE = "decline"


@dataclass(frozen=True, slots=True)
class Visitor:
    """The page's side of the lpTag payloads: who the visitor is and the monitoring ids."""

    visitorName: str
    #: monitoring session id (``lpTag.taglets.lp_monitoringSDK.getSid()`` on a real page)
    ssid: str
    #: monitoring visitor id (``getVid()`` on a real page)
    svid: str
    scid: str | None = None
    cid: str | None = None
    eid: str | None = None


def answer_invitation(
    invite: CallInvited | ActiveCall, visitor: Visitor, auto: AutoAnswer | None = None
) -> list[LpTagPublication]:
    """What the page publishes for an invitation: ``cobrowseOffered``, then, with ``auto``,
    ``cobrowseAccepted`` or ``cobrowseDeclined`` (ValidationError names every bad field)."""
    names = [LpTagEventName.COBROWSE_OFFERED]
    if auto is AutoAnswer.ACCEPT:
        names.append(LpTagEventName.COBROWSE_ACCEPTED)
    elif auto is AutoAnswer.DECLINE:
        names.append(LpTagEventName.COBROWSE_DECLINED)
    return [publication(name, build_call_payload(name, invite, visitor)) for name in names]


__all__ = [
    "LPTAG_APP_NAME",
    "LPTAG_CHANNEL",
    "AutoAnswer",
    "LpTagCallPayload",
    "LpTagEventName",
    "LpTagModel",
    "LpTagPublication",
    "NonEmpty",
    "SessionError",
    "SessionErrorId",
    "SessionResume",
    "SliderOpened",
    "Visitor",
    "answer_invitation",
    "build_accepted",
    "build_call_payload",
    "build_declined",
    "build_offered",
    "build_session_error",
    "build_slider_opened",
    "publication",
    "validate_event",
]
