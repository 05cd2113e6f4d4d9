"""Call scenarios as data: what each role does, and what the call must end with.

A scenario is a row, not a branch: the agent and consumer roles
(:mod:`callops.orchestrator.call.roles`) read it at the few points where calls differ -- how the
consumer answers the invitation, who ends the call and how, whether the page reloads mid-call,
whether the ICE servers are spoiled -- and the report compares the outcome with ``expected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from callops.errors import UsageError
from callops.orchestrator.call.report import SCENARIOS, Outcome

#: how the consumer answers the invitation: accept, decline, or not at all (only ``cobrowseOffered``)
Decision = Literal["accept", "decline", "wait"]
#: how the call ends after its media phase (accepted calls) or before it (unanswered ones):
#: ``agent``/``consumer`` hang up, ``agent-vanishes`` (socket and media gone without a hang-up),
#: ``cancel`` (the agent withdraws the invitation), ``expiry`` (the invitation times out),
#: ``decline`` (the consumer's answer), ``consumer-gives-up`` (after UNABLE_TO_CONNECT)
Ending = Literal["agent", "consumer", "agent-vanishes", "cancel", "expiry", "decline", "consumer-gives-up"]


@dataclass(frozen=True)
class Scenario:
    """One row of :data:`SCENARIO_TABLE`."""

    name: str
    decision: Decision
    ending: Ending
    expected: Outcome
    #: the consumer reloads the page once media flows (the call resumes, epoch 1)
    reload: bool = False
    #: relay-only with credentials the TURN server rejects (or an unreachable TURN server)
    spoil_ice: bool = False
    #: a sessionError the consumer must have raised for the call to pass
    required_error: str | None = None
    #: after the call closed unanswered, a late ``cobrowseAccepted`` must be refused
    late_accept_refused: bool = False

    @property
    def answered(self) -> bool:
        return self.decision == "accept"


SCENARIO_TABLE: dict[str, Scenario] = {
    row.name: row
    for row in (
        Scenario("accept", "accept", "agent", "connected"),
        Scenario("decline", "decline", "decline", "declined"),
        Scenario("cancel", "wait", "cancel", "cancelled", late_accept_refused=True),
        Scenario("expire", "wait", "expiry", "expired", late_accept_refused=True),
        Scenario("hangup-consumer", "accept", "consumer", "connected"),
        Scenario("hangup-agent", "accept", "agent", "connected"),
        Scenario(
            "agent-disconnect", "accept", "agent-vanishes", "connected", required_error="AGENT_DISCONNECTED"
        ),
        Scenario(
            "ice-fail",
            "accept",
            "consumer-gives-up",
            "failed",
            spoil_ice=True,
            required_error="UNABLE_TO_CONNECT",
        ),
        Scenario("resume", "accept", "agent", "connected", reload=True),
    )
}
assert tuple(SCENARIO_TABLE) == SCENARIOS, "report.SCENARIOS and the scenario table disagree"

#: what each scenario must end with for the call to count as ``ok``
EXPECTED_OUTCOME: dict[str, Outcome] = {name: row.expected for name, row in SCENARIO_TABLE.items()}


def scenario(name: str) -> Scenario:
    """The row of ``name``; UsageError naming the known scenarios otherwise."""
    try:
        return SCENARIO_TABLE[name]
    except KeyError:
        raise UsageError(f"unknown scenario {name!r}", hint=f"one of: {', '.join(SCENARIO_TABLE)}") from None


__all__ = ["EXPECTED_OUTCOME", "SCENARIO_TABLE", "Decision", "Ending", "Scenario", "scenario"]
