"""The browser namespace guard: a lab site namespace is accepted, a link into the root namespace is not.

The walk itself (:func:`find_way_out`) is tested on facts written by hand; then on real namespaces
(root, ``ip``; run under ``flock /tmp/callops-heavy.lock``): the NAT lab's consumer site (a
default route, but every link hop by hop stays in the lab), a chain of two namespaces, the same
chain with a veth into the root namespace at its far end, and the root namespace itself. Every
namespace and root-side interface these tests create starts with ``labchr`` and is removed.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from callops.errors import UsageError
from callops.orchestrator.browser.isolation import (
    Link,
    NamespaceFacts,
    check_browser_namespace,
    find_way_out,
    has_route_out,
    parse_links,
    parse_nsids,
    remove_namespace,
)
from callops.orchestrator.lab.netns import apply, lab_environment_problem, teardown
from callops.orchestrator.lab.topology import plan_lab

LO = Link("lo", "loopback")


def _reader(graph: dict[str | None, NamespaceFacts]) -> tuple[list[str | None], object]:
    visited: list[str | None] = []

    def read(ns: str | None) -> NamespaceFacts:
        visited.append(ns)
        return graph[ns]

    return visited, read


def test_a_lab_shaped_graph_is_sealed_and_each_namespace_is_read_once() -> None:
    # site -> router -> "internet" (bridge) -> other router; the internet links back to both routers
    graph: dict[str | None, NamespaceFacts] = {
        None: NamespaceFacts((LO, Link("eth0", "veth", 0)), {0: "lab-cons-r"}),
        "lab-cons-r": NamespaceFacts(
            (LO, Link("lan", "veth", 0), Link("wan", "veth", 1)), {0: "lab-cons", 1: "lab-inet"}
        ),
        "lab-inet": NamespaceFacts(
            (LO, Link("br0", "bridge"), Link("cons", "veth", 3), Link("agent", "veth", 4)),
            {3: "lab-cons-r", 4: "lab-agent-r"},
        ),
        "lab-agent-r": NamespaceFacts((LO, Link("wan", "veth", 0), Link("d0", "dummy")), {0: "lab-inet"}),
        "lab-cons": NamespaceFacts((LO, Link("eth0", "veth", 0)), {0: "lab-cons-r"}),
    }
    visited, read = _reader(graph)
    assert find_way_out(None, read) is None  # type: ignore[arg-type]
    assert sorted(map(str, visited)) == sorted(map(str, graph))
    assert len(visited) == len(set(visited))


def test_a_veth_into_an_unnamed_namespace_two_hops_away_is_a_way_out() -> None:
    graph: dict[str | None, NamespaceFacts] = {
        "site": NamespaceFacts((LO, Link("eth0", "veth", 0)), {0: "router"}),
        # nsid 7 has no name in /run/netns: the root namespace (or one no test created)
        "router": NamespaceFacts((LO, Link("lan", "veth", 0), Link("up0", "veth", 7)), {0: "site", 7: None}),
    }
    _, read = _reader(graph)
    why = find_way_out("site", read)  # type: ignore[arg-type]
    assert why is not None and "namespace router" in why and "veth up0" in why and "without a name" in why


@pytest.mark.parametrize(
    ("link", "named"),
    [
        (Link("eth0", None), "a physical device"),
        (Link("wg0", "wireguard"), "wireguard"),
        (Link("t0", "tun"), "tun"),
    ],
)
def test_any_other_kind_of_link_is_a_way_out(link: Link, named: str) -> None:
    _, read = _reader({None: NamespaceFacts((LO, link), {})})
    why = find_way_out(None, read)  # type: ignore[arg-type]
    assert why is not None and link.name in why and named in why


def test_the_init_namespace_under_a_name_is_refused_and_lo_only_is_sealed() -> None:
    _, read = _reader({"alias": NamespaceFacts((LO,), {}, is_init=True)})
    assert "init process" in str(find_way_out("alias", read))  # type: ignore[arg-type]
    _, read = _reader({None: NamespaceFacts((LO, Link("pair-a", "veth"), Link("pair-b", "veth")), {})})
    assert find_way_out(None, read) is None  # type: ignore[arg-type]


def test_ip_json_is_parsed_into_links_and_peer_names() -> None:
    links = parse_links(
        '[{"ifname":"lo","link_type":"loopback"},'
        '{"ifname":"x0","link_type":"ether","link_netnsid":0,"linkinfo":{"info_kind":"veth"}},'
        '{"ifname":"eth0","link_type":"ether"}]'
    )
    assert links == (LO, Link("x0", "veth", 0), Link("eth0", None))
    assert parse_nsids('[{"nsid":0,"name":"labchr-b"},{"nsid":1}]') == {0: "labchr-b", 1: None}
    assert parse_nsids("") == {}


# -- real namespaces ------------------------------------------------------------------------------


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=20)


@pytest.fixture
def chain() -> Iterator[tuple[str, str]]:
    """``labchr-<id>-a`` -- veth -- ``labchr-<id>-b``; a has a default route via b (192.0.2.0/24)."""
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    tag = secrets.token_hex(3)
    a, b = f"labchr-{tag}-a", f"labchr-{tag}-b"
    try:
        for ns in (a, b):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "lan", "netns", b)
        _ip("-n", a, "addr", "add", "192.0.2.2/24", "dev", "eth0")
        _ip("-n", b, "addr", "add", "192.0.2.1/24", "dev", "lan")
        _ip("-n", a, "link", "set", "eth0", "up")
        _ip("-n", b, "link", "set", "lan", "up")
        _ip("-n", a, "route", "add", "default", "via", "192.0.2.1")
        yield a, b
    finally:
        for ns in (a, b):
            remove_namespace(ns)


@pytest.mark.netns
def test_a_chain_is_accepted_despite_its_default_route_until_a_veth_at_its_end_leads_into_the_root(
    chain: tuple[str, str],
) -> None:
    a, b = chain
    # links that stay among named namespaces: accepted (the old rule would have refused the route)
    assert has_route_out(a)
    check_browser_namespace(a)
    # a veth into the root namespace: refused from every namespace that reaches it
    root_end = f"labchr{secrets.token_hex(3)}"  # stays down, no address: it only has to exist
    _ip("link", "add", root_end, "type", "veth", "peer", "name", "up0", "netns", b)
    try:
        with pytest.raises(UsageError, match=f"namespace {b}: veth up0 leads to a namespace without a name"):
            check_browser_namespace(a)  # two hops: a -> b -> root
        with pytest.raises(UsageError, match="route out"):
            check_browser_namespace(b)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", root_end)


@pytest.mark.netns
def test_the_nat_labs_consumer_site_is_accepted_and_the_root_namespace_is_not() -> None:
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    prefix = "labchr-"
    plan = plan_lab("open", "symmetric", prefix=prefix)
    try:
        apply(plan)
        for role in ("consumer", "agent", "turn", "inet"):
            check_browser_namespace(plan.namespaces[role])
    finally:
        assert set(teardown(prefix)) == set(plan.namespaces.values())
    if not has_route_out():
        pytest.skip("this test does not run in the root namespace (no default route)")
    with pytest.raises(UsageError, match="route out"):
        check_browser_namespace(None)  # the root namespace: a physical (or foreign) interface
