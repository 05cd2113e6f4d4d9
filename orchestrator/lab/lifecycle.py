"""``callops lab``: bring the NAT lab up and down, run commands in it, report its state.

:func:`lab_up` applies a :class:`~callops.orchestrator.lab.topology.LabPlan`, starts coturn in the
TURN namespace (two public addresses, RFC 5780 capable, UDP/TCP on 3478, TLS on 443 with a
self-signed certificate, private peers denied, TURN REST API shared secret) and writes the lab's
files to ``/run/<prefix>lab/``: ``state.json``, ``turn-secret``, ``ca.pem`` and ``callops.yaml``
(the ``probe:`` section that points ``callops probe`` at the lab's servers).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, ValidationError

from callops.errors import EnvironmentProblem, UsageError
from callops.orchestrator.lab import netns
from callops.orchestrator.lab.topology import (
    DEFAULT_PREFIX,
    PUBLIC_SUBNETS,
    SIGNALLING_PORT,
    TURN_ADDRESSES,
    TURN_TLS_PORT,
    TURN_UDP_TCP_PORT,
    Topology,
    plan_lab,
)
from callops.secret import Secret
from callops.turn.config import TurnDeployment, write_turnserver_conf
from callops.turn.coturn import CoturnProcess
from callops.turn.tls import make_self_signed

log = logging.getLogger(__name__)

STATE_ROOT = Path("/run")
REALM = "lab.callops.test"
#: Hosts that ``callops lab exec`` knows, and the namespace role each stands for.
HOSTS: dict[str, str] = {
    "agent": "agent",
    "consumer": "consumer",
    "turn": "turn",
    "inet": "inet",
    "agent-router": "agent-router",
    "consumer-router": "consumer-router",
}


class LabState(BaseModel):
    """What ``lab up`` built; read by ``status``, ``exec``, the probe and the tests."""

    prefix: str
    agent: Topology
    consumer: Topology
    namespaces: dict[str, str]
    hosts: dict[str, str]  # role -> the address of its site host / router / TURN host
    turn_addresses: list[str]
    turn_port: int = TURN_UDP_TCP_PORT
    turn_tls_port: int = TURN_TLS_PORT
    state_dir: str
    secret_file: str
    ca_file: str
    config_file: str
    coturn_pid: int | None = None
    created_at: float

    def signalling_url(self, site: str) -> str:
        """Where ``callops probe serve`` on ``site``'s host is reachable from the other site."""
        topology = self.agent if site == "agent" else self.consumer
        address = self.hosts[site] if topology == "open" else self.hosts[f"{site}-router"]
        return f"ws://{address}:{SIGNALLING_PORT}"

    @property
    def stun_uris(self) -> list[str]:
        return [f"stun:{self.turn_addresses[0]}:{self.turn_port}"]

    @property
    def turn_uris(self) -> list[str]:
        a = self.turn_addresses[0]
        return [
            f"turn:{a}:{self.turn_port}?transport=udp",
            f"turn:{a}:{self.turn_port}?transport=tcp",
            f"turns:{a}:{self.turn_tls_port}?transport=tcp",
        ]

    def namespace(self, host: str) -> str:
        role = HOSTS.get(host)
        if role is None or role not in self.namespaces:
            raise UsageError(f"unknown lab host {host!r}", hint=f"choose one of {', '.join(HOSTS)}")
        return self.namespaces[role]


#: coturn processes this process started, by lab prefix: kept referenced while the lab is up (they
#: outlive a ``callops lab up`` process on purpose) and reaped by :func:`lab_down`.
_COTURNS: dict[str, CoturnProcess] = {}


def state_dir(prefix: str, root: Path = STATE_ROOT) -> Path:
    return root / f"{prefix}lab"


def load_state(prefix: str = DEFAULT_PREFIX, root: Path = STATE_ROOT) -> LabState | None:
    path = state_dir(prefix, root) / "state.json"
    try:
        return LabState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.warning("lab state %s unreadable: %s", path, exc.__class__.__name__)
        return None


def turn_deployment(secret_file: Path, cert: Path, key: Path) -> TurnDeployment:
    """The lab's TURN host: RFC 5780 on two addresses, UDP/TCP 3478, TLS 443, private peers denied.

    coturn denies every IANA special-purpose range by default, documentation ranges included; the
    lab's "internet" lives on those, so they are explicitly allowed again. Private peers stay
    denied: with coturn 4.6.1 relaying to an unreachable private host candidate breaks later
    ChannelBinds of the allocation.
    """
    return TurnDeployment(
        realm=REALM,
        listening_ips=[ipaddress.ip_address(a) for a in TURN_ADDRESSES],
        relay_ips=[ipaddress.ip_address(TURN_ADDRESSES[0])],
        listening_port=TURN_UDP_TCP_PORT,
        tls_listening_port=TURN_TLS_PORT,
        tls_cert_file=cert,
        tls_key_file=key,
        secret_file=secret_file,
        user_quota=0,
        allowed_peer_ips=[ipaddress.ip_network(n) for n in PUBLIC_SUBNETS],
        log_file=None,
    )


def probe_config_yaml(state: LabState) -> str:
    doc = {
        "probe": {
            "stun": state.stun_uris,
            "turn": state.turn_uris,
            "secret_file": state.secret_file,
            "ca_file": state.ca_file,
            "timeout": 5.0,
        }
    }
    return json.dumps(doc, indent=2) + "\n"  # JSON is YAML


