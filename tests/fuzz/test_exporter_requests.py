"""The exporter's untrusted input: targets, query strings and the scrape-timeout header.

Only parsing runs here (no probe is sent anywhere): a clear 400/TargetError or a valid target,
never another exception.
"""

from __future__ import annotations

import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from callops.orchestrator.exporter.exporter_config import DEFAULT_MODULES, ExporterSettings, TurnModule
from callops.orchestrator.exporter.modules import TargetError, prepare
from callops.orchestrator.exporter.service import Exporter
from callops.testing import fuzz_examples, run_bounded
from callops.turn.uri import ServerUri

MODULES = {
    **DEFAULT_MODULES,
    "turn": TurnModule(secret_env="UNUSED"),
}

TARGET_TEXT = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"(stuns?:|turns?:|ws://|wss://)?\[?[0-9a-z.:\-]{0,40}\]?(:[0-9]{0,6})?", fullmatch=True),
)


@settings(max_examples=fuzz_examples(300))
@given(TARGET_TEXT, st.sampled_from(["stun", "nat", "tls", "turn"]))
def test_targets_parse_or_name_the_problem(text: str, name: str) -> None:
    module = MODULES[name]
    try:
        parsed = prepare(module, text).target
    except TargetError as exc:
        assert exc.message and exc.exit_code == 2
        return
    if isinstance(parsed, ServerUri):
        assert 0 < parsed.port < 65536 and parsed.host


@settings(max_examples=fuzz_examples(200))
@given(st.text(max_size=60), st.text(max_size=20))
def test_bad_queries_and_headers_get_400_never_a_crash(query: str, header: str) -> None:
    exporter = Exporter(ExporterSettings(), env={})
    # an unknown module never probes: every answer is decided before any network I/O
    path = "/probe?" + urllib.parse.urlencode({"module": "no-such-" + query, "target": query})
    reply = run_bounded(exporter.handle("GET", path, {"x-prometheus-scrape-timeout-seconds": header}), 5)
    assert reply.status == 400
    try:
        timeout = exporter.budget(DEFAULT_MODULES["stun"], {"x-prometheus-scrape-timeout-seconds": header})
    except TargetError as exc:
        assert "X-Prometheus-Scrape-Timeout-Seconds" in exc.message
    else:
        assert 0.1 <= timeout <= DEFAULT_MODULES["stun"].timeout
