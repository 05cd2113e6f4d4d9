"""STUN over UDP, TCP and TLS: the asyncio adapter around aioice's STUN codec.

aioice provides the message codec (:mod:`aioice.stun`) and the retransmission timer
(``aioice.stun.Transaction``); this module adds what probes need on top: one UDP socket that can
run transactions with *any* server address (RFC 5780 tests send from one local port to several
server addresses), a one-shot STUN exchange over a TCP or TLS stream, name resolution under a time
budget, and translation of OSError/ssl/aioice errors into :mod:`callops.errors` with messages that
name the server ("STUN/TCP 127.0.0.1:3478: connection refused").

Every function takes an explicit ``timeout``; aioice's own retransmission schedule (up to ~30 s)
never decides how long a probe waits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import functools
import ipaddress
import logging
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast, overload

from aioice import stun

from callops.errors import CallopsError, DeadlineExceeded, NetworkError, RemoteProtocolError

log = logging.getLogger(__name__)

T = TypeVar("T")

Address = tuple[str, int]

# RFC 5780 section 7 and RFC 6156 attributes that aioice's table lacks. aioice's codec is table
# driven, so the missing entries are registered once here (they only add parsing/packing).
_EXTRA_ATTRIBUTES: list[stun.AttributeEntry] = [
    (0x0017, "REQUESTED-ADDRESS-FAMILY", stun.pack_unsigned, stun.unpack_unsigned),
    (0x0026, "PADDING", stun.pack_bytes, stun.unpack_bytes),
    (0x0027, "RESPONSE-PORT", stun.pack_unsigned, stun.unpack_unsigned),
]
for _entry in _EXTRA_ATTRIBUTES:
    stun.ATTRIBUTES_BY_TYPE.setdefault(_entry[0], _entry)
    stun.ATTRIBUTES_BY_NAME.setdefault(_entry[1], _entry)


def _strict(unpack: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``unpack`` raising ``ValueError`` for a value of the wrong length, as the rest of aioice's
    codec does. aioice's fixed-size unpackers raise ``struct.error`` instead, which its own
    receivers (ICE, TURN) do not catch: asyncio would print the traceback of every such packet."""
    if getattr(unpack, "__wrapped__", None) is not None:  # wrapped by an earlier import already
        return unpack

    @functools.wraps(unpack)
    def strict(data: bytes) -> Any:
        try:
            return unpack(data)
        except struct.error:
            raise ValueError("an attribute of the wrong length") from None

    return strict


# The codec is table driven, so this is one pass over the table: every fixed-size unpacker (not the
# XOR address ones, which aioice recognises by identity and which raise ValueError already).
for _type, (_, _name, _pack, _unpack) in list(stun.ATTRIBUTES_BY_TYPE.items()):
    if _unpack in (stun.unpack_unsigned, stun.unpack_unsigned_short, stun.unpack_unsigned_64):
        _hardened: stun.AttributeEntry = (_type, _name, _pack, _strict(_unpack))
        stun.ATTRIBUTES_BY_TYPE[_type] = _hardened
        stun.ATTRIBUTES_BY_NAME[_name] = _hardened

#: CHANGE-REQUEST flags (RFC 5780 section 7.2)
CHANGE_IP = 0x04
CHANGE_PORT = 0x02

#: REQUESTED-ADDRESS-FAMILY values (RFC 6156 section 4.1.1), in the first byte
FAMILY_IPV4 = 0x01000000
FAMILY_IPV6 = 0x02000000
_COOKIE = struct.pack("!I", stun.COOKIE)


#: Retransmissions of one request (RFC 8489 section 6.2.1 allows Rc = 7 sends): at most
#: ``1 + RETRANSMISSIONS`` packets per transaction, whatever the timeout.
RETRANSMISSIONS = 4
#: reasons of answers that matched no transaction, kept per socket (the rest are only counted)
MAX_STRAYS = 16


class MalformedStun(ValueError):
    """Bytes that are not a STUN message aioice can decode; the text says what is wrong."""


#: aioice's messages for address attributes, in an operator's words
_ADDRESS_PROBLEMS = {
    "STUN address has unknown protocol": "an address attribute with an unknown address family",
    "STUN address has invalid length for IPv4": "an IPv4 address attribute of the wrong length",
    "STUN address has invalid length for IPv6": "an IPv6 address attribute of the wrong length",
    "STUN address length is less than 4 bytes": "a truncated address attribute",
}


