"""``callops exporter``: serve STUN/TURN/ICE probes to Prometheus (``/probe``, ``/metrics``, ``/``)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Address to serve on (default: exporter.listen of the config, else 127.0.0.1:9478).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CALLOPS_CONFIG",
    help="callops.yaml with an 'exporter:' section (modules). Without it: stun, nat, tls.",
)
@click.option("--check", is_flag=True, help="Validate the config and the modules' secrets, then exit.")
def exporter(listen: str | None, config_path: Path | None, check: bool) -> None:
    """Serve probes for Prometheus, the way blackbox_exporter does (multi-target /probe).

    GET /probe?module=M&target=T runs one probe and answers probe_success, probe_duration_seconds
    and the module's measurements; GET /metrics is the exporter's own; GET / lists the modules
    and the last results. See docs/exporter.md for modules and the Prometheus scrape config.
    """
    import asyncio
    import contextlib
    import time

    from callops.orchestrator.exporter.exporter_config import load_exporter_settings, parse_listen
    from callops.orchestrator.exporter.http import serve
    from callops.orchestrator.exporter.service import Exporter

    settings, source = load_exporter_settings(config_path)
    host, port = parse_listen(listen or settings.listen)
    for module in settings.modules.values():
        credentials = getattr(module, "credentials", None)
        if credentials is not None:
            credentials(os.environ, time.time())  # a missing secret file is an error now, not per scrape
    if check:
        click.echo(
            f"{source}: {len(settings.all_modules())} modules: {', '.join(sorted(settings.all_modules()))}"
        )
        return
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(Exporter(settings), host, port))


__all__ = ["exporter"]
