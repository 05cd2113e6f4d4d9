"""``callops turn config`` and ``callops turn lint``: render a secure turnserver.conf, check any."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from callops.orchestrator.cli.options import file_option

DEFAULT_CONFIG = "callops.yaml"

F = TypeVar("F", bound=Callable[..., object])


def config_option(help_text: str) -> Callable[[F], F]:
    """``--config FILE`` (or ``CALLOPS_CONFIG``, default ``callops.yaml``), passed as ``config_path``."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_CONFIG,
        envvar="CALLOPS_CONFIG",
        show_default=True,
        help=help_text,
    )


@click.command()
@config_option("callops.yaml with a turn: section.")
@file_option("-o", "--output", as_path=True, help="Write turnserver.conf here instead of standard output.")
@click.option(
    "--with-secret",
    is_flag=True,
    help="Append static-auth-secret from the deployment's secret_file (needs -o; the file is 0600).",
)
def config(config_path: Path, output: Path | None, with_secret: bool) -> None:
    """Render turnserver.conf from callops.yaml, secure by default.

    The shared secret is not written unless --with-secret: coturn cannot read it from a file, so the
    installer appends it into a copy only coturn can read (see docs/turn-config.md).
    """
    from callops.errors import UsageError
    from callops.turn.config import load_config, render_turnserver_conf, write_turnserver_conf

    deployment = load_config(config_path).require_turn(config_path)
    if with_secret:
        if output is None:
            raise UsageError("--with-secret needs -o FILE", hint="the secret is never printed")
        write_turnserver_conf(deployment, output)
        click.echo(f"wrote {output} (0600, with the shared secret from {deployment.secret_file})", err=True)
        return
    text = render_turnserver_conf(deployment)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.option(
    "--coturn-version",
    default=None,
    help="Version the file is for (default: its '# callops: coturn-version=' line, else 4.6.1).",
)
@file_option(
    "--secret-file", as_path=True, help="The shared-secret file whose permissions to check (not read)."
)
@click.pass_context
def lint(
    ctx: click.Context, file: Path, as_json: bool, coturn_version: str | None, secret_file: Path | None
) -> None:
    """Find security and reliability problems in a turnserver.conf. Exit code 1 if any error."""
    from callops.turn.lint import lint_file

    report = lint_file(
        file, coturn_version=coturn_version, secret_file=str(secret_file) if secret_file else None
    )
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        for f in report.findings:
            where = f"{report.file}:{f.line}" if f.line else report.file
            click.echo(f"{where}: {f.severity} [{f.id}] {f.message}")
            click.echo(f"    why: {f.why}")
            click.echo(f"    fix: {f.fix}")
        click.echo(
            f"{report.file}: {report.errors} error(s), {report.warnings} warning(s), {report.infos} info"
            f" (coturn {report.coturn_version})"
        )
    if not report.ok:
        ctx.exit(1)


__all__ = ["config", "lint"]
