"""The probers: per prober a target parser and one adapter function, bound by :func:`prepare`.

An adapter runs callops' existing probe (:mod:`callops.turn.probes`, :mod:`callops.turn.bandwidth`,
the readiness profile of :mod:`callops.orchestrator.probe.profile`, the two-site
:func:`~callops.orchestrator.probe.twosite.run_peer`) and converts its typed result
(:mod:`callops.turn.results`) into a :class:`~callops.orchestrator.exporter.outcome.ProbeOutcome` --
the one place per prober that knows the probe's result type, so a change of result type touches
one function.
"""

from __future__ import annotations

import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from callops.errors import UsageError
from callops.orchestrator.exporter.exporter_config import (
    BandwidthModule,
    IceTwoSiteModule,
    LivePersonModule,
    Module,
    NatModule,
    RelayModule,
    StunModule,
    TlsModule,
    Transport,
    TurnModule,
)
from callops.orchestrator.exporter.outcome import Labels, ProbeOutcome, Value
from callops.turn.results import ProbeResult, ProbeStatus
from callops.turn.uri import DEFAULT_PORT, DEFAULT_SECURE_PORT, Scheme, ServerUri, parse_uri

M = TypeVar("M")

_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
#: the least a readiness profile's one-site probes get besides its bandwidth items
MIN_ONE_SITE_S = 2.0


class TargetError(UsageError):
    """A ``target`` the module cannot probe (answered with 400 and this message)."""


# -- targets ----------------------------------------------------------------------------------------


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    """``HOST[:PORT]``, ``[V6][:PORT]`` or a ``stun:``/``turn:`` URI -> ``(host, port)``."""
    raw = text.strip()
    if not raw:
        raise TargetError("target is empty", hint="pass target=HOST:PORT")
    if raw.lower().startswith(_SCHEMES):
        try:
            uri = parse_uri(raw)
        except UsageError as exc:
            raise TargetError(f"target {raw!r}: {exc.message}", hint=exc.hint) from None
        return uri.host, uri.port
    scheme = "stuns" if default_port == DEFAULT_SECURE_PORT else "stun"
    try:
        uri = parse_uri(f"{scheme}:{raw}")
    except UsageError as exc:
        raise TargetError(
            f"target {raw!r} is not HOST[:PORT]: {exc.message.split(': ', 1)[-1]}",
            hint="e.g. target=turn.example.com:3478 or target=[2001:db8::1]:3478",
        ) from None
    return uri.host, uri.port


def server_uri(text: str, *, turn: bool, transport: Transport) -> ServerUri:
    """The URI a STUN/TURN module probes: the target's host and port, the module's transport."""
    secure = transport == "tls"
    host, port = _hostport(text, DEFAULT_SECURE_PORT if secure else DEFAULT_PORT)
    scheme: Scheme = ("turns" if secure else "turn") if turn else ("stuns" if secure else "stun")
    return ServerUri(
        scheme=scheme,
        host=host,
        port=port,
        transport="udp" if transport == "udp" else "tcp",
        transport_given=turn,
    )


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int


def _stun_target(module: StunModule, text: str) -> ServerUri:
    return server_uri(text, turn=False, transport=module.transport)


def _nat_target(module: NatModule, text: str) -> ServerUri:
    return server_uri(text, turn=False, transport="udp")


def _tls_target(module: TlsModule, text: str) -> HostPort:
    host, port = _hostport(text, DEFAULT_SECURE_PORT)
    return HostPort(host, port)


def _turn_target(module: TurnModule, text: str) -> ServerUri:
    return server_uri(text, turn=True, transport=module.transport)


def _host_target(module: LivePersonModule, text: str) -> HostPort:
    host, port = _hostport(text, DEFAULT_PORT)
    return HostPort(host, port)


def _ws_target(module: IceTwoSiteModule, text: str) -> str:
    url = urllib.parse.urlsplit(text.strip())
    try:
        port = url.port
    except ValueError:
        port = -1
    if url.scheme not in ("ws", "wss") or not url.hostname or port == -1:
        raise TargetError(
            f"target {text!r} is not a ws:// or wss:// URL of 'callops probe serve'",
            hint="e.g. target=ws://probe.site-b.example.com:8765",
        )
    return text.strip()


# -- adapters: one per prober ----------------------------------------------------------------------


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


def _from_probe_result(result: ProbeResult) -> ProbeOutcome:
    """Success and reason of a typed probe result (:mod:`callops.turn.results`)."""
    if result.status is ProbeStatus.OK:
        return ProbeOutcome(success=True)
    return ProbeOutcome.failed(result.error or result.detail or f"probe {result.status.value}")


