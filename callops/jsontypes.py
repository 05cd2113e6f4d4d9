"""Types of JSON values as they come from and go to the wire (``json.loads`` / ``json.dumps``).

``JsonValue`` is recursive: a JSON document is an object, an array, a string, a number, a boolean or
null. Code that reads a field narrows it (``isinstance``) or validates the document with a pydantic
model; code that builds a frame annotates it ``JsonObject``.
"""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
JsonArray: TypeAlias = "list[JsonValue]"

__all__ = ["JsonArray", "JsonObject", "JsonValue"]
