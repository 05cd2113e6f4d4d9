"""Fuzz: ``callops.yaml`` -- the bounded YAML loader, the ``turn:`` model and the ``probe:`` settings.

Any text, and any YAML document built from the real field names with hostile values (aliases,
deep nesting, huge numbers, dates, nulls), gives a valid configuration or a :class:`ConfigError` /
:class:`UsageError` (exit 2), never another exception.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from callops.errors import UsageError
from callops.orchestrator.probe.settings import ProbeSettings, merge_settings
from callops.testing import fuzz_examples
from callops.turn.config import CallopsConfig, TurnDeployment, parse_config
from callops.yamlconfig import load_yaml

TURN_FIELDS = sorted(TurnDeployment.model_fields)
PROBE_FIELDS = sorted(ProbeSettings.model_fields)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0.5, -1.0, 1e308, float("inf"), float("nan"), 121.0]),
    st.text(max_size=20),
    st.sampled_from(["127.0.0.1", "::1", "999.1.1.1", "10.0.0.0/8", "turn.example.com", "4.6.1", "x.y"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), st.one_of(SCALARS, st.lists(SCALARS, max_size=2)), max_size=3),
)


# Strategies are built once: building them inside the composite would re-validate them per draw.
TURN = st.one_of(st.none(), st.dictionaries(st.sampled_from(TURN_FIELDS), VALUES, max_size=5))
PROBE = st.one_of(st.none(), st.dictionaries(st.sampled_from(PROBE_FIELDS), VALUES, max_size=4))
TWEAKS = st.sampled_from(["", "alias", "deep", "bigint", "date", "tab", "tag"])
SMALL = st.integers(0, 99)
DEPTH = st.integers(1, 80)
DIGITS = st.integers(1, 6000)
TAGS = st.sampled_from(["t: !!python/object:os.system x\n", "b: !!binary AAA=\n", "s: !!set {a}\n"])


@st.composite
def documents(draw: st.DrawFn) -> str:
    """YAML text of a callops.yaml with real field names and hostile values."""
    data: dict[str, Any] = {}
    for name, section in (("turn", draw(TURN)), ("probe", draw(PROBE))):
        if section is not None:
            data[name] = section
    text = yaml.safe_dump(data, default_flow_style=draw(st.booleans()))
    tweak = draw(TWEAKS)
    if tweak == "alias":
        text = "x: &a [1, 2]\ny: *a\n" + text
    elif tweak == "deep":
        depth = draw(DEPTH)
        text += "deep: " + "[" * depth + "]" * depth + "\n"
    elif tweak == "bigint":
        text += "turn_quota: " + "9" * draw(DIGITS) + "\n"
    elif tweak == "date":
        text += f"when: 2024-{draw(SMALL):02d}-{draw(SMALL):02d}\n"
    elif tweak == "tab":
        text = text.replace("  ", "\t")
    elif tweak == "tag":
        text += draw(TAGS)
    return text


def _load(text: str) -> CallopsConfig | None:
    try:
        config = parse_config(load_yaml(text, source="callops.yaml"), source="callops.yaml")
    except UsageError as exc:  # ConfigError is a UsageError: exit 2
        assert exc.exit_code == 2 and "callops.yaml" in exc.message
        return None
    section = config.section("probe")
    if isinstance(section, dict):
        try:
            merge_settings(section, {}, {}, source="callops.yaml")
        except UsageError as exc:
            assert exc.exit_code == 2
    return config


@settings(max_examples=fuzz_examples(700))
@given(documents())
def test_structured_callops_yaml_loads_or_is_a_config_error(text: str) -> None:
    _load(text)


@settings(max_examples=fuzz_examples(600))
@given(st.one_of(st.text(max_size=200), st.text(alphabet="[]{}:,-&*!|>'\"#\n ab1", max_size=200)))
def test_any_text_as_callops_yaml_loads_or_is_a_config_error(text: str) -> None:
    _load(text)
