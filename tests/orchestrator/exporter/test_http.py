"""The exporter's HTTP adapter over the shared h11 codec: keep-alive cycles, HEAD, refusals, idle time.

The codec (``orchestrator/emulator/http11.py``) is the emulator's too; these tests pin what the
exporter gets from it on a real loopback socket.
"""

from __future__ import annotations

import asyncio

from callops.orchestrator.emulator.http11 import HttpServerConnection
from callops.orchestrator.exporter.exporter_config import ExporterSettings
from callops.orchestrator.exporter.http import HttpServer
from callops.orchestrator.exporter.service import Exporter
from callops.testing import run_bounded


async def _exchange(data: bytes, *, idle_timeout: float = 5.0) -> bytes:
    """Send ``data`` on one connection and read until the exporter closes it."""
    server = HttpServer(Exporter(ExporterSettings(), env={}), idle_timeout=idle_timeout)
    _, port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer
    finally:
        await server.close()


def test_pipelined_requests_are_answered_in_order_and_head_has_no_body() -> None:
    answer = run_bounded(
        _exchange(
            b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            idle_timeout=5.0,
        ),
        20,
    )
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Server: callops-exporter" in head
    assert b"Content-Length: " in head and b"Connection: close" not in head
    # no body after the HEAD answer: the next bytes are the next answer's status line
    assert rest.startswith(b"HTTP/1.1 404 ")
    assert rest.count(b"HTTP/1.1 404 ") == 2
    assert rest.endswith(b"not found: the exporter serves /, /probe and /metrics\n")


def test_a_request_begun_and_not_finished_in_time_gets_408_an_idle_one_is_just_closed() -> None:
    partial = run_bounded(_exchange(b"GET /metr", idle_timeout=0.3), 20)
    assert partial.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in partial and partial.endswith(b"request not received in time\n")
    assert run_bounded(_exchange(b"", idle_timeout=0.3), 20) == b""


def test_a_post_without_a_length_and_an_oversized_body_are_refused_with_the_reason() -> None:
    no_length = run_bounded(_exchange(b"POST /probe HTTP/1.1\r\nHost: x\r\n\r\n"), 20)
    assert no_length.startswith(b"HTTP/1.1 411 ") and no_length.endswith(b"Content-Length is required\n")
    # refused on its declared length, before a byte of the body is read (none is sent: unread bytes
    # would turn the server's close into a reset that can overtake the answer)
    big = run_bounded(_exchange(b"POST /probe HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n"), 20)
    assert big.startswith(b"HTTP/1.1 413 ") and b"exceeds the 65536-byte limit" in big


def test_the_codec_starts_a_new_cycle_with_the_pipelined_bytes_it_already_has() -> None:
    http = HttpServerConnection()
    http.receive_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HT")
    first = http.next_request()
    assert first is not None and first.path == "/a"
    http.respond_content(200, b"ok", "text/plain", keep_alive=True)
    assert http.next_cycle()
    assert http.started  # the second request has begun: a timeout now is a 408
    assert http.next_request() is None
    http.receive_data(b"TP/1.1\r\nHost: x\r\n\r\n")
    second = http.next_request()
    assert second is not None and second.path == "/b"
    http.respond_content(200, b"ok", "text/plain")  # Connection: close
    assert not http.next_cycle()
