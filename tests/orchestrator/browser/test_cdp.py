"""The DevTools pipe framing: NUL-delimited JSON, answers matched by id, events with sessions."""

from __future__ import annotations

import json

import pytest

from callops.errors import RemoteProtocolError
from callops.orchestrator.browser.cdp import CdpConnection, CommandResult, Event


def test_commands_are_nul_terminated_json_with_increasing_ids() -> None:
    cdp = CdpConnection()
    first = cdp.send_command("Browser.getVersion")
    second = cdp.send_command("Runtime.evaluate", {"expression": "1"}, session_id="S")
    data = cdp.data_to_send()
    assert data.endswith(b"\0") and data.count(b"\0") == 2
    one, two = (json.loads(part) for part in data.split(b"\0")[:2])
    assert (first, second) == (1, 2)
    assert one == {"id": 1, "method": "Browser.getVersion", "params": {}}
    assert two["sessionId"] == "S" and two["params"] == {"expression": "1"}
    assert cdp.data_to_send() == b""


def test_messages_split_across_reads_are_reassembled() -> None:
    cdp = CdpConnection()
    wire = (
        b'{"id":1,"result":{"product":"HeadlessChrome/1"}}\0'
        b'{"method":"Page.loadEventFired","params":{},"sessionId":"A"}\0'
    )
    got = cdp.receive_data(wire[:10]) + cdp.receive_data(wire[10:60]) + cdp.receive_data(wire[60:])
    assert got == [CommandResult(1, {"product": "HeadlessChrome/1"}), Event("Page.loadEventFired", {}, "A")]


def test_an_error_answer_keeps_the_error() -> None:
    (answer,) = CdpConnection().receive_data(b'{"id":3,"error":{"code":-32000,"message":"nope"}}\0')
    assert isinstance(answer, CommandResult) and answer.error == {"code": -32000, "message": "nope"}


def test_invalid_json_is_a_remote_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        CdpConnection().receive_data(b"{nope\0")
