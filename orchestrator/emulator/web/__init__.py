"""LivePerson's side of the page, stood in: static assets the emulator serves under ``/web/``.

* ``/web/lptag.js`` -- the lpTag stand-in (``lpTag.events.publish``/``bind``/``trigger``; call
  events with a bad mandatory field are refused and logged the way lpTag's debug mode does);
* ``/web/callapp.js`` -- the call application stand-in (container, media, WebRTC with trickle
  ICE over the CoBrowse stand-in, the four ``sessionError`` ids, resume after a reload);
* ``/web/consumer.html`` -- a test page: lpTag stand-in + call app + callops' handler;
* ``/web/agent.html`` + ``/web/agent.js`` -- the Agent Workspace stand-in: the agent's media in a
  browser (``window.agentLeg``), driven by callops' agent role;
* ``/web/webrtc-stats.js`` -- ``getStats()`` reduced to callops' figures (both pages);
* ``/web/handler-tests.html`` -- assertions on the handler's pure parts (``window.testResults``);
* ``/web/callops-call-handler.js`` -- the handler itself (:mod:`callops.consumer.web`).

:func:`web_asset` is pure (path -> content type and bytes, or None); the emulator's server answers
GET and HEAD with it through its h11 codec (:mod:`..http11`).
"""

from __future__ import annotations

from importlib.resources import files

from callops.consumer.web import HANDLER_FILE, handler_js

PREFIX = "/web/"
_TYPES = {".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8"}
_LOCAL = (
    "lptag.js",
    "callapp.js",
    "consumer.html",
    "handler-tests.html",
    "agent.html",
    "agent.js",
    "webrtc-stats.js",
)


def web_asset(path: str) -> tuple[str, bytes] | None:
    """``(content type, bytes)`` of the asset at ``path`` (query string ignored), or None."""
    path = path.partition("?")[0]
    if not path.startswith(PREFIX):
        return None
    name = path[len(PREFIX) :]
    content_type = _TYPES.get(name[name.rfind(".") :] if "." in name else "")
    if content_type is None:
        return None
    if name == HANDLER_FILE:
        return content_type, handler_js()
    if name in _LOCAL:
        return content_type, files(__name__).joinpath(name).read_bytes()
    return None


__all__ = ["PREFIX", "web_asset"]
