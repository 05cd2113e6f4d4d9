"""The NAT matrix: per topology pair, the one-site verdicts, the two-site verdict and a real call.

Each pair gets its own lab (network namespaces, real NATs, coturn on 203.0.113.10/.11). From each
site ``callops probe`` runs as a process; then ``callops probe serve`` runs on the agent site and
``callops probe peer --call`` on the consumer site: one ICE negotiation per path class plus a real
headless aiortc call (media, ``iceTransportPolicy=all``) whose ICE servers are each site's
one-site ``ice_servers``, best first -- the list a web page on that network should use.

Every pair of topologies the lab builds (14 unordered pairs) also checks the one-site prediction
against the two-site truth: the consumer's ``peers`` entry for the agent's class equals the two-site
outcome (path, and the relay transport the consumer uses), and the agent's entry for the
consumer's class has the same path. :data:`MATRIX` rows add the real call; the other pairs run the
two-site ICE test alone. Not ``tls-only`` with ``tls-only``: the responder runs on the agent, and a
``tls-only`` router forwards only the *inbound* signalling port and drops the responder's replies
(lab topology, see ``router_rules``); with one ``tls-only`` site it is the consumer.

Each :data:`MATRIX` row also runs the call with a real browser as the consumer: in the same lab,
after the probes, ``callops emulator serve`` on the agent's host, ``callops call-site --role agent``
(aiortc) there and ``callops call-site --role consumer --leg chromium`` in the consumer's site
namespace -- Chromium runs there (the browser namespace guard accepts it: every link, hop by hop,
stays inside the lab), with the ICE servers of the consumer's one-site verdict, like the probe's
own call. The browser's real outcome (connected, decoded media, the selected pair's candidate types
and ``relayProtocol`` from its ``getStats()``) must equal the row's two-site verdict. The rows'
probes run once per row (a module-scoped lab, prefix ``copmx-``) for both the aiortc and the
browser check; the browser adds 5-7 s per row (all six rows: about 35 s for the file).
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from callops.orchestrator.browser.isolation import browser_environment_problem
from callops.orchestrator.lab.lifecycle import LabState, lab_down, lab_up
from callops.orchestrator.lab.netns import lab_environment_problem
from callops.orchestrator.lab.topology import TOPOLOGIES, Topology
from callops.orchestrator.probe.verdict import two_site_path

if TYPE_CHECKING:
    from tests.orchestrator.conftest import LabKit

pytestmark = [pytest.mark.netns, pytest.mark.coturn, pytest.mark.slow]

log = logging.getLogger(__name__)

#: lab prefix, read by the shared ``lab`` fixture (tests/orchestrator/conftest.py)
PREFIX = "copm-"
#: prefix of the MATRIX rows' labs (module-scoped, so that the browser call reuses the row's probes)
MATRIX_PREFIX = "copmx-"
# Deadlines with room for a loaded 2-core CI machine (interpreter start-up counts against the
# one-site deadline); only the paths that cannot connect wait them out.
ONE_SITE_TIMEOUT = 5.0
TWO_SITE_TIMEOUT = 15.0
#: without the call: only the path classes that cannot connect wait this out
PEERS_TWO_SITE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Row:
    agent: Topology
    consumer: Topology
    consumer_verdict: str
    consumer_transports: list[str]
    two_site: set[str]
    #: what the consumer's call must have selected: "host", "no-relay", "any", "relay-udp", ...
    call_via: str


MATRIX = [
    Row("open", "open", "p2p-likely", ["udp", "tcp", "tls"], {"p2p"}, "host"),
    Row("cone", "cone", "p2p-likely", ["udp", "tcp", "tls"], {"p2p"}, "no-relay"),
    Row("cone", "symmetric", "relay-required", ["udp", "tcp", "tls"], {"p2p", "relay-required"}, "any"),
    Row("symmetric", "symmetric", "relay-required", ["udp", "tcp", "tls"], {"relay-required"}, "relay-udp"),
    Row("open", "udp-blocked", "relay-required", ["tcp", "tls"], {"relay-required"}, "relay-tcp"),
    Row("open", "tls-only", "relay-required", ["tls"], {"relay-required"}, "relay-tls"),
]
AGENT_VERDICT = {"open": "p2p-likely", "cone": "p2p-likely", "symmetric": "relay-required"}
#: the peer class of each lab topology (the lab's cone is MASQUERADE: port-restricted)
SITE_CLASS = {
    "open": "open",
    "cone": "port-restricted",
    "symmetric": "symmetric",
    "udp-blocked": "relay-only",
    "tls-only": "relay-only",
}


@dataclass(frozen=True)
class Pair:
    agent: Topology
    consumer: Topology


#: every unordered pair of lab topologies that MATRIX does not already run (with its call)
PAIRS = [
    Pair(a, c)  # type: ignore[arg-type]
    for i, a in enumerate(TOPOLOGIES)
    for c in TOPOLOGIES[i:]
    if not any({r.agent, r.consumer} == {a, c} for r in MATRIX) and a != "tls-only"
]


def one_site(kit: LabKit, state: LabState) -> dict[str, dict[str, Any]]:
    """``callops probe --json`` from both sites at once."""
    args = ["probe", "--config", state.config_file, "--timeout", str(ONE_SITE_TIMEOUT), "--json"]
    procs = {
        site: subprocess.Popen(
            kit.callops(state, site, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for site in ("agent", "consumer")
    }
    out = {}
    for site, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=kit.process_timeout)
        assert stdout, stderr
        out[site] = json.loads(stdout)
        out[site]["_exit"] = proc.returncode
    return out


def server_flags(ice_servers: list[dict[str, Any]]) -> list[str]:
    servers: list[str] = []
    for server in ice_servers:
        url = server["urls"][0]
        servers += ["--stun" if url.startswith("stun") else "--turn", url]
    return servers


def two_site(
    kit: LabKit,
    state: LabState,
    ice_servers: dict[str, list[dict[str, Any]]],
    token: Path,
    *,
    call: bool = True,
    timeout: float = TWO_SITE_TIMEOUT,
) -> dict[str, Any]:
    """``probe serve`` on the agent, ``probe peer [--call]`` on the consumer, each with its ICE servers."""
    # Exactly each site's ice_servers (no --config: its STUN and first TURN URI would be used).
    site_files = ["--secret-file", state.secret_file, "--ca-file", state.ca_file]
    with kit.responder(state, "--token-file", str(token), *server_flags(ice_servers["agent"]), *site_files):
        return kit.run_json(
            state,
            "consumer",
            "probe",
            "peer",
            state.signalling_url("agent"),
            "--token-file",
            str(token),
            *server_flags(ice_servers["consumer"]),
            *site_files,
            *(["--call"] if call else []),
            "--timeout",
            str(timeout),
            "--json",
            timeout=kit.process_timeout + timeout,
        )


def check_call(kit: LabKit, row: Row, call: dict[str, Any]) -> None:
    # Media both ways: the consumer decoded the agent's frames and the agent reported decoding the consumer's.
    assert call["connected"] and call["media_received"] and call["media_sent"] and call["media"], call
    local, remote = call["local"]["type"], call["remote"]["type"]
    assert not call["dropped"] and call["interruptions"] == [], call
    if row.call_via in ("host", "no-relay") and "relay" in (local, remote):
        # aioice (this aiortc call) nominates the first pair whose check succeeds and never
        # renominates: when a fresh lab link loses the first host check, a relay pair can win (seen
        # on a loaded machine). A browser renominates: the Chromium rows pin the pair it selects.
        log.warning("matrix %s-%s: the aiortc call nominated a relay pair: %s", row.agent, row.consumer, call)
        assert call["relay_protocol"] in (None, *row.consumer_transports), call
        return
    kit.check_selected_pair(row.call_via, local, remote, call["relay_protocol"], call)


@dataclass(frozen=True)
class RowRun:
    """A MATRIX row's lab with its probes done: one-site verdicts and the two-site report."""

    row: Row
    lab: LabState
    verdicts: dict[str, dict[str, Any]]
    two_site: dict[str, Any]


