"""``GET /``: the modules and the last results, as blackbox_exporter's index page shows them.

Only names, probers, timeouts and public settings appear: never a secret, and no secret file's
contents (a module's ``secret_file`` path is shown, as in the config file; its value never is).
"""

from __future__ import annotations

import html
import time
import urllib.parse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callops.orchestrator.exporter.service import Exporter


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def index_page(exporter: Exporter) -> str:
    e = html.escape
    modules = []
    for name, module in sorted(exporter.modules.items()):
        settings = ", ".join(f"{k}={v}" for k, v in module.public_settings().items())
        modules.append(_row([e(name), e(module.prober), e(settings), "ready"]))
    recent = []
    for record in reversed(exporter.history):
        link = "/probe?" + urllib.parse.urlencode({"module": record.module, "target": record.target})
        recent.append(
            _row(
                [
                    e(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.at))),
                    e(record.module),
                    f'<a href="{e(link)}">{e(record.target)}</a>',
                    "success" if record.success else "<b>failure</b>",
                    f"{record.duration_s:.3f}",
                    e(record.reason or ""),
                ]
            )
        )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>callops exporter</title></head><body>\n'
        "<h1>callops exporter</h1>\n"
        "<p>STUN/TURN/ICE probes for Prometheus: "
        '<a href="/probe?module=stun&amp;target=127.0.0.1:3478">/probe?module=stun&amp;target=HOST:PORT</a>'
        ' &middot; <a href="/metrics">/metrics</a> (the exporter\'s own)</p>\n'
        '<h2>Modules</h2>\n<table border="1"><tr><th>module</th><th>prober</th><th>settings</th>'
        "<th>state</th></tr>\n" + "\n".join(modules) + "\n</table>\n"
        '<h2>Recent probes (UTC)</h2>\n<table border="1"><tr><th>time</th><th>module</th><th>target</th>'
        "<th>result</th><th>seconds</th><th>reason</th></tr>\n" + "\n".join(recent) + "\n</table>\n"
        "</body></html>\n"
    )


__all__ = ["index_page"]
