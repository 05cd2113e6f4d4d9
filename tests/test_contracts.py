"""Architecture contracts, read from the source with ``ast`` (nothing is imported or run).

- The consumer side (``consumer/``) and the relay side (``turn/``) never import the orchestration
  layer (``orchestrator/``): it builds on them, not the other way round.
- No two library modules, and no two public classes, share a name (a newcomer finds a thing by
  its name); the collisions left are listed in ``KNOWN_COLLISIONS`` and may only shrink.
- A module whose docstring says it is sans-I/O (its summary line, or a paragraph that starts with
  "Sans-I/O:") imports no asyncio, no sockets and reads no clock: time is passed in.

An exception is an entry of an allow-list below with the reason; an entry that no longer matches
anything fails too, so the lists only shrink.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the areas of the code base (``callops/<area>`` links to ``<area>/``)
AREAS = ("consumer", "turn", "orchestrator", "deploy")
#: modules that may not import ``orchestrator``
LOWER_LAYERS = ("consumer", "turn")

#: modules that import the I/O or the clock a sans-I/O module must not use
IO_MODULES = frozenset({"asyncio", "socket", "selectors", "ssl", "trio", "anyio"})
#: calls that read the clock, as ``module.function`` after resolving ``from x import y``
CLOCK_CALLS = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
    }
)

#: (module, what it uses) pairs that break a contract today, each with the reason. Each names a
#: file this pass could not change; remove the entry when the file is fixed.
ALLOWED: dict[tuple[str, str], str] = {}

#: module file names and public class names that exist twice or more with different meanings
#: today, in files of areas this pass did not reach. Remove a name when it is fixed (a stale entry
#: is not an error, so that branches renaming on both sides merge cleanly).
KNOWN_COLLISIONS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Use:
    module: str  # e.g. "consumer/tracker.py"
    what: str  # an imported module ("asyncio") or a clock call ("time.monotonic")
    line: int


def _modules() -> list[Path]:
    return sorted(p for area in AREAS for p in (ROOT / area).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _package(path: Path) -> list[str]:
    """``orchestrator/emulator/model.py`` -> ``["callops", "orchestrator", "emulator"]``."""
    return ["callops", *path.relative_to(ROOT).parent.parts]


def _imports(path: Path, tree: ast.Module) -> list[tuple[str, int]]:
    """Every module ``path`` imports (also inside functions), absolute and dotted."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(path)[: len(_package(path)) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it stands for (``import time as t``, ``from datetime import datetime``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _clock_calls(tree: ast.Module) -> list[tuple[str, int]]:
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (dotted := _dotted(node.func)):
            head, _, rest = dotted.partition(".")
            resolved = ".".join(part for part in (aliases.get(head, head), rest) if part)
            if resolved in CLOCK_CALLS:
                found.append((resolved, node.lineno))
    return found


_SANS_IO_PARAGRAPH = re.compile(r"(?im)^sans-I/O:")


def _is_sans_io(tree: ast.Module) -> bool:
    """The docstring's summary line calls the module sans-I/O (and not "... and an adapter"), or a
    paragraph starts with "Sans-I/O:"."""
    doc = ast.get_docstring(tree) or ""
    summary = doc.split("\n", 1)[0]
    if "sans-i/o" in summary.lower() and "adapter" not in summary.lower():
        return True
    return bool(_SANS_IO_PARAGRAPH.search(doc))


@functools.cache
def _parsed() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p))) for p in _modules()]


def _layer_violations() -> list[Use]:
    uses = []
    for path, tree in _parsed():
        if path.relative_to(ROOT).parts[0] not in LOWER_LAYERS:
            continue
        for module, line in _imports(path, tree):
            if module == "callops.orchestrator" or module.startswith("callops.orchestrator."):
                uses.append(Use(_name(path), module, line))
    return uses


def sans_io_modules() -> list[str]:
    return [_name(path) for path, tree in _parsed() if _is_sans_io(tree)]


def _sans_io_violations() -> list[Use]:
    uses = []
    for path, tree in _parsed():
        if not _is_sans_io(tree):
            continue
        for module, line in _imports(path, tree):
            if module.split(".")[0] in IO_MODULES:
                uses.append(Use(_name(path), module, line))
        uses += [Use(_name(path), call, line) for call, line in _clock_calls(tree)]
    return uses


def _unexplained(uses: list[Use]) -> list[str]:
    return [f"{u.module}:{u.line}: {u.what}" for u in uses if (u.module, u.what) not in ALLOWED]


def test_consumer_and_turn_never_import_orchestrator() -> None:
    assert _unexplained(_layer_violations()) == []


def test_sans_io_modules_use_no_asyncio_sockets_or_clock() -> None:
    assert _unexplained(_sans_io_violations()) == []


def test_the_sans_io_modules_are_found() -> None:
    # the docstring convention is what the contract hangs on: these must keep matching it
    found = set(sans_io_modules())
    expected = {
        "consumer/protocol.py",
        "consumer/tracker.py",
        "turn/nat_behaviour.py",
        "orchestrator/emulator/model.py",
        "orchestrator/emulator/session.py",
        "orchestrator/emulator/cobrowse.py",
        "orchestrator/emulator/idp.py",
        "orchestrator/emulator/http11.py",
        "orchestrator/emulator/control_api.py",
        "orchestrator/emulator/auth.py",
        "orchestrator/call/timeline.py",
    }
    assert expected <= found, expected - found


def test_every_allow_list_entry_is_still_needed() -> None:
    used = {(u.module, u.what) for u in _layer_violations() + _sans_io_violations()}
    assert set(ALLOWED) <= used, set(ALLOWED) - used


def _collisions() -> dict[str, list[str]]:
    """Module file names and public class names defined in more than one library file."""
    where: dict[str, set[str]] = {}
    for path, tree in _parsed():
        if path.name != "__init__.py":
            where.setdefault(path.name, set()).add(_name(path))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, set()).add(_name(path))
    return {name: sorted(files) for name, files in where.items() if len(files) > 1}


def test_no_two_modules_or_public_classes_share_a_name() -> None:
    new = {name: files for name, files in _collisions().items() if name not in KNOWN_COLLISIONS}
    assert new == {}


def test_the_checks_see_what_they_look_for() -> None:
    # the checks themselves: an aliased clock call, a lazy relative import, an asyncio import
    tree = ast.parse(
        "import time as t\nfrom datetime import datetime\n"
        "def f():\n    from ..orchestrator import lab\n    import asyncio\n"
        "    return t.monotonic(), datetime.now()\n"
    )
    path = ROOT / "consumer" / "x.py"
    assert [m for m, _ in _imports(path, tree) if "orchestrator" in m] == [
        "callops.orchestrator",
        "callops.orchestrator.lab",
    ]
    assert {m for m, _ in _imports(path, tree)} >= {"asyncio", "time"}
    assert sorted(c for c, _ in _clock_calls(tree)) == ["datetime.datetime.now", "time.monotonic"]