def parse_stun(data: bytes) -> stun.Message:
    """aioice's :func:`~aioice.stun.parse_message`, with every failure a :class:`MalformedStun`.

    aioice raises ``ValueError`` for most malformed input but ``struct.error`` for attributes of
    the wrong length (``LIFETIME`` of 2 bytes) and ``UnicodeDecodeError`` for bad text; all of them
    mean the same to us: the peer sent something that is not a valid STUN message.
    """
    try:
        return stun.parse_message(bytes(data))
    except (ValueError, struct.error, IndexError, KeyError, TypeError) as exc:
        text = str(exc)
        if isinstance(exc, struct.error):
            text = "an attribute of the wrong length"
        elif isinstance(exc, UnicodeDecodeError):
            text = "a text attribute that is not UTF-8"
        raise MalformedStun(_ADDRESS_PROBLEMS.get(text, text)) from None


def printable(text: object, limit: int = 120) -> str:
    """``text`` from a peer, safe to print: control characters replaced, at most ``limit`` characters."""
    raw = str(text)
    clean = "".join(ch if ch.isprintable() else "?" for ch in raw[:limit])
    return clean + ("..." if len(raw) > limit else "")


def error_code(response: stun.Message) -> tuple[int, str]:
    """``(code, reason)`` of an error response, the reason safe to print."""
    value = response.attributes.get("ERROR-CODE")
    if not isinstance(value, tuple) or len(value) != 2:
        return 0, "(no ERROR-CODE)"
    return int(value[0]), printable(str(value[1]).rstrip("\x00").strip(), 80)


def _describe(message: stun.Message) -> str:
    return f"{message.message_method.name} {message.message_class.name}"


