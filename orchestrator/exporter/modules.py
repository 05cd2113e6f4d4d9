"""The probers: one entry per prober, each a target parser and one adapter function.

An adapter runs callops' existing probe (:mod:`callops.turn.probes`, the two-site
:func:`~callops.orchestrator.probe.twosite.run_peer`) and converts its result into a
:class:`~callops.orchestrator.exporter.outcome.ProbeOutcome` -- the one place per prober that knows
the probe's result type, so a change of result type touches one function.

:data:`PROBERS` is the registry. An entry whose ``requires`` module is missing from this build
(``bandwidth``, ``liveperson`` until callops' bandwidth probe and readiness profile land) answers
400 with :attr:`Prober.unavailable`.
"""

from __future__ import annotations

import importlib.util
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from callops.errors import UsageError
from callops.orchestrator.exporter.config import (
    BandwidthModule,
    IceTwoSiteModule,
    LivePersonModule,
    NatModule,
    RelayModule,
    StunModule,
    TlsModule,
    Transport,
    TurnModule,
)
from callops.orchestrator.exporter.outcome import Labels, ProbeOutcome, Value
from callops.turn.uri import DEFAULT_PORT, DEFAULT_SECURE_PORT, Scheme, ServerUri, parse_uri

M = TypeVar("M")
T = TypeVar("T")

_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


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
        transport="tcp" if secure else transport,  # type: ignore[arg-type]
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


def _ms(value: Any) -> float | None:
    return float(value) / 1000 if isinstance(value, int | float) else None


def _from_probe_result(result: Any) -> ProbeOutcome:
    """Success and reason of a :class:`callops.turn.probes.ProbeResult`."""
    from callops.turn.probes import ProbeStatus

    if result.status is ProbeStatus.OK:
        return ProbeOutcome(success=True)
    return ProbeOutcome.failed(result.error or result.detail or f"probe {result.status.value}")


