"""callops.validation: pydantic errors -> one (field, message) per bad field."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Literal

import pydantic
import pytest
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from callops.validation import describe_validation_error, field_path, validation_problems


def _positive(v: int) -> int:
    if v <= 0:
        raise ValueError("must be positive")
    return v


class Port(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Annotated[int, AfterValidator(_positive)]
    ip: IPv4Address | None = None


class Listener(BaseModel):
    name: str = Field(min_length=1)
    ports: list[Port]


class Peer(BaseModel):
    address: IPv4Address | IPv4Network


class Offer(BaseModel):
    kind: Literal["offer"]
    sdp: str


class Bye(BaseModel):
    kind: Literal["bye"]


_SIGNAL: TypeAdapter[Offer | Bye] = TypeAdapter(Annotated[Offer | Bye, Field(discriminator="kind")])


def _error(model: type[BaseModel], data: object) -> pydantic.ValidationError:
    with pytest.raises(pydantic.ValidationError) as info:
        model.model_validate(data)
    return info.value


def test_every_bad_field_is_named_by_its_dotted_path_in_order() -> None:
    exc = _error(Listener, {"name": "", "ports": [{"number": 1}, {"number": -1}]})
    assert validation_problems(exc) == [
        ("name", "String should have at least 1 character"),
        ("ports.1.number", "must be positive"),  # pydantic's "Value error, " prefix is dropped
    ]


def test_validator_and_union_member_names_are_not_fields() -> None:
    exc = _error(Listener, {"name": "a", "ports": [{"number": 1, "ip": "not-an-ip"}]})
    fields = [field for field, _ in validation_problems(exc)]
    assert fields == ["ports.0.ip"]
    assert field_path(("ports", 0, "function-after[_positive(), int]")) == "ports.0"


def test_messages_of_one_field_are_joined_with_or_and_never_repeated() -> None:
    exc = _error(Peer, {"address": "zz"})
    assert validation_problems(exc) == [
        ("address", "Input is not a valid IPv4 address or Input is not a valid IPv4 network")
    ]
    same = dict.fromkeys(("ip_v4_address", "ip_v4_network"), "not an IP")
    assert validation_problems(exc, fixes=same) == [("address", "not an IP")]


def test_an_error_of_the_whole_value_is_reported_on_the_root_label() -> None:
    exc = _error(Listener, [1, 2])
    assert [field for field, _ in validation_problems(exc)] == ["(top level)"]
    assert [field for field, _ in validation_problems(exc, root="(payload)")] == ["(payload)"]


def test_section_prefixes_the_field_and_fixes_replace_the_message() -> None:
    exc = _error(Port, {"number": 2, "colour": "red"})
    fixes = {"extra_forbidden": "unknown field (see the docs)"}
    assert validation_problems(exc, section="deploy", fixes=fixes) == [
        ("deploy.colour", "unknown field (see the docs)")
    ]
    exc = _error(Port, {"number": "x"})
    assert validation_problems(exc, fixes={"int_parsing": lambda err: f"got {err['input']!r}"}) == [
        ("number", "got 'x'")
    ]


def test_skip_tag_drops_the_discriminator_of_a_tagged_union() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        _SIGNAL.validate_python({"kind": "offer"})
    assert validation_problems(info.value) == [("offer.sdp", "Field required")]
    assert describe_validation_error(info.value, skip_tag=True) == "sdp: Field required"


def test_describe_puts_every_problem_on_one_line() -> None:
    exc = _error(Listener, {"ports": "x"})
    text = describe_validation_error(exc)
    assert text == "name: Field required; ports: Input should be a valid list"
    assert "\n" not in text