@pytest.fixture(scope="module", params=MATRIX, ids=[f"{r.agent}-{r.consumer}" for r in MATRIX])
def row_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, lab_kit: LabKit
) -> Iterator[RowRun]:
    """The row's lab, the one-site probes from both sites and the two-site probe with ``--call``;
    kept up for the row's tests (the aiortc checks, then the browser call), always torn down."""
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    row: Row = request.param
    root = tmp_path_factory.mktemp(f"matrix-{row.agent}-{row.consumer}")
    try:
        lab = lab_up(row.agent, row.consumer, prefix=MATRIX_PREFIX, root=root / "run")
        verdicts = one_site(lab_kit, lab)
        token = root / "token"
        token.write_text("matrix-token-0123456789\n")
        servers = {site: v["ice_servers"] for site, v in verdicts.items()}
        report = two_site(lab_kit, lab, servers, token)
        summary = {p["path"]: (p["connected"], p["local"], p["remote"], p["rtt_ms"]) for p in report["paths"]}
        log.warning(
            "matrix %s-%s: two-site %s %s; call %s",
            row.agent,
            row.consumer,
            report["verdict"],
            summary,
            report["call"],
        )
        yield RowRun(row, lab, verdicts, report)
    finally:
        lab_down(MATRIX_PREFIX, root=root / "run")