async def run_stun(
    module: StunModule, uri: ServerUri, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    from callops.turn.probes import stun_binding

    result = await stun_binding(uri, timeout, ca_file=module.ca_file, insecure=module.insecure)
    outcome = _from_probe_result(result)
    if (rtt := _ms(result.data.get("rtt_ms"))) is not None:
        outcome.values.append(Value("probe_stun_rtt_seconds", rtt))
    if (connect := _ms(result.data.get("connect_ms"))) is not None:
        outcome.values.append(Value("probe_stun_connect_seconds", connect))
    if result.data.get("mapped"):
        outcome.infos.append(Labels("probe_stun_mapped_address", (("address", str(result.data["mapped"])),)))
    return outcome


async def run_nat(module: NatModule, uri: ServerUri, timeout: float, env: Mapping[str, str]) -> ProbeOutcome:
    from callops.turn.probes import ProbeStatus, nat_behaviour

    result = await nat_behaviour(uri, timeout)
    outcome = _from_probe_result(result)
    if result.status is ProbeStatus.INCONCLUSIVE:
        outcome = ProbeOutcome(success=True)
    if "mapping" in result.data:
        labels = (
            ("mapping", str(result.data["mapping"])),
            ("filtering", str(result.data["filtering"])),
            ("nat", str(result.data.get("nat"))),
            ("mapped", str(result.data.get("mapped") or "")),
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
    if (allocate := _ms(result.data.get("allocate_ms"))) is not None:
        outcome.values.append(Value("probe_turn_allocate_seconds", allocate))
    if isinstance(result.data.get("lifetime"), int):
        outcome.values.append(Value("probe_turn_allocation_lifetime_seconds", result.data["lifetime"]))
    if result.data.get("relayed"):
        labels = (("address", str(result.data["relayed"])), ("transport", module.transport))
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
    if (rtt := _ms(data.get("rtt_ms"))) is not None:
        outcome.values.append(Value("probe_relay_rtt_seconds", rtt))
    if (rtt_max := _ms(data.get("rtt_ms_max"))) is not None:
        outcome.values.append(Value("probe_relay_rtt_max_seconds", rtt_max))
    if isinstance(data.get("loss"), int | float):
        outcome.values.append(Value("probe_relay_loss_ratio", float(data["loss"])))
    if isinstance(data.get("sent"), int):
        outcome.values.append(Value("probe_relay_packets_sent", data["sent"]))
        outcome.values.append(Value("probe_relay_packets_received", data.get("received", 0)))
    return outcome


async def run_bandwidth(
    module: BandwidthModule, uri: ServerUri, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    """Expects ``callops.turn.bandwidth.bandwidth_test(uri, username, password, timeout, *,
    rate_kbps, duration, ca_file, insecure) -> ProbeResult`` with ``data`` keys ``up_kbps``,
    ``down_kbps`` and ``loss`` (0-1)."""
    bandwidth = importlib.import_module("callops.turn.bandwidth")
    username, password = module.credentials(env, time.time())
    result = await bandwidth.bandwidth_test(
        uri,
        username,
        password.reveal(),
        timeout,
        rate_kbps=module.rate_kbps,
        duration=module.duration,
        ca_file=module.ca_file,
        insecure=module.insecure,
    )
    outcome = _from_probe_result(result)
    for direction in ("up", "down"):
        kbps = result.data.get(f"{direction}_kbps")
        if isinstance(kbps, int | float):
            labels = (("direction", direction),)
            outcome.values.append(Value("probe_bandwidth_bits_per_second", kbps * 1000, labels))
    if isinstance(result.data.get("loss"), int | float):
        outcome.values.append(Value("probe_bandwidth_loss_ratio", float(result.data["loss"])))
    return outcome


async def run_liveperson(
    module: LivePersonModule, uri: ServerUri, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    """Expects ``callops.orchestrator.probe.profile.run_profile(name, settings: ProbeSettings, env, *,
    timeout) -> report`` whose ``items`` each have ``id`` and ``status`` (pass/fail/warn/skipped)."""
    from callops.orchestrator.probe.settings import ProbeSettings

    profile = importlib.import_module("callops.orchestrator.probe.profile")
    settings = ProbeSettings(
        turn=[str(uri)],
        secret_file=module.secret_file,
        user=module.user,
        password_file=module.password_file,
        ca_file=module.ca_file,
        insecure=module.insecure,
        timeout=timeout,
    )
    report = await profile.run_profile("liveperson", settings, env, timeout=timeout)
    failed = [item.id for item in report.items if item.status == "fail"]
    outcome = ProbeOutcome(success=not failed, reason=f"failed: {', '.join(failed)}" if failed else None)
    for item in report.items:
        if item.status != "skipped":
            value = Value(
                "probe_liveperson_item_success", 0 if item.status == "fail" else 1, (("item", item.id),)
            )
            outcome.values.append(value)
    return outcome


async def run_ice_two_site(
    module: IceTwoSiteModule, url: str, timeout: float, env: Mapping[str, str]
) -> ProbeOutcome:
    from callops.orchestrator.probe.settings import ProbeSettings
    from callops.orchestrator.probe.twosite import run_peer, site_servers
    from callops.secret import load_secret

    settings = ProbeSettings(
        stun=module.stun,
        turn=module.turn,
        secret_file=module.secret_file,
        user=module.user,
        password_file=module.password_file,
        ca_file=module.ca_file,
        insecure=module.insecure,
        timeout=timeout,
    )
    ice, _ = site_servers(settings, env, host_addresses=module.host_addresses)
    if module.token_file is not None:
        token = load_secret(file=module.token_file, env="", what="probe serve token")
    else:
        assert module.token_env is not None
        token = load_secret(file=None, env=module.token_env, what="probe serve token")
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


@dataclass(frozen=True)
class Prober(Generic[M, T]):
    """How one prober parses its target and runs."""

    parse_target: Callable[[M, str], T]
    run: Callable[[M, T, float, Mapping[str, str]], Awaitable[ProbeOutcome]]
    #: a module this prober needs (None: always available)
    requires: str | None = None
    #: the 400 answer when ``requires`` is missing
    unavailable: str = ""

    def available(self) -> bool:
        if self.requires is None:
            return True
        try:
            return importlib.util.find_spec(self.requires) is not None
        except ModuleNotFoundError:
            return False


_NEEDS_BANDWIDTH = "module needs callops' bandwidth probe (not built in this version)"

PROBERS: dict[str, Prober[Any, Any]] = {
    "stun": Prober(_stun_target, run_stun),
    "nat": Prober(_nat_target, run_nat),
    "tls": Prober(_tls_target, run_tls),
    "turn": Prober(_turn_target, run_turn),
    "relay": Prober(_turn_target, run_relay),
    "ice_two_site": Prober(_ws_target, run_ice_two_site),
    "bandwidth": Prober(_turn_target, run_bandwidth, "callops.turn.bandwidth", _NEEDS_BANDWIDTH),
    "liveperson": Prober(
        _turn_target, run_liveperson, "callops.orchestrator.probe.profile", _NEEDS_BANDWIDTH
    ),
}


__all__ = ["PROBERS", "HostPort", "Prober", "TargetError", "server_uri"]
