"""``callops deploy``: render coturn deployment scripts and manifests."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from callops.orchestrator.cli.turn_config import config_option


@click.group()
def deploy() -> None:
    """Render coturn deployments: systemd install script, Kubernetes manifests, compose file."""


@deploy.command()
@click.option(
    "--target",
    type=click.Choice(["systemd", "kubernetes", "compose", "kubernetes-load"]),
    required=True,
    help="What to render for.",
)
@config_option("callops.yaml with turn: (and optionally deploy:) sections.")
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the files into.",
)
@click.option(
    "--with-secret",
    is_flag=True,
    help="kubernetes: fill the Secret from turn.secret_file (the manifest is then written 0600).",
)
def render(target: str, config_path: Path, out_dir: Path, with_secret: bool) -> None:
    """Write the files that install and run the coturn relay described in callops.yaml."""
    from callops.deploy.render import Target, deploy_options, render_bundle, write_bundle
    from callops.errors import UsageError
    from callops.secret import read_secret_file
    from callops.turn.config import load_config

    config = load_config(config_path)
    deployment = config.require_turn(config_path)
    options = deploy_options(config, str(config_path))
    secret = None
    if with_secret:
        if target != "kubernetes":
            raise UsageError(
                "--with-secret applies to --target kubernetes only",
                hint="the install script and compose read the secret file at start-up",
            )
        secret = read_secret_file(deployment.secret_file, what="TURN shared secret")
    from callops.orchestrator.exporter.exporter_config import exporter_settings

    section = config.section("exporter")
    exporter = exporter_settings(section, source=str(config_path)) if section is not None else None
    files = render_bundle(deployment, cast("Target", target), options, secret=secret, exporter=exporter)
    private = frozenset({"coturn.yaml", "callops-exporter.yaml"}) if secret is not None else frozenset()
    for path in write_bundle(files, out_dir, private=private):
        click.echo(str(path))


__all__ = ["deploy", "render"]
