"""The one YAML loader of callops (``callops.yaml``): safe, bounded, and precise about errors.

PyYAML's ``safe_load`` still accepts input a stranger can use against us: aliases that expand
exponentially ("billion laughs"), nesting deep enough to exhaust Python's recursion limit, and
integers of thousands of digits (Python refuses to convert them, or -- as YAML 1.1 sexagesimal
``1:2:3:...`` -- spends quadratic time on them). :func:`load_yaml` composes the node tree itself and
refuses all three before anything is constructed, each as a :class:`~callops.errors.ConfigError`
(exit 2) that names the file, the line and the field (``turn.listening_port``):

* aliases (``*name``) are refused; anchors alone are harmless and kept,
* nesting deeper than :data:`MAX_DEPTH` mappings/sequences is refused,
* integers longer than :data:`MAX_INT_CHARS` characters are refused.

Non-UTF-8 input never gets here: :func:`callops.files.read_user_text` refuses it.
"""

from __future__ import annotations

from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callops.errors import ConfigError

#: mappings/sequences inside each other; callops.yaml needs 3 (``probe: turn: [...]``)
MAX_DEPTH: Final = 32
#: longer than any port, quota or bandwidth (2**64 has 20 digits) with room for ``_`` and sign
MAX_INT_CHARS: Final = 32

_INT_TAG: Final = "tag:yaml.org,2002:int"
#: scalars whose construction can fail on a resolved value
_CHECKED_TAGS: Final = frozenset(
    {_INT_TAG, "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
)


class _Refused(Exception):
    def __init__(self, message: str, node: Node | None) -> None:
        super().__init__(message)
        self.node = node


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses aliases and deep nesting (before recursing)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused(f"alias *{event.anchor} is not allowed (write the value out)", None) from None
        if self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", None)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def _check(loader: _BoundedLoader, node: Node) -> None:
    """Refuse huge integers and values PyYAML cannot construct (``2024-02-30``), naming their field."""
    stack: list[tuple[Node, str]] = [(node, "")]
    while stack:
        current, where = stack.pop()
        field = where or "(top level)"
        if isinstance(current, ScalarNode):
            if current.tag == _INT_TAG and len(current.value) > MAX_INT_CHARS:
                raise _Refused(
                    f"{field}: an integer of {len(current.value)} characters is out of range", current
                )
            if current.tag in _CHECKED_TAGS:
                try:
                    loader.construct_object(current)
                except (ValueError, OverflowError) as exc:
                    raise _Refused(f"{field}: {current.value!r} cannot be read ({exc})", current) from None
        elif isinstance(current, MappingNode):
            for key, value in current.value:
                name = key.value if isinstance(key, ScalarNode) else "?"
                stack.append((key, f"{field} (a key)"))
                stack.append((value, f"{where}.{name}" if where else str(name)))
        elif isinstance(current, SequenceNode):
            stack += [(item, f"{where}[{i}]") for i, item in enumerate(current.value)]


def load_yaml(text: str, *, source: str) -> Any:
    """The data of the YAML document ``text`` (``None`` when empty); errors name ``source``."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check(loader, node)
        return loader.construct_document(node)
    except _Refused as exc:
        line = exc.node.start_mark.line + 1 if exc.node is not None else _event_line(loader)
        where = f" line {line}" if line else ""
        raise ConfigError(f"{source}{where}: {exc}", hint="callops.yaml takes plain values") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "not valid YAML"
        raise ConfigError(
            f"{source}{where}: not valid YAML ({problem})", hint="check indentation and quoting"
        ) from None
    except (ValueError, OverflowError, TypeError, RecursionError) as exc:
        raise ConfigError(
            f"{source}: a value cannot be read: {exc.__class__.__name__}: {exc}",
            hint="quote the value to keep it as text",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _event_line(loader: _BoundedLoader | None) -> int | None:
    if loader is None:
        return None
    try:
        event = loader.peek_event()  # type: ignore[no-untyped-call]
    except yaml.YAMLError:
        return None
    return None if event is None else int(event.start_mark.line) + 1


__all__ = ["MAX_DEPTH", "MAX_INT_CHARS", "load_yaml"]
