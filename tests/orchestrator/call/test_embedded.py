"""The embedded loopback coturn of ``callops call``: ports, start-up races, ownership."""

from __future__ import annotations

import os

import pytest

from callops.errors import EnvironmentProblem
from callops.orchestrator.call.embedded import EmbeddedTurn, relay_port_range, udp_port_owner_ok


def test_relay_ports_stay_above_the_ephemeral_range_when_there_is_room() -> None:
    assert relay_port_range(40000, (32768, 60999)) == (61000, 65535)
    low, high = relay_port_range(40000, (1024, 65000))  # no room: a window in the usual range
    assert 49152 <= low < high <= 65535


@pytest.mark.coturn
def test_the_started_relay_owns_its_listening_port(local_turn: EmbeddedTurn) -> None:
    assert local_turn.process is not None and local_turn.process.process is not None
    assert udp_port_owner_ok(local_turn.process.process.pid, local_turn.port)
    assert not udp_port_owner_ok(os.getpid(), local_turn.port)


@pytest.mark.coturn
def test_a_port_taken_by_another_relay_is_detected_not_mistaken_for_ours(local_turn: EmbeddedTurn) -> None:
    # the other relay answers the readiness check on that port: ownership tells them apart
    with pytest.raises(EnvironmentProblem, match="held by another process"):
        EmbeddedTurn(port=local_turn.port).start()


@pytest.mark.coturn
def test_a_chosen_port_taken_meanwhile_costs_a_retry_on_a_fresh_port(local_turn: EmbeddedTurn) -> None:
    turn = EmbeddedTurn()
    turn.port = local_turn.port  # as if another relay bound it between free_port() and start()
    with turn:
        assert turn.port != local_turn.port
        assert turn.process is not None and turn.process.process is not None
        assert udp_port_owner_ok(turn.process.process.pid, turn.port)
