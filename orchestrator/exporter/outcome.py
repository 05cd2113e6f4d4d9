"""What one ``/probe`` found, and its rendering as metrics in a fresh registry.

A prober's adapter returns a :class:`ProbeOutcome`: success, the failure reason, and typed
measurements (:class:`Value` gauges, :class:`Labels` info metrics). :func:`probe_registry` turns it
into a new :class:`prometheus_client.CollectorRegistry` per request (blackbox's convention: a probe's
answer holds only that probe's series), with ``probe_success``, ``probe_duration_seconds`` and, on
failure, ``probe_failure_info{reason}``.

Every metric a prober can emit is declared once in :data:`METRICS` (name -> help). The Grafana
dashboard and the alert rules are checked against this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, Info

#: name (as exposed) -> help text. Info metrics are listed with their ``_info`` suffix.
METRICS: dict[str, str] = {
    "probe_success": "1 if the probe succeeded, else 0.",
    "probe_duration_seconds": "How long the probe took, in seconds.",
    "probe_timeout_seconds": "The probe's time budget (scrape timeout minus margin, capped by the module).",
    "probe_failure_info": "Why the probe failed (one sentence with the fix).",
    "probe_stun_rtt_seconds": "STUN Binding round-trip time.",
    "probe_stun_connect_seconds": "TCP/TLS connect time before the STUN Binding.",
    "probe_stun_mapped_address_info": "The address the STUN server saw (XOR-MAPPED-ADDRESS).",
    "probe_nat_info": "RFC 5780 mapping and filtering behaviour of the NAT in front of the exporter.",
    "probe_turn_allocate_seconds": "Time to a TURN allocation, including the 401 round.",
    "probe_turn_allocation_lifetime_seconds": "LIFETIME the server granted to the allocation.",
    "probe_turn_relayed_address_info": "The relayed transport address of the allocation.",
    "probe_relay_rtt_seconds": "Median round-trip time of packets through the relay.",
    "probe_relay_rtt_max_seconds": "Largest round-trip time through the relay.",
    "probe_relay_loss_ratio": "Share of packets sent through the relay that did not come back (0-1).",
    "probe_relay_packets_sent": "Packets sent through the relay by this probe.",
    "probe_relay_packets_received": "Packets that came back through the relay.",
    "probe_tls_handshake_seconds": "TCP connect plus TLS handshake time.",
    "probe_tls_cert_expiry_timestamp_seconds": "notAfter of the server certificate, Unix seconds.",
    "probe_tls_cert_days_left": "Days until the server certificate expires (negative: expired).",
    "probe_tls_cert_verified": "1 if the certificate chain and name verified, else 0.",
    "probe_tls_version_info": "TLS version and cipher negotiated.",
    "probe_bandwidth_bits_per_second": (
        "Rate that got through the relay: direction=flow is the call-shaped flow (it crosses the "
        "site's link up and down), direction=feedback the small return flow."
    ),
    "probe_bandwidth_target_bits_per_second": "Rate the bandwidth test sent (module or profile item).",
    "probe_bandwidth_floor_bits_per_second": "Working minimum: below it the bandwidth probe fails.",
    "probe_bandwidth_target_met": "1 if the full target rate got through with loss under the limit, else 0.",
    "probe_bandwidth_loss_ratio": "Share of the flow's packets lost (0-1).",
    "probe_bandwidth_jitter_seconds": "RFC 3550 interarrival jitter of the flow.",
    "probe_bandwidth_rtt_seconds": "Median round-trip time through the relay during the flow.",
    "probe_bandwidth_rtt_p95_seconds": "95th percentile round-trip time through the relay during the flow.",
    "probe_bandwidth_rtt_max_seconds": "Largest round-trip time through the relay during the flow.",
    "probe_bandwidth_packets_sent": "Packets sent, by direction (flow, feedback).",
    "probe_bandwidth_packets_received": "Packets received, by direction (flow, feedback).",
    "probe_bandwidth_sending_seconds": "How long the flow was sent.",
    "probe_ice_path_success": "1 if ICE connected over the path class, else 0.",
    "probe_ice_path_rtt_seconds": "Round-trip time over the path class's selected pair.",
    "probe_ice_selected_pair_info": "The selected candidate pair of a path class.",
    "probe_ice_two_site_info": "The two-site verdict (p2p, relay-required, blocked).",
    "probe_liveperson_item_success": (
        "1 if the readiness item passed, 0 if it failed or only partly passed (warn); "
        "skipped items have none."
    ),
    "probe_liveperson_item_info": "A readiness item's status (pass, warn, fail, skipped); required or not.",
}


@dataclass(frozen=True)
class Value:
    """One gauge sample: ``name{labels} value``."""

    name: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Labels:
    """One info metric row: ``name_info{key..., labels...} 1`` (``name`` given without ``_info``).

    ``key`` distinguishes rows of one metric (e.g. ``path`` for the ICE selected pair per path).
    """

    name: str
    labels: tuple[tuple[str, str], ...]
    key: tuple[tuple[str, str], ...] = ()


@dataclass
class ProbeOutcome:
    """A prober's answer, before rendering."""

    success: bool
    reason: str | None = None
    values: list[Value] = field(default_factory=list)
    infos: list[Labels] = field(default_factory=list)

    @classmethod
    def failed(cls, reason: str) -> ProbeOutcome:
        return cls(success=False, reason=reason)

    def add(self, name: str, value: float | None) -> None:
        """One more sample ``name``, unless its value is unknown (None)."""
        if value is not None:
            self.values.append(Value(name, value))


def probe_registry(outcome: ProbeOutcome, *, duration_s: float, timeout_s: float) -> CollectorRegistry:
    """A fresh registry with the outcome's metrics (one per ``/probe``)."""
    registry = CollectorRegistry(auto_describe=False)
    Gauge("probe_success", METRICS["probe_success"], registry=registry).set(1 if outcome.success else 0)
    Gauge("probe_duration_seconds", METRICS["probe_duration_seconds"], registry=registry).set(duration_s)
    Gauge("probe_timeout_seconds", METRICS["probe_timeout_seconds"], registry=registry).set(timeout_s)
    if not outcome.success:
        failure = Info("probe_failure", METRICS["probe_failure_info"], registry=registry)
        failure.info({"reason": outcome.reason or "unknown"})
    gauges: dict[str, Gauge] = {}
    for sample in outcome.values:
        label_names = [k for k, _ in sample.labels]
        gauge = gauges.get(sample.name)
        if gauge is None:
            gauge = Gauge(sample.name, METRICS[sample.name], label_names, registry=registry)
            gauges[sample.name] = gauge
        (gauge.labels(*[v for _, v in sample.labels]) if label_names else gauge).set(sample.value)
    infos: dict[str, Info] = {}
    for row in outcome.infos:
        metric = infos.get(row.name)
        if metric is None:
            metric = Info(row.name, METRICS[f"{row.name}_info"], [k for k, _ in row.key], registry=registry)
            infos[row.name] = metric
        (metric.labels(*[v for _, v in row.key]) if row.key else metric).info(dict(row.labels))
    return registry


__all__ = ["METRICS", "Labels", "ProbeOutcome", "Value", "probe_registry"]
