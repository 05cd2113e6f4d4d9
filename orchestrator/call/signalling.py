"""The WebRTC signalling messages callops' peers exchange over the emulator's CoBrowse channel.

The emulator relays the ``data`` of a ``signal`` message verbatim to the other peer of the call
(keyed by ``serviceId``, see docs/emulator.md); this module defines what ``data`` holds
(docs/call.md, "Signalling"):

``{"kind": "offer", "sdp": "v=0..."}``
    the agent's offer (aiortc does not trickle: every candidate is in the SDP)
``{"kind": "answer", "sdp": "v=0..."}``
    the consumer's answer
``{"kind": "candidate", "candidate": "candidate:...", "sdpMid": "0", "sdpMLineIndex": 0}``
    a trickled candidate (accepted for peers that trickle; callops' own peers never send one)
``{"kind": "end-of-candidates"}``
    no more trickled candidates
``{"kind": "bye", "reason": "..."}``
    the sender leaves the WebRTC session (informational; the call's state is the dialog's)

Every message may carry ``epoch`` (an integer, default 0): a resumed call starts a new epoch, and a
peer ignores messages of an older one. Parsing is strict: a malformed message raises
:class:`callops.errors.RemoteProtocolError` naming the bad field, and the receiver carries on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from callops.errors import RemoteProtocolError
from callops.validation import describe_validation_error


class _Signal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    epoch: int = Field(default=0, ge=0)


class Offer(_Signal):
    kind: Literal["offer"]
    sdp: str = Field(min_length=10)


class Answer(_Signal):
    kind: Literal["answer"]
    sdp: str = Field(min_length=10)


class Candidate(_Signal):
    kind: Literal["candidate"]
    candidate: str = Field(min_length=1)
    sdpMid: str | None = None
    sdpMLineIndex: int | None = None


class EndOfCandidates(_Signal):
    kind: Literal["end-of-candidates"]


class Bye(_Signal):
    kind: Literal["bye"]
    reason: str = ""


Signal = Annotated[Offer | Answer | Candidate | EndOfCandidates | Bye, Field(discriminator="kind")]

_ADAPTER: TypeAdapter[Offer | Answer | Candidate | EndOfCandidates | Bye] = TypeAdapter(Signal)


def parse_signal(data: Any) -> Offer | Answer | Candidate | EndOfCandidates | Bye:
    """Validate the ``data`` of a received ``signal``; RemoteProtocolError names every bad field."""
    try:
        return _ADAPTER.validate_python(data)
    except PydanticValidationError as exc:
        problems = describe_validation_error(exc, root="data")
        raise RemoteProtocolError(f"malformed signalling message: {problems}") from None


def signal_data(message: Offer | Answer | Candidate | EndOfCandidates | Bye) -> dict[str, Any]:
    """The JSON ``data`` to send."""
    return message.model_dump(mode="json", exclude_none=True)


__all__ = ["Answer", "Bye", "Candidate", "EndOfCandidates", "Offer", "Signal", "parse_signal", "signal_data"]
