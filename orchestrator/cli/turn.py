"""``callops turn``: one group, its commands in two modules (probes/credentials/audit; config/lint)."""

from __future__ import annotations

import click

from callops.orchestrator.cli import COMMANDS, LazyGroup


@click.group(cls=LazyGroup, lazy=COMMANDS["turn"])
def turn() -> None:
    """TURN/STUN: probes, credentials, coturn configuration, lint and audit."""
