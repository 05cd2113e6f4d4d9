"""The consumer-side handler in JavaScript, shipped as package data.

``callops-call-handler.js`` is what a brand's web developer copies onto a page tagged with lpTag
(``callops consumer js -o FILE`` writes it out): the tutorial's steps in a browser, with the same
rules as :mod:`callops.consumer.tracker` and :mod:`callops.consumer.lptag`.
"""

from __future__ import annotations

from importlib.resources import files

#: the handler's file name (also its path under the emulator's ``/web/``)
HANDLER_FILE = "callops-call-handler.js"


def handler_js() -> bytes:
    """The handler's source."""
    return files(__name__).joinpath(HANDLER_FILE).read_bytes()


__all__ = ["HANDLER_FILE", "handler_js"]
