"""Invitation tracker throughput on a recorded notification stream (target: >= 50,000/s on one core).

The recording is a deterministic mix shaped like real traffic: messaging-only conversation updates,
call invitations (seed-shaped COBROWSE dialogs), repeated UPSERTs of the same state, ACCEPTED,
partial CLOSED, co-browse (non-call) dialogs, stale updates and conversation DELETEs.

Three figures, each the median of several runs:

- ``tracker``: ``InvitationTracker.receive`` on bodies parsed once beforehand (the tracker's own cost);
- ``parse_and_track``: ``ConsumerProtocol.receive`` on the frame text (JSON + pydantic + tracker),
  the cost per websocket frame in the client.
- ``parse_only``: ``parse_frame`` + ``parse_body`` without the tracker, for reference.

Run: ``python -m bench.tracker_throughput [--notifications N] [--runs R]``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from bench._common import median, write_result
from callops import testing
from callops.consumer.models import ExConversationChangeNotification, parse_body, parse_frame
from callops.consumer.protocol import ConsumerProtocol
from callops.consumer.tracker import InvitationTracker
from callops.secret import Secret

CONSUMER = "cc05f2b9-916b-496e-89fe-66a46d975ae2"
AGENT = "le83624296.356285412"
T0_MS = 1_700_000_000_000
TARGET = 50_000


def _call_dialog(dialog: str, state: str, mode: str, ts: int) -> dict[str, object]:
    return testing.call_dialog(
        dialog,
        state,
        mode=mode,
        service_id=f"{CONSUMER}#{dialog}",
        participants=[CONSUMER, AGENT],
        created_ms=T0_MS,
        updated_ms=ts,
        expires=T0_MS / 1000 + 10_000,
    )


def _frame(conv: str, dialogs: list[dict[str, object]], ts: int, kind: str = "UPSERT") -> str:
    if kind == "UPSERT":
        body = testing.conversation_upsert(
            conv,
            [testing.main_dialog(conv, CONSUMER, AGENT, T0_MS, ts), *dialogs],
            participants=testing.conversation_roles(CONSUMER, AGENT),
            start_ms=T0_MS,
            updated_ms=ts,
        )
    else:
        body = testing.conversation_delete(conv)
    return json.dumps({"kind": "notification", "type": "cqm.ExConversationChangeNotification", "body": body})


def recording(n: int, seed: int = 7) -> list[str]:
    """``n`` notification frames: conversations going through realistic call lifecycles."""
    rng = random.Random(seed)
    frames: list[str] = []
    conv_no = 0
    while len(frames) < n:
        conv_no += 1
        conv = f"conv-{conv_no:06d}"
        ts = T0_MS + conv_no * 1000
        dialog = f"call-{conv_no:06d}"
        frames.append(_frame(conv, [], ts))  # messaging-only update
        roll = rng.random()
        if roll < 0.1:  # co-browsing, not a call
            frames.append(_frame(conv, [_call_dialog(dialog, "INVITED", "shared", ts + 1)], ts + 1))
            frames.append(_frame(conv, [_call_dialog(dialog, "INVITED", "shared", ts + 1)], ts + 1))
            continue
        mode = "VIDEO_CALL" if rng.random() < 0.5 else "VOICE_CALL"
        invited = _frame(conv, [_call_dialog(dialog, "INVITED", mode, ts + 1)], ts + 1)
        frames += [invited, invited]  # the invitation and a repeat
        if roll < 0.6:
            frames.append(_frame(conv, [_call_dialog(dialog, "ACCEPTED", mode, ts + 2)], ts + 2))
            frames.append(_frame(conv, [_call_dialog(dialog, "ACCEPTED", mode, ts + 3)], ts + 3))  # joined
            frames.append(invited)  # stale
        frames.append(_frame(conv, [testing.closed_call_dialog(dialog)], ts + 4))
        if roll > 0.9:
            frames.append(_frame(conv, [], ts + 5, kind="DELETE"))
    return frames[:n]


def _bodies(frames: list[str]) -> list[ExConversationChangeNotification]:
    out = []
    for text in frames:
        frame = parse_frame(text)
        out.append(parse_body(ExConversationChangeNotification, frame.body))
    return out


def run(n: int, runs: int) -> dict[str, Any]:
    frames = recording(n)
    bodies = _bodies(frames)
    now = T0_MS / 1000 + 5.0
    tracker_rates, e2e_rates, parse_rates = [], [], []
    events = 0
    for _ in range(runs):
        tracker = InvitationTracker(consumer_id=CONSUMER)
        start = time.perf_counter()
        for body in bodies:
            events += len(tracker.receive(body, now))
        tracker_rates.append(n / (time.perf_counter() - start))

        protocol = ConsumerProtocol(Secret("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."))
        start = time.perf_counter()
        for text in frames:
            protocol.receive(text, now)
        e2e_rates.append(n / (time.perf_counter() - start))

        start = time.perf_counter()
        for text in frames:
            parse_body(ExConversationChangeNotification, parse_frame(text).body)
        parse_rates.append(n / (time.perf_counter() - start))
    return {
        "notifications": n,
        "runs": runs,
        "events_per_run": events // runs,
        "tracker_per_s": round(median(tracker_rates)),
        "parse_and_track_per_s": round(median(e2e_rates)),
        "parse_only_per_s": round(median(parse_rates)),
        "target_per_s": TARGET,
        "tracker_meets_target": median(tracker_rates) >= TARGET,
        "parse_and_track_meets_target": median(e2e_rates) >= TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--notifications", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    write_result("tracker_throughput", run(args.notifications, args.runs))


if __name__ == "__main__":
    main()
