"""Consumer start-up: how long discovery and signup add before InitConnection's 200.

Against the in-process emulator on loopback, ``RUNS`` sequential consumers each, median and p95:

* ``minted`` (the baseline: the path before CSDS/IDP): a JWT minted locally, connect;
* ``discovered``: a fresh ``DomainDiscovery`` (all-services CSDS request), IDP signup, connect --
  what one ``callops consumer listen --account A --csds URL`` does;
* ``cached``: the run's discovery cache already holds the account: IDP signup, connect --
  what each further consumer of a ``callops smoke`` run does;
* ``renewal``: a consumer whose JWT is rejected at InitConnection (4401), renewed by a signup,
  connected -- the cost of one renewal.

Run: ``python -m bench.consumer_startup [RUNS]`` from the repository root. Loopback only.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

from bench._common import median, percentile, write_result
from callops.consumer.client import ConsumerClient
from callops.consumer.discovery import DomainDiscovery
from callops.consumer.identity import SignupIdentity
from callops.orchestrator.emulator import Emulator, EmulatorConfig, mint_jwt
from callops.secret import Secret

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
ACCOUNT = "bench-account"


async def timed(step: Callable[[], Awaitable[None]]) -> dict[str, float]:
    samples: list[float] = []
    await step()  # warm-up (imports, first connection)
    for _ in range(RUNS):
        started = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - started) * 1000.0)
    return {"p50": round(median(samples), 2), "p95": round(percentile(samples, 0.95), 2)}


async def main() -> None:
    secret = Secret("bench-secret")
    async with Emulator(EmulatorConfig(jwt_secret=secret)) as emu:
        url = emu.consumer_url(ACCOUNT)
        shared = DomainDiscovery(emu.base_url)

        async def minted() -> None:
            jwt = Secret(mint_jwt(f"c-{time.monotonic_ns()}", secret, now=time.time()))
            async with ConsumerClient(url, ACCOUNT, jwt, reconnect=False):
                pass

        async def connect_with(discovery: DomainDiscovery) -> None:
            domains = await discovery.consumer_domains(ACCOUNT)
            identity = SignupIdentity(domains.idp_url, ACCOUNT)
            jwt = await identity.token()
            async with ConsumerClient(domains.consumer_url, ACCOUNT, jwt, identity=identity, reconnect=False):
                pass

        async def discovered() -> None:
            await connect_with(DomainDiscovery(emu.base_url))

        async def cached() -> None:
            await connect_with(shared)

        async def renewal() -> None:
            expired = Secret(mint_jwt("old", secret, now=time.time() - 7200))
            identity = SignupIdentity(emu.base_url, ACCOUNT)
            async with ConsumerClient(url, ACCOUNT, expired, identity=identity, reconnect=False) as client:
                assert client.renewals == 1

        results = {
            "minted": await timed(minted),
            "discovered": await timed(discovered),
            "cached": await timed(cached),
            "renewal": await timed(renewal),
        }
    base = results["minted"]["p50"]
    write_result(
        "consumer_startup",
        {
            "runs": RUNS,
            "ms": results,
            "ratio_p50_vs_minted": {k: round(v["p50"] / base, 2) for k, v in results.items()},
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