def lab_up(
    agent: Topology, consumer: Topology, *, prefix: str = DEFAULT_PREFIX, root: Path = STATE_ROOT
) -> LabState:
    """Build the lab (replacing a previous one with the same prefix) and start coturn in it."""
    netns.require_lab_environment()
    plan = plan_lab(agent, consumer, prefix)
    lab_down(prefix, root=root)
    directory = state_dir(prefix, root)
    directory.mkdir(parents=True, mode=0o700)
    netns.apply(plan)
    try:
        secret = secrets.token_urlsafe(24)
        secret_file = directory / "turn-secret"
        secret_file.write_text(secret + "\n")
        secret_file.chmod(0o600)
        cert, key = make_self_signed(directory, list(TURN_ADDRESSES), days=2, name="turn")
        workdir = directory / "turn"
        workdir.mkdir()
        conf = write_turnserver_conf(
            turn_deployment(secret_file, cert, key), workdir / "turnserver.conf", secret=Secret(secret)
        )
        coturn = CoturnProcess(
            conf,
            workdir=workdir,
            ready_address=(TURN_ADDRESSES[0], TURN_UDP_TCP_PORT),
            netns=plan.namespaces["turn"],
            start_timeout=20.0,
            die_with_parent=False,  # the lab's relay outlives `callops lab up` on purpose
        )
        coturn.start()
        _COTURNS[prefix] = coturn
        assert coturn.process is not None
        hosts = {
            "agent": plan.site("agent").host,
            "consumer": plan.site("consumer").host,
            "agent-router": plan.site("agent").router_wan,
            "consumer-router": plan.site("consumer").router_wan,
            "turn": TURN_ADDRESSES[0],
        }
        state = LabState(
            prefix=prefix,
            agent=plan.agent,
            consumer=plan.consumer,
            namespaces=plan.namespaces,
            hosts=hosts,
            turn_addresses=list(TURN_ADDRESSES),
            state_dir=str(directory),
            secret_file=str(secret_file),
            ca_file=str(cert),
            config_file=str(directory / "callops.yaml"),
            coturn_pid=coturn.process.pid,
            created_at=time.time(),
        )
        Path(state.config_file).write_text(probe_config_yaml(state))
        (directory / "state.json").write_text(state.model_dump_json(indent=2) + "\n")
    except BaseException:
        lab_down(prefix, root=root)
        raise
    log.info("lab %s up: agent=%s consumer=%s", prefix, agent, consumer)
    return state


def lab_down(prefix: str = DEFAULT_PREFIX, *, root: Path = STATE_ROOT) -> list[str]:
    """Remove every namespace and file the lab created with ``prefix``; the namespaces removed."""
    netns.require_lab_environment()
    removed = netns.teardown(prefix)
    coturn = _COTURNS.pop(prefix, None)
    if coturn is not None:
        coturn.stop()
    directory = state_dir(prefix, root)
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)
    return removed


class LabStatus(BaseModel):
    prefix: str
    up: bool
    namespaces: list[str]
    state: LabState | None
    coturn_running: bool


def lab_status(prefix: str = DEFAULT_PREFIX, *, root: Path = STATE_ROOT) -> LabStatus:
    netns.require_lab_environment()
    namespaces = netns.lab_namespaces(prefix)
    state = load_state(prefix, root)
    running = False
    if state is not None and state.coturn_pid is not None:
        turn_ns = state.namespaces.get("turn", "")
        running = turn_ns in namespaces and state.coturn_pid in _turn_pids(turn_ns)
    up = state is not None and set(state.namespaces.values()) <= set(namespaces) and running
    return LabStatus(prefix=prefix, up=up, namespaces=namespaces, state=state, coturn_running=running)


def _turn_pids(ns: str) -> set[int]:
    return set(netns.namespace_pids(ns))


def lab_exec_argv(
    host: str, command: list[str], *, prefix: str = DEFAULT_PREFIX, root: Path = STATE_ROOT
) -> list[str]:
    """The argv that runs ``command`` in the namespace of ``host`` (``ip netns exec NS ...``)."""
    netns.require_lab_environment()
    if not command:
        raise UsageError("no command given", hint="callops lab exec HOST -- CMD ARGS...")
    state = load_state(prefix, root)
    if state is None:
        raise UsageError(f"the lab {prefix!r} is not up", hint="run 'callops lab up' first")
    return netns.exec_argv(state.namespace(host), command)


def lab_exec(host: str, command: list[str], *, prefix: str = DEFAULT_PREFIX, root: Path = STATE_ROOT) -> int:
    """Run ``command`` in the namespace of ``host``; its exit code.

    ``callops lab exec`` instead *replaces* itself with the command (:func:`lab_exec_argv`), so
    signals reach the command and stopping ``lab exec`` never leaves it running.
    """
    argv = lab_exec_argv(host, command, prefix=prefix, root=root)
    with contextlib.suppress(KeyboardInterrupt):
        return subprocess.run(argv, check=False).returncode
    return 130


def require_up(prefix: str = DEFAULT_PREFIX, root: Path = STATE_ROOT) -> LabState:
    state = load_state(prefix, root)
    if state is None:
        raise EnvironmentProblem(f"the lab {prefix!r} is not up", hint="run 'callops lab up' first")
    return state


__all__ = [
    "HOSTS",
    "REALM",
    "STATE_ROOT",
    "LabState",
    "LabStatus",
    "lab_down",
    "lab_exec",
    "lab_exec_argv",
    "lab_status",
    "lab_up",
    "load_state",
    "probe_config_yaml",
    "require_up",
    "state_dir",
    "turn_deployment",
]
