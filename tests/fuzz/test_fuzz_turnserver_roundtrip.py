"""Round trip: the ``turnserver.conf`` writer and the lint's parser are inverses.

Both are driven by one table (:data:`callops.turn.directives.DIRECTIVES`). For any deployment the
renderer's directives are what the parser reads back, in order, with the ``# callops:`` metadata;
and for any directive and value, :func:`format_directive` either refuses it with a ``ValueError``
or writes a line that parses back to exactly that directive and value.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callops.errors import UsageError
from callops.secret import Secret
from callops.testing import fuzz_examples
from callops.turn.config import TurnDeployment, render_turnserver_conf, turnserver_conf_lines
from callops.turn.directives import (
    DIRECTIVES,
    ConfLine,
    ValueKind,
    format_directive,
    parse_turnserver_conf,
    render_lines,
)

VERSIONS = st.sampled_from(["4.5.2", "4.6.1", "4.7.0", "4.9.9", "4.10.0", "5.0"])
ADDRESSES = st.ip_addresses()
NAMES = st.from_regex(r"\A[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?\Z")
PATHS = st.from_regex(r"\A/[A-Za-z0-9_./ -]{0,30}[A-Za-z0-9_]\Z").map(Path)
NETWORKS = st.builds(
    lambda address, prefix: ipaddress.ip_network(
        f"{address}/{prefix % (33 if address.version == 4 else 129)}", strict=False
    ),
    ADDRESSES,
    st.integers(0, 128),
)


@st.composite
def deployments(draw: st.DrawFn) -> TurnDeployment:
    low = draw(st.integers(1024, 65535))
    high = draw(st.integers(low, 65535))
    tls = draw(st.booleans())
    fields = {
        "realm": draw(NAMES),
        "coturn_version": draw(VERSIONS),
        "listening_ips": draw(st.lists(ADDRESSES, max_size=3)),
        "relay_ips": draw(st.lists(ADDRESSES, max_size=3)),
        "external_ips": draw(
            st.lists(
                st.fixed_dictionaries({"public": ADDRESSES}, optional={"private": ADDRESSES}), max_size=2
            )
        ),
        "listening_port": draw(st.integers(1, 65535)),
        "tls_listening_port": draw(st.integers(1, 65535)),
        "min_port": low,
        "max_port": high,
        "tls_cert_file": draw(PATHS) if tls else None,
        "tls_key_file": draw(PATHS) if tls else None,
        "cipher_list": draw(st.one_of(st.none(), st.from_regex(r"\A[A-Z0-9:!+-]{1,40}\Z"))),
        "secret_file": draw(PATHS),
        "user_quota": draw(st.integers(0, 100)),
        "total_quota": draw(st.integers(0, high - low + 1)),
        "max_bps": draw(st.one_of(st.none(), st.integers(0, 10**12))),
        "bps_capacity": draw(st.one_of(st.none(), st.integers(0, 10**12))),
        "allowed_peer_ips": draw(st.lists(NETWORKS, max_size=3)),
        "denied_peer_ips": draw(st.lists(NETWORKS, max_size=3)),
        "allow_loopback_peers": draw(st.booleans()),
        "stale_nonce": draw(st.integers(0, 10**6)),
        "no_software_attribute": draw(st.booleans()),
        "prometheus": draw(st.booleans()),
        "prometheus_port": draw(st.integers(1, 65535)),
        "log_file": draw(st.one_of(st.none(), st.just("syslog"), st.just("stdout"), PATHS.map(str))),
        "verbose": draw(st.booleans()),
        "proc_user": draw(st.one_of(st.none(), NAMES)),
        "proc_group": draw(st.one_of(st.none(), NAMES)),
    }
    return TurnDeployment.model_validate(fields)


def _directives(lines: list[ConfLine]) -> list[tuple[str, str | None]]:
    return [line for line in lines if not isinstance(line, str)]


@settings(max_examples=fuzz_examples(150))
@given(deployments(), st.one_of(st.none(), st.from_regex(r"\A[!-~]{16,64}\Z")))
def test_parse_reads_back_what_render_wrote(deployment: TurnDeployment, secret_text: str | None) -> None:
    secret = Secret(secret_text) if secret_text is not None else None
    if secret_text is not None and secret_text[0] == secret_text[-1] and secret_text[0] in "\"'":
        # coturn would read the secret without its quotes: refused, and the secret is not shown
        with pytest.raises(UsageError, match="static-auth-secret") as refused:
            render_turnserver_conf(deployment, secret=secret)
        assert secret_text not in str(refused.value)
        return
    written = _directives(turnserver_conf_lines(deployment, secret=secret))
    conf = parse_turnserver_conf(render_turnserver_conf(deployment, secret=secret))
    assert [(d.key, d.value) for d in conf.directives] == written
    assert conf.meta == {
        "coturn-version": deployment.coturn_version,
        "secret-file": str(deployment.secret_file),
    }


def _value_for(kind: ValueKind) -> st.SearchStrategy[str | None]:
    anything = st.text(max_size=40)
    return {
        ValueKind.FLAG: st.one_of(st.none(), anything),
        ValueKind.ADDRESS: st.one_of(ADDRESSES.map(str), anything),
        ValueKind.EXTERNAL_IP: st.one_of(
            st.builds(lambda a, b: f"{a}/{b}", ADDRESSES, ADDRESSES), ADDRESSES.map(str), anything
        ),
        ValueKind.PORT: st.one_of(st.integers(-5, 70000).map(str), anything),
        ValueKind.COUNT: st.one_of(st.integers(-5, 10**20).map(str), anything),
        ValueKind.PEER_RANGE: st.one_of(st.builds(lambda a, b: f"{a}-{b}", ADDRESSES, ADDRESSES), anything),
    }.get(kind, st.one_of(st.none(), anything, st.sampled_from(['"x"', " x", "a\u2028b", "x#y", "=x"])))


@st.composite
def directive_and_value(draw: st.DrawFn) -> tuple[str, str | None]:
    spec = draw(st.sampled_from(sorted(DIRECTIVES.values(), key=lambda s: s.name)))
    return spec.name, draw(_value_for(spec.kind))


@settings(max_examples=fuzz_examples(600))
@given(st.lists(directive_and_value(), max_size=12))
def test_format_directive_refuses_or_round_trips(pairs: list[tuple[str, str | None]]) -> None:
    written: list[ConfLine] = []
    for key, value in pairs:
        try:
            format_directive(key, value)
        except ValueError as exc:
            assert key in str(exc)
            continue
        if DIRECTIVES[key].repeatable or key not in {k for k, _ in _directives(written)}:
            written.append((key, value))
    conf = parse_turnserver_conf(render_lines(["# a comment", *written, ""]))
    assert [(d.key, d.value) for d in conf.directives] == written
