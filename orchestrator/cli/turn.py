"""``callops turn``: one group, its commands in two modules (probes/credentials/audit; config/lint)."""

from __future__ import annotations

import click

from callops.orchestrator.cli import LazyGroup

TURN_COMMANDS: dict[str, tuple[str, str, str]] = {
    "creds": (
        "callops.orchestrator.cli.turn_probe",
        "creds",
        "TURN REST API credentials for a shared secret.",
    ),
    "probe": (
        "callops.orchestrator.cli.turn_probe",
        "probe",
        "STUN/TURN checks: bindings, NAT, allocations, relay.",
    ),
    "audit": (
        "callops.orchestrator.cli.turn_probe",
        "audit",
        "Active check that a relay refuses forbidden peers.",
    ),
    "config": ("callops.orchestrator.cli.turn_config", "config", "Render a secure turnserver.conf."),
    "lint": (
        "callops.orchestrator.cli.turn_config",
        "lint",
        "Find security and reliability problems in turnserver.conf.",
    ),
}


@click.group(cls=LazyGroup, lazy=TURN_COMMANDS)
def turn() -> None:
    """TURN/STUN: probes, credentials, coturn configuration, lint and audit."""