def test_matrix_verdicts_and_call(row_run: RowRun, lab_kit: LabKit) -> None:
    row, lab, verdicts, report = row_run.row, row_run.lab, row_run.verdicts, row_run.two_site
    consumer, agent = verdicts["consumer"], verdicts["agent"]
    assert consumer["verdict"] == row.consumer_verdict, consumer
    assert consumer["relay_transports"] == row.consumer_transports, consumer
    assert consumer["_exit"] == (0 if "udp" in row.consumer_transports else 1)
    assert agent["verdict"] == AGENT_VERDICT[row.agent], agent
    if row.consumer == "tls-only":
        assert [s["urls"][0] for s in consumer["ice_servers"]] == ["turns:203.0.113.10:443?transport=tcp"]
    assert report["verdict"] in row.two_site, report
    if report["verdict"] == "relay-required":
        assert set(report["relay_transports"]) <= set(row.consumer_transports)
        assert report["relay_transports"], report
    check_call(lab_kit, row, report["call"])
    check_peers(lab, verdicts, report)


# -- the same rows with a real browser as the consumer -------------------------------------------


def browser_call(kit: LabKit, run: RowRun) -> tuple[dict[str, Any], dict[str, Any]]:
    """Emulator + aiortc agent on the agent's host, Chromium consumer in the consumer's site;
    each side with the ICE servers of its one-site verdict. (consumer report, agent report)."""
    state = run.lab
    site_files = ["--secret-file", state.secret_file, "--ca-file", state.ca_file]

    def servers(site: str) -> list[str]:
        return [*server_flags(run.verdicts[site]["ice_servers"]), *site_files]

    # no --browser-netns: Chromium runs in call-site's own namespace, the consumer's site
    return kit.site_call(state, ["--leg", "chromium", *servers("consumer")], servers("agent"))