def binding_request(change: int = 0) -> stun.Message:
    """A Binding request, with CHANGE-REQUEST when ``change`` is non-zero (RFC 5780 section 4.4)."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    if change:
        request.attributes["CHANGE-REQUEST"] = change
    return request


def mapped_address(response: stun.Message) -> Address | None:
    """XOR-MAPPED-ADDRESS, or the classic MAPPED-ADDRESS of RFC 3489 servers."""
    addr = response.attributes.get("XOR-MAPPED-ADDRESS") or response.attributes.get("MAPPED-ADDRESS")
    return (str(addr[0]), int(addr[1])) if addr else None


def transport_error(label: str, exc: BaseException) -> CallopsError:
    """A network engineer's sentence for an OSError/ssl/aioice failure talking to ``label``."""
    if isinstance(exc, CallopsError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        return NetworkError(
            f"{label}: TLS certificate rejected: {reason}",
            hint="give the server's CA with --ca-file, or check the host name in the URI",
        )
    if isinstance(exc, ssl.SSLError):
        return NetworkError(f"{label}: TLS handshake failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | stun.TransactionTimeout):
        return DeadlineExceeded(f"{label}: no answer", hint="is the server up, and is the port open?")
    if (isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED) and (
        "/UDP " in label
    ):
        return NetworkError(
            f"{label}: port unreachable (ICMP)",
            hint="nothing listens on that UDP port, or a firewall rejects it",
        )
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return NetworkError(
            f"{label}: connection refused", hint="nothing listens there, or a firewall rejects it"
        )
    if isinstance(exc, ConnectionResetError):
        return NetworkError(f"{label}: connection reset by the server")
    if isinstance(exc, socket.gaierror):
        return NetworkError(f"{label}: host name does not resolve ({exc.strerror})")
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0, "")
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return NetworkError(f"{label}: network unreachable ({code})", hint="check routes and firewalls")
        return NetworkError(f"{label}: {exc.strerror or exc} ({code or exc.__class__.__name__})")
    if isinstance(exc, EOFError | asyncio.IncompleteReadError):
        return NetworkError(f"{label}: the server closed the connection")
    return NetworkError(f"{label}: {exc.__class__.__name__}: {exc}")


async def resolve(host: str, port: int, *, timeout: float, label: str, family: int = 0) -> Address:
    """``(ip, port)`` for ``host`` (an IP literal needs no lookup); lookups are bounded by ``timeout``."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return str(ip), port
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise transport_error(label, exc) from None
    if not infos:
        raise NetworkError(f"{label}: host name does not resolve")
    sockaddr = infos[0][4]
    return str(sockaddr[0]), int(sockaddr[1])


class DatagramEndpoint(asyncio.DatagramProtocol):
    """An asyncio UDP protocol that keeps its transport and knows its own address."""

    transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> Address:
        """The local address of the socket."""
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)


class StunUdpClient(DatagramEndpoint):
    """One local UDP socket running STUN transactions with any server address.

    Responses are matched by transaction id, so one socket serves several servers and the RFC 5780
    tests. Retransmissions follow aioice's ``Transaction`` (RTO 500 ms, doubling) but the caller's
    ``timeout`` ends each transaction.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transactions: dict[bytes, stun.Transaction] = {}
        #: per transaction: set when its answer arrives malformed or of the wrong kind
        self.problems: dict[bytes, asyncio.Future[BaseException]] = {}
        #: methods of the pending requests, to check that an answer answers what was asked
        self.methods: dict[bytes, stun.Method] = {}
        #: the latest answers that matched no pending transaction: ``(number, source, what was wrong)``
        self.strays: collections.deque[tuple[int, Address, str]] = collections.deque(maxlen=MAX_STRAYS)
        self.stray_count = 0
        self.closed = loop.create_future()
        #: set by an ICMP error on a connected socket (port unreachable): fails pending requests at once
        self.failure: asyncio.Future[BaseException] = loop.create_future()

    @classmethod
    async def open(cls, local: Address = ("0.0.0.0", 0), remote: Address | None = None) -> StunUdpClient:
        """A socket bound to ``local``; with ``remote`` it is connected, so ICMP errors are reported."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in (remote or local)[0] else socket.AF_INET
        try:
            if remote is not None:
                _, protocol = await loop.create_datagram_endpoint(cls, remote_addr=remote, family=family)
            else:
                _, protocol = await loop.create_datagram_endpoint(cls, local_addr=local, family=family)
        except OSError as exc:
            raise transport_error(f"local UDP {local[0]}:{local[1]}", exc) from None
        return protocol

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        source = (str(addr[0]), int(addr[1]))
        txid = bytes(data[8:20]) if len(data) >= 20 else b""
        transaction = self.transactions.get(txid)
        try:
            message = parse_stun(data)
        except MalformedStun as exc:
            if transaction is not None:
                self._problem(txid, f"malformed answer from {format_address(source)}: {exc}")
            else:
                self._stray(source, f"a malformed packet ({exc})")
            return
        if message.message_class not in (stun.Class.RESPONSE, stun.Class.ERROR):
            self._stray(source, f"a STUN {_describe(message)} instead of an answer")
        elif transaction is None:
            self._stray(source, "an answer with a wrong transaction id")
        elif message.message_method != self.methods.get(txid, message.message_method):
            kind = _describe(message)
            self._problem(txid, f"answer of the wrong kind from {format_address(source)}: {kind}")
        else:
            transaction.response_received(message, source)

    def _problem(self, txid: bytes, text: str) -> None:
        problem = self.problems.get(txid)
        if problem is not None and not problem.done():
            problem.set_result(RemoteProtocolError(text))

    def _stray(self, source: Address, text: str) -> None:
        log.debug("STUN/UDP: ignored %s from %s", text, format_address(source))
        self.stray_count += 1
        self.strays.append((self.stray_count, source, text))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: the server's port is closed.
        log.debug("UDP error %s", exc)
        if not self.failure.done():
            self.failure.set_result(exc)

    def send_stun(self, message: stun.Message, addr: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.transport.get_extra_info("peername") is not None:
                self.transport.sendto(bytes(message))
            else:
                self.transport.sendto(bytes(message), addr)

    async def request(
        self,
        message: stun.Message,
        server: Address,
        *,
        timeout: float,
        label: str,
    ) -> tuple[stun.Message, Address]:
        """Run one transaction (at most ``1 + RETRANSMISSIONS`` packets).

        :class:`RemoteProtocolError` for an error response, a malformed answer or an answer of the
        wrong kind; at ``timeout`` without a valid answer, a :class:`RemoteProtocolError` naming the
        invalid answers that came instead (wrong transaction id, malformed), else
        :class:`DeadlineExceeded` ("no answer").
        """
        txid = message.transaction_id
        transaction = stun.Transaction(message, server, self, retransmissions=RETRANSMISSIONS)
        problem: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self.transactions[txid] = transaction
        self.problems[txid] = problem
        self.methods[txid] = message.message_method
        strays_before = self.stray_count
        try:
            return await until_failure(transaction.run(), (self.failure, problem), timeout)
        except stun.TransactionFailed as exc:
            code, reason = error_code(exc.response)
            raise RemoteProtocolError(f"{label}: STUN error {code} {reason}") from None
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{label}: {exc.message}") from None
        except (OSError, TimeoutError, stun.TransactionTimeout) as exc:
            if isinstance(exc, TimeoutError | stun.TransactionTimeout) and self.stray_count > strays_before:
                raise self._no_valid_answer(label, server, timeout, strays_before) from None
            raise transport_error(label, exc) from None
        finally:
            self.transactions.pop(txid, None)
            self.problems.pop(txid, None)
            self.methods.pop(txid, None)

    def _no_valid_answer(self, label: str, server: Address, timeout: float, since: int) -> CallopsError:
        count = self.stray_count - since
        reasons = sorted({text for number, _, text in self.strays if number > since}) or ["invalid answers"]
        return RemoteProtocolError(
            f"{label}: no valid answer within {timeout:.1f} s, but {count} invalid one(s): "
            + "; ".join(reasons),
            hint="the server (or something in the path) answers STUN wrongly",
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def until_failure(
    awaitable: Awaitable[T],
    failure: asyncio.Future[BaseException] | tuple[asyncio.Future[BaseException], ...],
    timeout: float,
) -> T:
    """``awaitable``'s result, unless a ``failure`` future resolves first (its exception is raised)
    or ``timeout`` passes (:class:`TimeoutError`). An ICMP error, a closed stream or a malformed
    answer thus ends a transaction at once, not at its timeout."""
    failures = failure if isinstance(failure, tuple) else (failure,)
    task = asyncio.ensure_future(awaitable)
    waiting: set[asyncio.Future[Any]] = {task, *failures}
    try:
        done, _ = await asyncio.wait(
            waiting, timeout=max(timeout, 0.001), return_when=asyncio.FIRST_COMPLETED
        )
    except BaseException:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    for future in failures:
        if future.done():
            raise future.result()
    raise TimeoutError


async def stream_exchange(
    server: Address,
    message: stun.Message,
    *,
    timeout: float,
    label: str,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> tuple[stun.Message, float, float]:
    """One STUN request over a fresh TCP (or TLS) connection: ``(response, connect_s, rtt_s)``."""
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                server[0],
                server[1],
                ssl=ssl_context,
                server_hostname=server_hostname if ssl_context is not None else None,
            )
            connected = time.monotonic()
            writer.write(bytes(message))
            header = await reader.readexactly(20)
            if header[0] & 0xC0 or header[4:8] != _COOKIE:
                raise RemoteProtocolError(
                    f"{label}: not a STUN answer (no magic cookie: {printable(header[:8])})",
                    hint="is another protocol listening on that port?",
                )
            (length,) = struct.unpack("!H", header[2:4])
            body = await reader.readexactly(length)
            answered = time.monotonic()
    except (OSError, TimeoutError, EOFError, asyncio.IncompleteReadError) as exc:
        raise transport_error(label, exc) from None
    finally:
        if writer is not None:
            # Abort: a TLS close_notify exchange is not worth waiting for after the answer.
            writer.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.2)
    try:
        response = parse_stun(header + body)
    except MalformedStun as exc:
        raise RemoteProtocolError(f"{label}: malformed STUN answer: {exc}") from None
    if response.transaction_id != message.transaction_id:
        raise RemoteProtocolError(f"{label}: STUN answer with a wrong transaction id")
    if response.message_class == stun.Class.ERROR:
        code, reason = error_code(response)
        raise RemoteProtocolError(f"{label}: STUN error {code} {reason}")
    if response.message_class != stun.Class.RESPONSE or response.message_method != message.message_method:
        raise RemoteProtocolError(
            f"{label}: a STUN {_describe(response)} instead of a {message.message_method.name} response"
        )
    return response, connected - started, answered - connected


@overload
def format_address(addr: Address) -> str: ...
@overload
def format_address(addr: Address | None) -> str | None: ...
def format_address(addr: Address | None) -> str | None:
    """``1.2.3.4:5`` or ``[::1]:5`` (``None`` stays ``None``: an address nobody reported)."""
    if addr is None:
        return None
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


__all__ = [
    "CHANGE_IP",
    "CHANGE_PORT",
    "FAMILY_IPV4",
    "FAMILY_IPV6",
    "RETRANSMISSIONS",
    "Address",
    "DatagramEndpoint",
    "MalformedStun",
    "StunUdpClient",
    "binding_request",
    "error_code",
    "format_address",
    "mapped_address",
    "parse_stun",
    "printable",
    "resolve",
    "stream_exchange",
    "transport_error",
    "until_failure",
]
