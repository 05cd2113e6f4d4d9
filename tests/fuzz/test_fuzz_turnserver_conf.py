"""Fuzz: ``turnserver.conf`` parsing and ``callops turn lint``.

Any text -- random, or lines of real coturn options with hostile values -- gives findings (each
with an id, a severity and a fix) or a clear :class:`UsageError` (a bad ``--coturn-version``),
never another exception.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callops.errors import UsageError
from callops.testing import fuzz_examples
from callops.turn.lint import lint_conf, parse_turnserver_conf

KEYS = [
    "listening-ip", "relay-ip", "external-ip", "cli-ip", "listening-port", "tls-listening-port",
    "min-port", "max-port", "user-quota", "total-quota", "max-bps", "stale-nonce", "realm",
    "use-auth-secret", "static-auth-secret", "lt-cred-mech", "no-auth", "user", "cli-password",
    "denied-peer-ip", "allowed-peer-ip", "allow-loopback-peers", "no-multicast-peers", "no-cli",
    "cli", "cert", "pkey", "no-tls", "no-dtls", "tlsv1", "tlsv1_1", "no-tlsv1", "no-tlsv1_1",
    "server-relay", "prometheus-port", "-a", "-L", "-E", "-X", "-p", "--realm", "--relay-ip",
]  # fmt: skip

VALUES = st.one_of(
    st.text(max_size=30),
    st.ip_addresses().map(str),
    st.integers(-(10**30), 10**30).map(str),
    st.builds(lambda a, b: f"{a}-{b}", st.ip_addresses(), st.ip_addresses()),
    st.builds(lambda a, b: f"{a}/{b}", st.ip_addresses(), st.integers(-1, 200)),
    st.builds(lambda a, b: f"{a}/{b}", st.ip_addresses(), st.ip_addresses()),
    st.sampled_from(["", "999.1.1.1", "abc", "\u0663\u0663", "65536", "0", "1e9", "::1%lo", '"x"', "'"]),
)
LINE = st.one_of(
    st.builds(
        lambda k, sep, v: f"{k}{sep}{v}", st.sampled_from(KEYS), st.sampled_from(["=", " ", " = "]), VALUES
    ),
    st.sampled_from(KEYS),
    st.text(max_size=40),
    st.builds(lambda v: f"# callops: coturn-version={v}", st.text(max_size=10)),
    st.builds(lambda v: f"# callops: secret-file={v}", st.text(max_size=10)),
)
TEXT = st.one_of(st.lists(LINE, max_size=25).map("\n".join), st.text(max_size=300))


@settings(max_examples=fuzz_examples(800))
@given(
    TEXT, st.one_of(st.none(), st.sampled_from(["4.5.2", "4.6.1", "4.7.0", "4.10.0"]), st.text(max_size=8))
)
def test_lint_gives_findings_or_a_usage_error(text: str, version: str | None) -> None:
    conf = parse_turnserver_conf(text)
    assert all(d.line >= 1 for d in conf.directives)
    try:
        findings = lint_conf(text, coturn_version=version, conf_mode=0o644, secret_file_mode=0o640)
    except UsageError as exc:
        assert "coturn version" in exc.message
        return
    for finding in findings:
        assert finding.id and finding.fix and finding.why
        assert finding.severity in ("error", "warning", "info")
        assert finding.line is None or 1 <= finding.line <= max(1, len(text.splitlines()))
