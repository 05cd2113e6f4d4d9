# ruff: noqa: E501 -- notification tables and JavaScript snippets read best unwrapped
"""The JavaScript handler's pure parts, run in Chromium, give the same answers as the Python rules.

The same notification sequences go through :class:`callops.consumer.tracker.InvitationTracker` and
the handler's ``InvitationTracker`` in a real browser; the same payloads through
:func:`callops.consumer.lptag.validate_event` and ``validateCallPayload``. Any difference fails.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from callops.consumer.lptag import validate_event
from callops.consumer.models import ExConversationChangeNotification
from callops.consumer.tracker import CallClosed, InvitationTracker, TrackerEvent
from callops.consumer.web import handler_js
from callops.errors import ValidationError
from callops.orchestrator.browser.chromium import Chromium, ChromiumOptions
from callops.orchestrator.browser.isolation import run_in_namespace

pytestmark = [pytest.mark.netns, pytest.mark.slow]

T0 = 1_700_000_000.0
CONSUMER, AGENT, CONV = "consumer-1", "agent-7", "conv-1"


def dialog(dialog_id: str, state: str | None = "INVITED", *, mode: str = "VIDEO_CALL", ts: int | None = None,
           expires: float | None = T0 + 90, participants: Any = None, closed_partial: bool = False) -> dict[str, Any]:  # fmt: skip
    if closed_partial:
        return {"dialogId": dialog_id, "dialogType": "OTHER", "channelType": "COBROWSE",
                "metaData": {"sessionState": "CLOSED"}}  # fmt: skip
    meta: dict[str, Any] = {"serviceId": f"{CONSUMER}#{dialog_id}", "mode": mode, "dialogId": dialog_id}
    if state is not None:
        meta["sessionState"] = state
    if expires is not None:
        meta["expires"] = expires
    created = int(T0 * 1000)
    return {
        "dialogId": dialog_id,
        "participants": participants if participants is not None else [CONSUMER, AGENT],
        "dialogType": "OTHER",
        "channelType": "COBROWSE",
        "metaData": meta,
        "state": "OPEN",
        "creationTs": created,
        "metaDataLastUpdateTs": ts if ts is not None else created,
    }


def upsert(*dialogs: dict[str, Any], stage: str = "OPEN", roles: bool = True) -> dict[str, Any]:
    participants = (
        [{"id": AGENT, "role": "ASSIGNED_AGENT"}, {"id": CONSUMER, "role": "CONSUMER"}] if roles else []
    )
    return {"subscriptionId": "s", "changes": [{"type": "UPSERT", "result": {"convId": CONV, "conversationDetails": {
        "participants": participants, "dialogs": list(dialogs), "state": stage, "stage": stage}}}]}  # fmt: skip


DELETE = {"subscriptionId": "s", "changes": [{"type": "DELETE", "result": {"convId": CONV}}]}

#: (name, steps): ("receive", body, now) | ("accepted"|"declined", dialogId) | ("tick", now)
SCENARIOS: list[tuple[str, list[Any]]] = [
    ("accept then hang up", [("receive", upsert(dialog("d1")), T0 + 1), ("accepted", "d1"),
        ("receive", upsert(dialog("d1", "ACCEPTED", ts=int(T0 * 1000) + 5)), T0 + 2),
        ("receive", upsert(dialog("d1", "ACCEPTED", ts=int(T0 * 1000) + 6)), T0 + 2),
        ("receive", upsert(dialog("d1", closed_partial=True)), T0 + 9)]),
    ("declined", [("receive", upsert(dialog("d1")), T0 + 1), ("declined", "d1"),
        ("receive", upsert(dialog("d1", closed_partial=True)), T0 + 2)]),
    ("expired by tick", [("receive", upsert(dialog("d1")), T0 + 1), ("tick", T0 + 50), ("tick", T0 + 91)]),
    ("cancelled by the agent", [("receive", upsert(dialog("d1")), T0 + 1),
        ("receive", upsert(dialog("d1", closed_partial=True)), T0 + 3)]),
    ("accepted but ACCEPTED never seen", [("receive", upsert(dialog("d1")), T0 + 1), ("accepted", "d1"),
        ("receive", upsert(dialog("d1", closed_partial=True)), T0 + 3)]),
    ("co-browsing is not a call", [("receive", upsert(dialog("d1", mode="shared")), T0 + 1),
        ("receive", upsert(dialog("d1", "ACCEPTED", mode="shared")), T0 + 2)]),
    ("stale update ignored", [("receive", upsert(dialog("d1", ts=int(T0 * 1000) + 10)), T0 + 1),
        ("receive", upsert(dialog("d1", "ACCEPTED", ts=int(T0 * 1000) + 5)), T0 + 2)]),
    ("closed never reopens", [("receive", upsert(dialog("d1")), T0 + 1),
        ("receive", upsert(dialog("d1", closed_partial=True)), T0 + 2), ("receive", upsert(dialog("d1")), T0 + 3)]),
    ("first seen accepted", [("receive", upsert(dialog("d1", "ACCEPTED")), T0 + 1)]),
    ("already expired when first seen", [("receive", upsert(dialog("d1")), T0 + 100)]),
    ("conversation deleted", [("receive", upsert(dialog("d1"), dialog("d2")), T0 + 1), ("receive", DELETE, T0 + 2)]),
    ("conversation closed", [("receive", upsert(dialog("d1")), T0 + 1),
        ("receive", upsert(dialog("d1"), stage="CLOSE"), T0 + 2)]),
    ("agent from plain participant ids", [("receive", upsert(dialog("d1"), roles=False), T0 + 1)]),
    ("no expires: creationTs + 120 s", [("receive", upsert(dialog("d1", expires=None)), T0 + 1), ("tick", T0 + 119),
        ("tick", T0 + 120)]),
    ("INVITED after ACCEPTED", [("receive", upsert(dialog("d1")), T0 + 1),
        ("receive", upsert(dialog("d1", "ACCEPTED", ts=int(T0 * 1000) + 1)), T0 + 2),
        ("receive", upsert(dialog("d1", "INVITED", ts=int(T0 * 1000) + 2)), T0 + 3)]),
]  # fmt: skip

PAYLOADS: list[tuple[str, Any]] = [
    ("cobrowseOffered", {"serviceId": "c#1", "agentId": "a", "visitorName": "v", "mode": "VIDEO_CALL",
                         "ssid": "s", "svid": "v"}),
    ("cobrowseAccepted", {"serviceId": "", "agentId": 3, "mode": "X", "ssid": "a"}),
    ("cobrowseDeclined", {}),
    ("cobrowseDeclined", None),
    ("cobrowseOffered", ["not", "an", "object"]),
    ("cobrowseAccepted", {"serviceId": "c#1", "agentId": "a", "visitorName": "v", "mode": "VOICE_CALL",
                          "ssid": "s", "svid": "v", "scid": "", "eid": "e", "extra": 1}),
    ("sessionError", {"id": "X"}),
    ("sessionError", {"id": "NO_CAMERA_ACCESS", "msg": ""}),
    ("sliderOpened", None),
    ("noSuchEvent", {}),
]  # fmt: skip


def python_events(steps: list[Any]) -> list[list[Any]]:
    tracker = InvitationTracker()
    out: list[list[Any]] = []

    def record(events: list[TrackerEvent]) -> None:
        for e in events:
            kind = {"CallInvited": "invited", "CallAccepted": "accepted", "CallClosed": "closed"}[
                type(e).__name__
            ]
            reason = str(e.reason) if isinstance(e, CallClosed) else None
            out.append([kind, e.dialogId, e.serviceId, e.mode, e.agentId, reason])

    for step in steps:
        if step[0] == "receive":
            record(tracker.receive(ExConversationChangeNotification.model_validate(step[1]), step[2]))
        elif step[0] == "tick":
            record(tracker.tick(step[1]))
        else:
            getattr(tracker, step[0])(step[1])
    return out


def python_problems(name: str, payload: Any) -> list[list[str]]:
    try:
        validate_event(name, payload)
    except ValidationError as exc:
        return [[field, message] for field, message in exc.problems]
    return []


JS_RUN = """
(function (scenarios, payloads) {
  var H = window.CallopsCallHandler;
  var events = scenarios.map(function (steps) {
    var tracker = new H.InvitationTracker();
    var out = [];
    function record(list) { list.forEach(function (e) {
      out.push([e.type, e.call.dialogId, e.call.serviceId, e.call.mode, e.call.agentId, e.reason || null]); }); }
    steps.forEach(function (s) {
      if (s[0] === "receive") record(tracker.receive(s[1], s[2]));
      else if (s[0] === "tick") record(tracker.tick(s[1]));
      else tracker[s[0]](s[1]);
    });
    return out;
  });
  var problems = payloads.map(function (p) {
    return H.validateCallPayload(p[0], p[1]).map(function (x) { return [x.field, x.message]; });
  });
  return {events: events, problems: problems};
})(%s, %s)
"""


def test_the_javascript_rules_match_the_python_rules(browser_netns: str) -> None:
    source = handler_js().decode()
    expression = JS_RUN % (json.dumps([steps for _, steps in SCENARIOS]), json.dumps(PAYLOADS))

    async def main() -> Any:
        async with await Chromium.launch(ChromiumOptions(netns=browser_netns)) as browser:
            page = await browser.new_page()
            await page.evaluate(source)
            result = await page.evaluate(expression)
            assert page.exceptions == []
            return result

    result = run_in_namespace(browser_netns, main, 60)
    for (name, steps), js in zip(SCENARIOS, result["events"], strict=True):
        assert js == python_events(steps), name
    for (event, payload), js in zip(PAYLOADS, result["problems"], strict=True):
        assert js == python_problems(event, payload), (event, payload)
    # the scenarios do cover every close reason
    reasons = {e[5] for name, steps in SCENARIOS for e in python_events(steps)}
    assert {"ended", "declined", "expired", "cancelled", "unknown"} <= reasons


def test_build_call_payload_names_every_bad_field_in_the_browser(browser_netns: str) -> None:
    async def main() -> Any:
        async with await Chromium.launch(ChromiumOptions(netns=browser_netns)) as browser:
            page = await browser.new_page()
            await page.evaluate(handler_js().decode())
            return await page.evaluate("""(function () {
              var H = window.CallopsCallHandler, call = {serviceId: "c#1", agentId: "a", mode: "VOICE_CALL"};
              var ok = H.buildCallPayload("cobrowseAccepted", call, {visitorName: "v", ssid: "s", svid: "t", cid: "c"});
              try { H.buildCallPayload("cobrowseOffered", {serviceId: "c#1", mode: "VOICE_CALL"},
                                       {visitorName: "", ssid: "s"}); return {ok: ok}; }
              catch (e) { return {ok: ok, name: e.name, fields: e.problems.map(function (p) { return p.field; })}; }
            })()""")

    got = run_in_namespace(browser_netns, main, 60)
    assert got["ok"] == {"serviceId": "c#1", "agentId": "a", "visitorName": "v", "mode": "VOICE_CALL",
                         "ssid": "s", "svid": "t", "cid": "c"}  # fmt: skip
    assert got["name"] == "PayloadError" and got["fields"] == ["agentId", "visitorName", "svid"]


def test_the_handler_test_page_passes_when_served_by_the_emulator(browser_netns: str) -> None:
    from callops.orchestrator.emulator.server import Emulator, EmulatorConfig

    async def main() -> Any:
        async with (
            Emulator(EmulatorConfig()) as emu,
            await Chromium.launch(ChromiumOptions(netns=browser_netns)) as browser,
        ):
            page = await browser.new_page()
            await page.navigate(f"{emu.base_url}/web/handler-tests.html")
            return await page.evaluate("window.testResults"), page.exceptions

    results, exceptions = run_in_namespace(browser_netns, main, 60)
    assert exceptions == []
    assert results["failed"] == [] and results["passed"] >= 10