def check_browser(kit: LabKit, run: RowRun, browser: dict[str, Any]) -> None:
    """The browser's real outcome equals the two-site verdict: connected or not, and over which path
    (its getStats' selected pair: relay or not, and the relay's transport)."""
    report = run.two_site
    truth = two_site_path(report["verdict"], report["relay_transports"])
    seen = (browser["failure"], browser["errors"], browser["legs"]["consumer"]["console"][-10:])
    if truth.path == "blocked":
        assert browser["outcome"] != "connected" and not browser["ok"], browser
        return
    assert browser["ok"] and browser["outcome"] == "connected", seen
    received = [m for m in browser["stats"]["media"] if m["direction"] == "agent->consumer"]
    assert sum(m["frames_decoded"] for m in received) > 0, browser["stats"]
    pair = browser["selected_pair"]
    local, remote = pair["local"], pair["remote"]
    path = "relay" if "relay" in (local["type"], remote["type"]) else "p2p"
    assert path == truth.path, (f"two-site {report['verdict']} {report['relay_transports']}", pair)
    if local["type"] == "relay":
        # the browser's own relay, over a transport the two-site probe found working from this site
        assert local["relay_protocol"] in report["relay_transports"], (report["relay_transports"], pair)
    if run.row.consumer in ("udp-blocked", "tls-only"):
        # no UDP out of the consumer's site: its relay over the best transport that connected
        assert (local["type"], local["relay_protocol"]) == ("relay", truth.transport), pair
    kit.check_selected_pair(
        run.row.call_via, local["type"], remote["type"], local.get("relay_protocol"), pair
    )


def test_matrix_chromium_consumer_matches_the_two_site_verdict(row_run: RowRun, lab_kit: LabKit) -> None:
    problem = browser_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    browser, agent = browser_call(lab_kit, row_run)
    log.warning(
        "matrix %s-%s chromium: two-site %s %s; browser %s %s, agent pair %s, timeline %s",
        row_run.row.agent,
        row_run.row.consumer,
        row_run.two_site["verdict"],
        row_run.two_site["relay_transports"],
        browser["outcome"],
        browser["selected_pair"],
        agent["agent_selected_pair"],
        browser["timeline_ms"],
    )
    assert browser["legs"]["consumer"]["kind"] == "chromium", browser["legs"]
    check_browser(lab_kit, row_run, browser)
    assert agent["ok"] and agent["outcome"] == "connected", agent["failure"]
    assert agent["service_id"] == browser["service_id"]


def check_peers(lab: LabState, verdicts: dict[str, dict[str, Any]], report: dict[str, Any]) -> None:
    """The one-site ``peers`` prediction for the other site's class equals the two-site outcome."""
    consumer, agent = verdicts["consumer"], verdicts["agent"]
    assert consumer["site_class"] == SITE_CLASS[lab.consumer], consumer
    assert agent["site_class"] == SITE_CLASS[lab.agent], agent
    truth = two_site_path(report["verdict"], report["relay_transports"]).model_dump(mode="json")
    predicted = consumer["peers"][SITE_CLASS[lab.agent]]
    assert predicted == truth, (predicted, report)
    # Seen from the agent: the same path (its relay transport is not what the consumer measured).
    assert agent["peers"][SITE_CLASS[lab.consumer]]["path"] == truth["path"], (agent["peers"], report)


@pytest.mark.parametrize("lab", PAIRS, ids=[f"{p.agent}-{p.consumer}" for p in PAIRS], indirect=True)
def test_one_site_peers_prediction_equals_the_two_site_outcome(
    lab: LabState, tmp_path: Path, lab_kit: LabKit
) -> None:
    verdicts = one_site(lab_kit, lab)
    token = tmp_path / "token"
    token.write_text("matrix-token-0123456789\n")
    servers = {site: v["ice_servers"] for site, v in verdicts.items()}
    report = two_site(lab_kit, lab, servers, token, call=False, timeout=PEERS_TWO_SITE_TIMEOUT)
    log.warning(
        "peers %s-%s: two-site %s %s; consumer predicts %s",
        lab.agent,
        lab.consumer,
        report["verdict"],
        report["relay_transports"],
        verdicts["consumer"]["peers"][SITE_CLASS[lab.agent]],
    )
    check_peers(lab, verdicts, report)
