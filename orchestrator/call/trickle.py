"""Trickle ICE for callops' aiortc peers: apply the other side's candidates as they arrive.

Browsers send their answer (or offer) at once and their candidates one by one afterwards
(``{"kind":"candidate",...}``, then ``{"kind":"end-of-candidates"}``, see
:mod:`callops.orchestrator.call.signalling`). A :class:`TrickleFollower` reads them from the
CoBrowse channel's inbox once the description is applied and hands them to
:func:`~callops.orchestrator.call.peer.add_remote_candidate`; end-of-candidates lets aioice report
an ICE failure instead of waiting. Malformed messages are noted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from callops.errors import CallopsError, RemoteProtocolError
from callops.orchestrator.call.peer import HeadlessPeer, add_remote_candidate, end_of_remote_candidates
from callops.orchestrator.call.signalling import Candidate, EndOfCandidates, parse_signal

log = logging.getLogger(__name__)

#: the longest a follower waits for the next trickled message
TRICKLE_WAIT_S = 60.0


class TrickleFollower:
    """Applies trickled candidates of ``epoch`` from ``inbox`` (a CoBrowse inbox) to ``peer``."""

    def __init__(
        self, inbox: Any, peer: HeadlessPeer, *, epoch: int = 0, notes: list[str] | None = None
    ) -> None:
        self.inbox = inbox
        self.peer = peer
        self.epoch = epoch
        self.notes = notes if notes is not None else []
        self.applied = 0
        self.ended = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> TrickleFollower:
        self._task = asyncio.create_task(self._run(), name=f"trickle-{self.peer.role}")
        return self

    async def _run(self) -> None:
        while not self.ended:
            try:
                frame = await self.inbox.next("signal", TRICKLE_WAIT_S)
            except CallopsError:
                return  # the channel closed or went quiet: the call's own deadlines decide
            try:
                message = parse_signal(frame.get("data"))
            except RemoteProtocolError as exc:
                self.notes.append(f"{self.peer.role}: ignored {exc.message}")
                continue
            if message.epoch != self.epoch:
                continue
            try:
                if isinstance(message, Candidate):
                    if await add_remote_candidate(
                        self.peer, message.candidate, message.sdpMid, message.sdpMLineIndex
                    ):
                        self.applied += 1
                elif isinstance(message, EndOfCandidates):
                    await end_of_remote_candidates(self.peer)
                    self.ended = True
                    log.debug(
                        "%s peer: end of trickled candidates (%d applied)", self.peer.role, self.applied
                    )
            except (ValueError, AttributeError) as exc:  # aiortc/aioice on a closing transport
                self.notes.append(f"{self.peer.role}: trickled {message.kind} not applied: {exc}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


__all__ = ["TRICKLE_WAIT_S", "TrickleFollower"]
