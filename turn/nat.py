"""RFC 5780 NAT behaviour discovery: mapping and filtering, the asyncio adapter.

:func:`discover` runs the tests on fresh local UDP ports under one time budget and hands every
answer to the sans-I/O rules of :mod:`callops.turn.nat_behaviour`
(:func:`~callops.turn.nat_behaviour.nat_report`), which say what the answers prove -- including when
they prove nothing.

Documented choices (RFC 5780 leaves them open):

* Each filtering test runs on its own fresh local port that has sent only to the server's primary
  address, so an earlier test cannot have opened the NAT's filter for the alternate address.
* A missing answer to a CHANGE-REQUEST is only read as filtering when a *control* succeeded: the
  server answered from its alternate address in the mapping tests (so it can send from there). Without
  the control, or with no NAT in the path, the result is ``inconclusive``.
* A server without OTHER-ADDRESS in its Binding response does not support RFC 5780: the result says
  so, it is not a NAT type.
* OTHER-ADDRESS is followed only to an address of the same scope as the server
  (:func:`~callops.turn.nat_behaviour.alternate_refusal`): a loopback or private server may name
  loopback or private alternates, a public server only public ones; unspecified, multicast,
  broadcast and reserved addresses, another address family and port 0 are never followed.
  Otherwise a hostile public server could make callops send to this host's loopback or LAN. A
  refused alternate skips tests II and III and the result says why
  (:attr:`~callops.turn.nat_behaviour.Behaviour.SKIPPED`).
* Packets are bounded: five transactions (test I, mapping II and III, filtering II and III), each
  at most ``1 + RETRANSMISSIONS`` (5) packets -- 25 packets per discovery at most.
* An answer that is malformed, of the wrong kind or for another transaction is reported as such
  (``test_errors``), not read as "no answer".
"""

from __future__ import annotations

import asyncio
import logging
import time

from callops.errors import DeadlineExceeded
from callops.turn.nat_behaviour import AlternateTests, BindingAnswer, NatReport, alternate_to_test, nat_report
from callops.turn.stun import (
    CHANGE_IP,
    CHANGE_PORT,
    Address,
    StunUdpClient,
    binding_request,
    mapped_address,
)

log = logging.getLogger(__name__)


async def _binding(
    client: StunUdpClient,
    server: Address,
    *,
    change: int = 0,
    timeout: float,
    label: str,
) -> BindingAnswer:
    """The answer to one Binding request; silence is an empty answer, a wrong answer has ``error``."""
    try:
        response, source = await client.request(binding_request(change), server, timeout=timeout, label=label)
    except DeadlineExceeded as exc:
        log.debug("%s: %s", label, exc)
        return BindingAnswer()
    except Exception as exc:  # RemoteProtocolError, NetworkError: say what was wrong
        log.debug("%s: %s", label, exc)
        return BindingAnswer(error=str(exc))
    other = response.attributes.get("OTHER-ADDRESS") or response.attributes.get("CHANGED-ADDRESS")
    other_addr = (str(other[0]), int(other[1])) if other else None
    return BindingAnswer(mapped_address(response), other_addr, source)


async def discover(server: Address, *, timeout: float, label: str = "STUN") -> NatReport:
    """Run RFC 5780 tests against ``server`` (an IP address and port) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    family_any = "::" if ":" in server[0] else "0.0.0.0"
    sockets = [await StunUdpClient.open((family_any, 0)) for _ in range(3)]
    mapping_client, filter_both, filter_port = sockets
    try:
        # Test I on the mapping socket; it also names the alternate address.
        remaining = deadline - time.monotonic()
        first = await _binding(mapping_client, server, timeout=remaining / 2, label=f"{label} test I")
        local = (_source_ip_towards(server), mapping_client.address[1])
        alternate = None
        if (other := alternate_to_test(server, first)) is not None:
            remaining = max(0.001, deadline - time.monotonic())
            # Mapping tests II and III, and filtering tests II and III (each on a fresh port), at once.
            answers = await asyncio.gather(
                _binding(mapping_client, (other[0], server[1]), timeout=remaining, label=f"{label} test II"),
                _binding(mapping_client, other, timeout=remaining, label=f"{label} test III"),
                _binding(
                    filter_both,
                    server,
                    change=CHANGE_IP | CHANGE_PORT,
                    timeout=remaining,
                    label=f"{label} F-II",
                ),
                _binding(filter_port, server, change=CHANGE_PORT, timeout=remaining, label=f"{label} F-III"),
            )
            alternate = AlternateTests(*answers)
        return nat_report(server, local, first, alternate)
    finally:
        for client in sockets:
            client.close()


def _source_ip_towards(server: Address) -> str:
    """The local IP the kernel picks to reach ``server`` (a UDP ``connect`` sends nothing)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(server)
        return str(probe.getsockname()[0])


__all__ = ["discover"]
