"""The emulator's static assets (LivePerson's side of the page, stood in), served under /web/."""

from __future__ import annotations

import asyncio

from callops.consumer.web import handler_js
from callops.orchestrator.emulator.server import Emulator, EmulatorConfig
from callops.orchestrator.emulator.web import web_asset
from callops.testing import run_bounded


def test_assets_have_their_content_type_and_unknown_paths_are_none() -> None:
    for name, kind in (("lptag.js", "text/javascript"), ("callapp.js", "text/javascript"),
                       ("consumer.html", "text/html"), ("handler-tests.html", "text/html")):  # fmt: skip
        asset = web_asset(f"/web/{name}?v=1")
        assert asset is not None and asset[0].startswith(kind) and len(asset[1]) > 500, name
    assert web_asset("/web/callops-call-handler.js") == ("text/javascript; charset=utf-8", handler_js())
    for path in ("/web/", "/web/../server.py", "/web/__init__.py", "/web/nope.js", "/lptag.js", "/healthz"):
        assert web_asset(path) is None, path


def test_the_emulator_serves_assets_and_still_its_control_api() -> None:
    async def get(port: int, path: str, method: str = "GET") -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        return data

    async def main() -> tuple[bytes, ...]:
        async with Emulator(EmulatorConfig()) as emu:
            return tuple(
                await asyncio.gather(
                    get(emu.port, "/web/callapp.js"),
                    get(emu.port, "/healthz"),
                    get(emu.port, "/web/missing.js"),
                    get(emu.port, "/web/lptag.js", "HEAD"),
                    get(emu.port, "/web/lptag.js", "POST"),
                )
            )

    asset, health, missing, head, post = run_bounded(main(), 20)
    # HEAD: the head with the asset's length, no body; other methods are not the assets' business
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n") and b"text/javascript" in head
    assert not post.startswith(b"HTTP/1.1 200")
    assert asset.startswith(b"HTTP/1.1 200 OK") and b"lp_cobrowse_callscreen_container" in asset
    assert b'"status": "ok"' in health
    assert missing.startswith(b"HTTP/1.1 404")
