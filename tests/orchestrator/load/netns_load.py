"""Run inside a network namespace by test_netns_loss.py: a loopback coturn, an iptables rule that
drops a share of the datagrams sent to it, and a short ``callops load`` run; the report on stdout."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from callops.orchestrator.load.plan import LoadPlan
from callops.orchestrator.load.runner import LoadRun, run_load
from callops.secret import Secret
from callops.turn.coturn import start_loopback_coturn
from callops.turn.credentials import rest_credentials


def main() -> None:
    probability = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        secret = Secret(secrets.token_hex(16), source="test")
        relay = start_loopback_coturn(Path(tmp), secret=secret, extra=["allow-loopback-peers"], rfc5780=False)
        try:
            # datagrams from the load clients to the relay's listening port: the client -> relay leg
            subprocess.run(
                [
                    "iptables",
                    "-A",
                    "INPUT",
                    "-p",
                    "udp",
                    "--dport",
                    str(relay.port),
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    probability,
                    "-j",
                    "DROP",
                ],
                check=True,
            )
            creds = rest_credentials(secret, "load-test")
            plan = LoadPlan(turn=relay.turn_udp, calls=4, duration_s=3.0, workers=1)
            report = asyncio.run(
                asyncio.wait_for(
                    run_load(plan, LoadRun(creds.username, Secret(creds.credential, "test"))), 60
                )
            )
            print(report.model_dump_json())
        finally:
            relay.process.stop()


if __name__ == "__main__":
    main()
