"""TURN allocations over UDP, TCP and TLS, on aioice's TURN client protocols.

aioice's ``TurnClientUdpProtocol``/``TurnClientTcpProtocol`` run the transactions, including the
401 round of the long-term credential mechanism (RFC 8489 section 9.2) and 438 stale nonces. This
module adds what probes and the audit need: an Allocate that can ask for an IPv6 relay (RFC 6156),
CreatePermission on its own (the audit's question), Send/Data indications (RFC 8656 sections 11.3
and 11.4) with received data handed to a callback, explicit timeouts on every step, and TURN error
codes translated into sentences with the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, Literal

from aioice import stun, turn

from callops.errors import AuthenticationError, CallopsError, ProtocolError, RemoteProtocolError
from callops.turn.credentials import rest_expiry
from callops.turn.stun import (
    FAMILY_IPV4,
    FAMILY_IPV6,
    Address,
    MalformedStun,
    error_code,
    parse_stun,
    resolve,
    transport_error,
    until_failure,
)
from callops.turn.uri import ServerUri

log = logging.getLogger(__name__)

#: TURN/STUN error codes and what they mean to an operator (RFC 8489 section 14.8, RFC 8656 section 18).
ERROR_MEANINGS: dict[int, str] = {
    300: "try alternate server",
    400: "bad request -- the server could not parse the request",
    401: "credentials rejected -- check the shared secret and clock skew",
    403: "forbidden -- the server refuses this request or peer address",
    420: "unknown attribute",
    437: "allocation mismatch -- an allocation already exists for this 5-tuple",
    438: "stale nonce",
    440: "address family not supported by the server's relay",
    441: "wrong credentials -- the username differs from the one that created the allocation",
    442: "unsupported transport protocol",
    443: "peer address family mismatch -- the peer is not in the relay's address family",
    486: "allocation quota reached for this user",
    500: "server error",
    508: "insufficient capacity -- the server has no relay ports left",
}

PeerHandler = Callable[[bytes, Address], None]


class TurnRequestFailed(ProtocolError):
    """The TURN server answered a request with an error response."""

    def __init__(self, label: str, method: str, code: int, reason: str, *, hint: str | None = None) -> None:
        self.code = code
        self.reason = reason.rstrip("\x00").strip()
        meaning = ERROR_MEANINGS.get(code, reason or "error")
        super().__init__(f"{label}: {method} failed: {code}: {meaning}", hint=hint)


class TurnAuthenticationFailed(AuthenticationError):
    """401: the server refused the credentials."""

    code = 401


def describe_failure(
    label: str, method: str, exc: BaseException, username: str | None, now: float
) -> CallopsError:
    """Translate an aioice/OSError failure of ``method`` into a callops error naming the fix."""
    if isinstance(exc, stun.TransactionFailed):
        code, reason = error_code(exc.response)
        if code == 401:
            expiry = rest_expiry(username or "")
            if expiry is not None and expiry <= now:
                return TurnAuthenticationFailed(
                    f"{label}: 401: credentials expired {int(now - expiry)} s ago (username {username!r})",
                    hint="generate fresh ones with 'callops turn creds'",
                )
            return TurnAuthenticationFailed(f"{label}: 401: {ERROR_MEANINGS[401]}")
        return TurnRequestFailed(label, method, int(code), str(reason))
    return transport_error(label, exc)


class _Receiving:
    """Hands Data indications (RFC 8656 section 11.4) to the owning :class:`Allocation`, and turns
    ICMP errors and closed streams into :attr:`failure` so that pending requests end at once."""

    on_data: PeerHandler | None = None
    failure: asyncio.Future[BaseException]
    #: the server's label in errors (set by :class:`Allocation`)
    label: str = "TURN"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.failure = asyncio.get_running_loop().create_future()
        super().connection_made(transport)  # type: ignore[misc]

    def error_received(self, exc: Exception) -> None:
        if not self.failure.done():
            self.failure.set_result(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.failure.done():
            self.failure.set_result(exc or ConnectionResetError("the server closed the connection"))
        super().connection_lost(exc)  # type: ignore[misc]

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        raw = bytes(data) if isinstance(data, bytes | bytearray) else data.encode()
        if raw[:1] and raw[0] < 0x40:
            # Parsed here with every failure caught: aioice's own parser lets struct.error escape,
            # which asyncio would print as a traceback. A malformed answer to a pending request
            # fails it at once, naming the problem; other malformed packets are dropped.
            try:
                message = parse_stun(raw)
            except MalformedStun as exc:
                if raw[8:20] in getattr(self, "transactions", {}) and not self.failure.done():
                    self.failure.set_result(RemoteProtocolError(f"{self.label}: malformed answer: {exc}"))
                log.debug("%s: dropped a malformed STUN packet: %s", self.label, exc)
                return
            if (
                message.message_method == stun.Method.DATA
                and message.message_class == stun.Class.INDICATION
                and "DATA" in message.attributes
                and "XOR-PEER-ADDRESS" in message.attributes
            ):
                if self.on_data is not None:
                    peer = message.attributes["XOR-PEER-ADDRESS"]
                    self.on_data(message.attributes["DATA"], (str(peer[0]), int(peer[1])))
                return
        super().datagram_received(data, addr)  # type: ignore[misc]


class _UdpProtocol(_Receiving, turn.TurnClientUdpProtocol):
    pass


class _TcpProtocol(_Receiving, turn.TurnClientTcpProtocol):
    pass


class Allocation:
    """One TURN allocation (RFC 8656 section 7) held by this process."""

    def __init__(self, uri: ServerUri, protocol: Any, server: Address, username: str | None) -> None:
        self.uri = uri
        self.label = uri.label
        self.server = server
        self.username = username
        self._protocol = protocol
        #: relayed transport address (XOR-RELAYED-ADDRESS)
        self.relayed: Address | None = None
        #: server-reflexive address of this client (XOR-MAPPED-ADDRESS)
        self.mapped: Address | None = None
        self.lifetime: int | None = None
        #: time the Allocate took, 401 round included, in milliseconds
        self.allocate_ms: float | None = None
        self.state = "new"

    def _set_state(self, state: str) -> None:
        log.debug("%s allocation %s -> %s", self.label, self.state, state)
        self.state = state

    @classmethod
    async def open(
        cls,
        uri: ServerUri,
        username: str | None,
        password: str | None,
        *,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        family: Literal[4, 6] = 4,
        lifetime: int = 600,
    ) -> Allocation:
        """Connect to ``uri`` and allocate a UDP relay, all within ``timeout`` seconds."""
        if not uri.is_turn:
            raise CallopsError(f"{uri} is not a TURN URI", hint="use turn: or turns:")
        deadline = time.monotonic() + timeout
        if uri.secure and ssl_context is None:
            from callops.turn.tls import client_context

            ssl_context = client_context()
        server = await resolve(uri.host, uri.port, timeout=timeout, label=uri.label)
        loop = asyncio.get_running_loop()
        remaining = max(0.001, deadline - time.monotonic())
        protocol: Any
        try:
            if uri.transport == "tcp":
                factory_tcp = lambda: _TcpProtocol(  # noqa: E731
                    server, username=username, password=password, lifetime=lifetime, channel_refresh_time=500
                )
                _, protocol = await asyncio.wait_for(
                    loop.create_connection(
                        factory_tcp,
                        host=server[0],
                        port=server[1],
                        ssl=ssl_context if uri.secure else None,
                        server_hostname=uri.host if uri.secure else None,
                    ),
                    remaining,
                )
            else:
                factory_udp = lambda: _UdpProtocol(  # noqa: E731
                    server, username=username, password=password, lifetime=lifetime, channel_refresh_time=500
                )
                _, protocol = await loop.create_datagram_endpoint(factory_udp, remote_addr=server)
        except (OSError, TimeoutError) as exc:
            raise transport_error(uri.label, exc) from None
        protocol.label = uri.label
        allocation = cls(uri, protocol, server, username)
        try:
            await allocation._allocate(deadline, family, lifetime)
        except CallopsError:
            await allocation.aclose(timeout=0.2)
            raise
        except BaseException:
            allocation.close()
            raise
        return allocation

    async def _allocate(self, deadline: float, family: Literal[4, 6], lifetime: int) -> None:
        request = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
        request.attributes["LIFETIME"] = lifetime
        request.attributes["REQUESTED-TRANSPORT"] = turn.UDP_TRANSPORT
        if family == 6:
            request.attributes["REQUESTED-ADDRESS-FAMILY"] = FAMILY_IPV6 if family == 6 else FAMILY_IPV4
        self._set_state("allocating")
        started = time.monotonic()
        response = await self._request(request, "Allocate", deadline)
        self.allocate_ms = (time.monotonic() - started) * 1000
        for name in ("XOR-RELAYED-ADDRESS", "XOR-MAPPED-ADDRESS", "LIFETIME"):
            if name not in response.attributes:
                raise ProtocolError(f"{self.label}: Allocate success response lacks {name}")
        relayed = response.attributes["XOR-RELAYED-ADDRESS"]
        mapped = response.attributes["XOR-MAPPED-ADDRESS"]
        self.relayed = (str(relayed[0]), int(relayed[1]))
        self.mapped = (str(mapped[0]), int(mapped[1]))
        self.lifetime = int(response.attributes["LIFETIME"])
        self._set_state("allocated")

    async def _request(self, request: stun.Message, method: str, deadline: float) -> stun.Message:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise transport_error(self.label, TimeoutError())
        try:
            answer: tuple[stun.Message, Address] = await until_failure(
                self._protocol.request_with_retry(request), self._protocol.failure, remaining
            )
        except (stun.TransactionError, OSError, TimeoutError, ConnectionError) as exc:
            raise describe_failure(self.label, method, exc, self.username, time.time()) from None
        return answer[0]

    async def create_permission(self, peer_ip: str, *, timeout: float) -> None:
        """CreatePermission for ``peer_ip`` (RFC 8656 section 9); :class:`TurnRequestFailed` on refusal."""
        request = stun.Message(message_method=stun.Method.CREATE_PERMISSION, message_class=stun.Class.REQUEST)
        request.attributes["XOR-PEER-ADDRESS"] = (peer_ip, 0)
        await self._request(request, f"CreatePermission {peer_ip}", time.monotonic() + timeout)

    def send(self, data: bytes, peer: Address) -> None:
        """A Send indication (RFC 8656 section 11.3); the server drops it without a permission."""
        indication = stun.Message(message_method=stun.Method.SEND, message_class=stun.Class.INDICATION)
        indication.attributes["XOR-PEER-ADDRESS"] = peer
        indication.attributes["DATA"] = data
        self._protocol.send_stun(indication, self.server)

    def on_data(self, handler: PeerHandler | None) -> None:
        """Call ``handler(data, peer)`` for each Data indication."""
        self._protocol.on_data = handler

    async def release(self, *, timeout: float) -> None:
        """Refresh with LIFETIME 0 (RFC 8656 section 7.2), bounded by ``timeout``; then close."""
        deadline = time.monotonic() + timeout
        if self.state == "allocated":
            request = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
            request.attributes["LIFETIME"] = 0
            with contextlib.suppress(CallopsError):
                await self._request(request, "Refresh", deadline)
            self._set_state("released")
        await self.aclose(timeout=max(0.05, deadline - time.monotonic()))

    def close(self) -> None:
        """Drop the connection to the server at once (the allocation then expires on the server).

        Streams are aborted, not shut down: a TLS close_notify exchange could outlive the probe,
        and the allocation is already released or abandoned.
        """
        transport = getattr(self._protocol, "transport", None)
        if transport is not None and not transport.is_closing():
            if isinstance(transport, asyncio.DatagramTransport) or self.uri.transport == "udp":
                transport.close()
            else:
                transport.abort()
        if self.state not in ("released", "closed"):
            self._set_state("closed")

    async def aclose(self, *, timeout: float = 0.5) -> None:
        """:meth:`close`, then wait (at most ``timeout``) until the socket is really closed."""
        self.close()
        failure = getattr(self._protocol, "failure", None)
        if failure is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(failure), timeout)

    async def __aenter__(self) -> Allocation:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = [
    "ERROR_MEANINGS",
    "Allocation",
    "PeerHandler",
    "TurnAuthenticationFailed",
    "TurnRequestFailed",
    "describe_failure",
]