async def run_stun(
    module: StunModule, uri: ServerUri, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    from callops.turn.probes import stun_binding

    result = await stun_binding(uri, timeout, ca_file=module.ca_file, insecure=module.insecure)
    outcome = _from_probe_result(result)
    data = result.data
    outcome.add("probe_stun_rtt_seconds", _seconds(data.rtt_ms))
    outcome.add("probe_stun_connect_seconds", _seconds(data.connect_ms))
    if data.mapped:
        outcome.infos.append(Labels("probe_stun_mapped_address", (("address", data.mapped),)))
    return outcome


async def run_nat(module: NatModule, uri: ServerUri, timeout: float, env: Mapping[str, str]) -> ProbeOutcome:
    from callops.turn.probes import nat_behaviour

    result = await nat_behaviour(uri, timeout)
    outcome = _from_probe_result(result)
    if result.status is ProbeStatus.INCONCLUSIVE:
        outcome = ProbeOutcome(success=True)
    data = result.data
    if data.mapping is not None:
        labels = (
            ("mapping", str(data.mapping)),
            ("filtering", str(data.filtering)),
            ("nat", str(data.nat)),
            ("mapped", data.mapped or ""),
        )
        outcome.infos.append(Labels("probe_nat", labels))
    return outcome


async def run_tls(
    module: TlsModule, target: HostPort, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    from callops.orchestrator.exporter.certificate import check_certificate

    check = await check_certificate(
        target.host, target.port, timeout=timeout, server_name=module.server_name, ca_file=module.ca_file
    )
    days_left = (check.not_after - time.time()) / 86400
    outcome = ProbeOutcome(success=check.verified, reason=check.verify_error)
    if check.verified and days_left < 0:
        outcome = ProbeOutcome.failed(f"TLS {target.host}:{target.port}: the certificate has expired")
    outcome.values += [
        Value("probe_tls_handshake_seconds", check.handshake_s),
        Value("probe_tls_cert_expiry_timestamp_seconds", check.not_after),
        Value("probe_tls_cert_days_left", round(days_left, 3)),
        Value("probe_tls_cert_verified", 1 if check.verified else 0),
    ]
    outcome.infos.append(Labels("probe_tls_version", (("version", check.version), ("cipher", check.cipher))))
    return outcome


async def run_turn(
    module: TurnModule, uri: ServerUri, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    from callops.turn.probes import turn_allocation

    username, password = module.credentials(env, time.time())
    result = await turn_allocation(
        uri, username, password.reveal(), timeout, ca_file=module.ca_file, insecure=module.insecure
    )
    outcome = _from_probe_result(result)
    data = result.data
    outcome.add("probe_turn_allocate_seconds", _seconds(data.allocate_ms))
    outcome.add("probe_turn_allocation_lifetime_seconds", data.lifetime)
    if data.relayed:
        labels = (("address", data.relayed), ("transport", module.transport))
        outcome.infos.append(Labels("probe_turn_relayed_address", labels))
    return outcome


async def run_relay(
    module: RelayModule, uri: ServerUri, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    from callops.turn.probes import relay_data_test

    peer = None
    if module.peer is not None:
        host, port = _hostport(module.peer, DEFAULT_PORT)
        peer = (host, port)
    username, password = module.credentials(env, time.time())
    result = await relay_data_test(
        uri,
        username,
        password.reveal(),
        timeout,
        peer=peer,
        count=module.packets,
        ca_file=module.ca_file,
        insecure=module.insecure,
    )
    outcome = _from_probe_result(result)
    data = result.data
    outcome.add("probe_relay_rtt_seconds", _seconds(data.rtt_ms))
    outcome.add("probe_relay_rtt_max_seconds", _seconds(data.rtt_ms_max))
    outcome.add("probe_relay_loss_ratio", data.loss)
    if data.sent is not None:
        outcome.values.append(Value("probe_relay_packets_sent", data.sent))
        outcome.values.append(Value("probe_relay_packets_received", data.received or 0))
    return outcome


async def run_bandwidth(
    module: BandwidthModule, uri: ServerUri, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    """A call-shaped flow (:func:`callops.turn.bandwidth.bandwidth_test`) at the module's rate.

    ``probe_success`` is 1 when at least the floor got through with loss under the limit (the
    result's ``ok``/``warn``: working, perhaps degraded); ``probe_bandwidth_target_met`` says whether
    the full rate did.
    """
    from callops.turn.bandwidth import bandwidth_test

    spec = module.flow_spec()
    username, password = module.credentials(env, time.time())
    context = _ssl_context(uri, module.ca_file, module.insecure)
    result = await bandwidth_test(uri, username, password.reveal(), timeout, spec, ssl_context=context)
    # warn: degraded but at least the floor got through -- a working call
    working = result.status is ProbeStatus.WARN
    outcome = ProbeOutcome(success=True) if working else _from_probe_result(result)
    data = result.data
    values = outcome.values
    values.append(Value("probe_bandwidth_target_bits_per_second", spec.target_kbps * 1000))
    values.append(Value("probe_bandwidth_floor_bits_per_second", spec.floor_kbps * 1000))
    for direction, stats in (("flow", data.flow), ("feedback", data.feedback)):
        if stats is not None:
            key = (("direction", direction),)
            values.append(Value("probe_bandwidth_bits_per_second", stats.achieved_kbps * 1000, key))
            values.append(Value("probe_bandwidth_packets_sent", stats.sent, key))
            values.append(Value("probe_bandwidth_packets_received", stats.received, key))
    if data.flow is not None:
        values.append(Value("probe_bandwidth_loss_ratio", data.flow.loss))
        values.append(Value("probe_bandwidth_jitter_seconds", data.flow.jitter_ms / 1000))
    for name, ms in (
        ("probe_bandwidth_rtt_seconds", data.rtt_ms_p50),
        ("probe_bandwidth_rtt_p95_seconds", data.rtt_ms_p95),
        ("probe_bandwidth_rtt_max_seconds", data.rtt_ms_max),
    ):
        if (seconds := _seconds(ms)) is not None:
            values.append(Value(name, seconds))
    if data.duration_s is not None and data.flow is not None:
        values.append(Value("probe_bandwidth_sending_seconds", data.duration_s))
    if data.passed is not None:
        values.append(Value("probe_bandwidth_target_met", 1 if data.passed else 0))
    return outcome


def _ssl_context(uri: ServerUri, ca_file: Path | None, insecure: bool) -> ssl.SSLContext | None:
    if not uri.secure:
        return None
    from callops.turn.tls import client_context

    return client_context(ca_file, insecure=insecure)


def profile_uris(module: LivePersonModule, host: str) -> list[str]:
    """The TURN URIs of ``host`` that the module says it serves (``transport/port``)."""
    out = []
    for transport, port in module.served():
        uri = ServerUri(
            scheme="turns" if transport == "tls" else "turn",
            host=host,
            port=port,
            transport="udp" if transport == "udp" else "tcp",
            transport_given=True,
        )
        out.append(str(uri))
    return out


async def run_liveperson(
    module: LivePersonModule, target: HostPort, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    """The module's readiness profile (:func:`callops.orchestrator.probe.onesite.probe_profile`) against
    the target host's TURN servers: one series per checklist item that ran.

    The one-site probes get what the bandwidth items leave of the budget; each bandwidth item gets
    its ``duration_s`` plus set-up, one after the other (as ``callops probe --profile`` runs them).
    """
    from callops.orchestrator.probe.onesite import BANDWIDTH_SETUP_S, probe_profile
    from callops.orchestrator.probe.profile import load_profile
    from callops.orchestrator.probe.settings import ENV_PASSWORD, ProbeSettings

    profile = load_profile(module.profile)
    flows = sum(i.duration_s + BANDWIDTH_SETUP_S for i in profile.items if i.check == "bandwidth")
    one_site = timeout - flows
    if one_site < MIN_ONE_SITE_S:
        return ProbeOutcome.failed(
            f"profile {profile.name}: its bandwidth items need {flows:.1f} s and the probes "
            f"{MIN_ONE_SITE_S:.0f} s more, but this probe has {timeout:.1f} s "
            "(raise the module's timeout and the job's scrape_timeout)"
        )
    username, password = module.credentials(env, time.time())
    settings = ProbeSettings(
        turn=profile_uris(module, target.host),
        user=username,
        ca_file=module.ca_file,
        insecure=module.insecure,
        timeout=one_site,
    )
    # The credentials computed above go in as long-term ones: an in-memory environment, not os.environ.
    checklist = await probe_profile(settings, {ENV_PASSWORD: password.reveal()}, profile)
    failed = [item for item in checklist.items if item.required and item.status == "fail"]
    reason = "; ".join(f"{item.id}: {item.measured}" for item in failed)
    outcome = ProbeOutcome(
        success=not failed, reason=f"{profile.name} items failed -- {reason}" if failed else None
    )
    for item in checklist.items:
        key = (("item", item.id),)
        labels = (("status", item.status), ("required", "true" if item.required else "false"))
        outcome.infos.append(Labels("probe_liveperson_item", labels, key))
        if item.status != "skipped":
            outcome.values.append(
                Value("probe_liveperson_item_success", 1 if item.status == "pass" else 0, key)
            )
    return outcome


async def run_ice_two_site(
    module: IceTwoSiteModule, url: str, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    from callops.orchestrator.probe.settings import ProbeServers, ProbeSettings
    from callops.orchestrator.probe.twosite import run_peer, site_servers
    from callops.secret import load_secret

    shared = module.model_dump(include=set(ProbeServers.model_fields))
    settings = ProbeSettings.model_validate({**shared, "timeout": timeout})
    ice, _ = site_servers(settings, env, host_addresses=module.host_addresses)
    # the module's validator saw to it that one of the two is set
    token = load_secret(file=module.token_file, env=module.token_env or "", what="probe serve token")
    assert token is not None
    report = await run_peer(url, token, ice, timeout=timeout, paths=module.paths)
    outcome = ProbeOutcome(
        success=report.verdict != "blocked",
        reason=None if report.verdict != "blocked" else "no path class connected (blocked)",
    )
    outcome.infos.append(
        Labels(
            "probe_ice_two_site",
            (("verdict", report.verdict), ("relay_transports", ",".join(report.relay_transports))),
        )
    )
    for path in report.paths:
        key = (("path", path.path),)
        outcome.values.append(Value("probe_ice_path_success", 1 if path.connected else 0, key))
        if path.rtt_ms is not None:
            outcome.values.append(Value("probe_ice_path_rtt_seconds", path.rtt_ms / 1000, key))
        if path.connected and path.local is not None and path.remote is not None:
            labels = (("local_type", path.local.type), ("remote_type", path.remote.type))
            outcome.infos.append(Labels("probe_ice_selected_pair", labels, key))
    return outcome


# -- the registry ----------------------------------------------------------------------------------

#: A probe ready to run: ``runner(timeout, env)``.
Runner = Callable[[float, Mapping[str, str]], Awaitable[ProbeOutcome]]
Target = ServerUri | HostPort | str


@dataclass(frozen=True)
class Prepared:
    """A module's parsed target and its adapter bound to both."""

    target: Target
    run: Runner


#: a parsed target
_T = TypeVar("_T", ServerUri, HostPort, str)


@dataclass(frozen=True)
class _Adapter(Generic[M, _T]):
    """One kind of module: how its target is parsed and how it runs."""

    kind: type[M]
    parse: Callable[[M, str], _T]
    run: Callable[[M, _T, float, Mapping[str, str]], Awaitable[ProbeOutcome]]

    def prepare(self, module: object, text: str) -> Prepared | None:
        """``module``'s target and bound runner, if it is of this kind."""
        if not isinstance(module, self.kind):
            return None
        target, run = self.parse(module, text), self.run

        def runner(timeout: float, env: Mapping[str, str]) -> Awaitable[ProbeOutcome]:
            return run(module, target, timeout, env)

        return Prepared(target, runner)


#: every kind of module, subclasses of :class:`TurnModule` before it
_ADAPTERS: tuple[Callable[[Module, str], Prepared | None], ...] = (
    _Adapter(StunModule, _stun_target, run_stun).prepare,
    _Adapter(NatModule, _nat_target, run_nat).prepare,
    _Adapter(TlsModule, _tls_target, run_tls).prepare,
    _Adapter(RelayModule, _turn_target, run_relay).prepare,
    _Adapter(BandwidthModule, _turn_target, run_bandwidth).prepare,
    _Adapter(LivePersonModule, _host_target, run_liveperson).prepare,
    _Adapter(TurnModule, _turn_target, run_turn).prepare,
    _Adapter(IceTwoSiteModule, _ws_target, run_ice_two_site).prepare,
)


def prepare(module: Module, text: str) -> Prepared:
    """Parse ``text`` as the module's target (:class:`TargetError`: a 400) and bind its adapter."""
    for adapter in _ADAPTERS:
        if (prepared := adapter(module, text)) is not None:
            return prepared
    raise TypeError(f"no adapter for {type(module).__name__}")


__all__ = ["HostPort", "Prepared", "Runner", "Target", "TargetError", "prepare", "server_uri"]
