"""``callops turn``: one group, its commands in two modules (probes/credentials/audit; config/lint)."""

from __future__ import annotations

import click

from callops.orchestrator.cli import LazyGroup

TURN_COMMANDS: dict[str, tuple[str, str]] = {
    "creds": ("turn_probe", "TURN REST API credentials for a shared secret."),
    "probe": ("turn_probe", "STUN/TURN checks: bindings, NAT, allocations, relay."),
    "audit": ("turn_probe", "Active check that a relay refuses forbidden peers."),
    "config": ("turn_config", "Render a secure turnserver.conf."),
    "lint": ("turn_config", "Find security and reliability problems in turnserver.conf."),
}


@click.group(cls=LazyGroup, lazy=TURN_COMMANDS)
def turn() -> None:
    """TURN/STUN: probes, credentials, coturn configuration, lint and audit."""
