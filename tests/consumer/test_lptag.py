"""lpTag payloads: builders, validation naming every bad field, sliderOpened and sessionError."""

from __future__ import annotations

from typing import Any

import pytest

from callops.consumer.lptag import (
    LPTAG_CHANNEL,
    LpTagCallPayload,
    LpTagEventName,
    SessionError,
    SessionErrorId,
    SliderOpened,
    Visitor,
    build_accepted,
    build_declined,
    build_offered,
    build_session_error,
    build_slider_opened,
    publication,
    validate_event,
)
from callops.consumer.tracker import CallInvited
from callops.errors import ValidationError

INVITE = CallInvited(
    conversationId="conv-1",
    dialogId="dlg-1",
    serviceId="cc05f2b9#7904fffd",
    mode="VIDEO_CALL",
    agentId="le83624296.356285412",
    expires=1.502893131855e9,
)

GOOD: dict[str, Any] = {
    "serviceId": "cc05f2b9#7904fffd",
    "agentId": "le83624296.356285412",
    "visitorName": "Ada",
    "mode": "VOICE_CALL",
    "ssid": "ssid-1",
    "svid": "svid-1",
}


@pytest.mark.parametrize("build", [build_offered, build_accepted, build_declined])
def test_builders_copy_the_invitation_into_a_valid_payload(build: Any) -> None:
    payload = build(INVITE, Visitor("Ada", "s1", "v1", cid="ctx", eid="eng"))
    assert isinstance(payload, LpTagCallPayload)
    assert payload.payload() == {
        "serviceId": INVITE.serviceId,
        "agentId": INVITE.agentId,
        "visitorName": "Ada",
        "mode": "VIDEO_CALL",
        "ssid": "s1",
        "svid": "v1",
        "cid": "ctx",
        "eid": "eng",
    }


def test_builder_without_agent_id_names_the_field() -> None:
    invite = CallInvited("c", "d", "svc", "VOICE_CALL", None, 0.0)
    with pytest.raises(ValidationError) as info:
        build_offered(invite, Visitor("Ada", "s", "v"))
    assert info.value.fields == ["agentId"]
    assert info.value.exit_code == 2


@pytest.mark.parametrize("name", ["cobrowseOffered", "cobrowseAccepted", "cobrowseDeclined"])
def test_valid_call_payload_validates(name: str) -> None:
    model = validate_event(name, {**GOOD, "scid": "sc", "unknownField": 1})
    assert isinstance(model, LpTagCallPayload) and model.mode == "VOICE_CALL"
    assert model.payload()["unknownField"] == 1  # unknown fields are kept


def test_validation_error_names_every_bad_field() -> None:
    bad = {"serviceId": "", "mode": "shared", "ssid": 7, "visitorName": "Ada", "cid": ""}
    with pytest.raises(ValidationError) as info:
        validate_event("cobrowseOffered", bad)
    problems = dict(info.value.problems)
    assert sorted(problems) == ["agentId", "cid", "mode", "serviceId", "ssid", "svid"]
    assert problems["agentId"] == "is mandatory and missing"
    assert problems["serviceId"] == "must be a non-empty string"
    assert "VOICE_CALL" in problems["mode"] and "shared" in problems["mode"]
    assert problems["ssid"] == "must be a string"
    assert "cobrowseOffered" in str(info.value)


@pytest.mark.parametrize("field", ["serviceId", "agentId", "visitorName", "mode", "ssid", "svid"])
def test_each_mandatory_field_is_required(field: str) -> None:
    payload = dict(GOOD)
    del payload[field]
    with pytest.raises(ValidationError) as info:
        validate_event("cobrowseAccepted", payload)
    assert info.value.fields == [field]


def test_payload_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        validate_event("cobrowseDeclined", ["serviceId"])
    assert info.value.fields == ["(payload)"]


def test_unknown_event_name_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        validate_event("cobrowseExploded", GOOD)
    assert info.value.fields == ["event"] and "cobrowseOffered" in str(info.value)


def test_slider_opened_has_no_payload() -> None:
    assert isinstance(validate_event("sliderOpened", None), SliderOpened)
    pub = publication(LpTagEventName.SLIDER_OPENED, build_slider_opened())
    assert pub.model_dump() == {"channel": LPTAG_CHANNEL, "eventName": "sliderOpened", "data": None}


@pytest.mark.parametrize("error_id", list(SessionErrorId))
def test_session_error_accepts_the_four_ids(error_id: SessionErrorId) -> None:
    model = build_session_error(error_id, "Something went wrong")
    assert isinstance(model, SessionError) and model.payload() == {
        "msg": "Something went wrong",
        "id": error_id,
    }
    assert isinstance(validate_event("sessionError", {"msg": "x", "id": error_id.value}), SessionError)


def test_session_error_rejects_other_ids_and_names_both_fields() -> None:
    with pytest.raises(ValidationError) as info:
        validate_event("sessionError", {"id": "NO_MICROPHONE"})
    assert sorted(info.value.fields) == ["id", "msg"]
    assert {e.value for e in SessionErrorId} == {
        "UNABLE_TO_CONNECT",
        "BROWSER_NOT_SUPPORTED",
        "NO_CAMERA_ACCESS",
        "AGENT_DISCONNECTED",
    }


def test_publication_of_an_offer_is_the_lptag_publish_call() -> None:
    pub = publication(LpTagEventName.COBROWSE_OFFERED, build_offered(INVITE, Visitor("Ada", "s", "v")))
    dumped = pub.model_dump(mode="json")
    assert dumped["channel"] == "lpCoBrowse" and dumped["eventName"] == "cobrowseOffered"
    assert dumped["data"]["serviceId"] == INVITE.serviceId
