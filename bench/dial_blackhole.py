"""Dial time to a host whose first address is black-holed, sync and async.

A name resolves (through the resolver hook) to ``::1`` then ``127.0.0.1``, on one port: ::1
is a ``BlackHole`` (a full accept queue: SYNs dropped), 127.0.0.1 a ``TestServer``. Each
sample is one new connection: a fresh Session or AsyncSession, one GET. Reported: the
connect step (``ConnectionInfo.connect_time``: from resolved to the winning TCP connection)
and the whole first request, with a dial to 127.0.0.1 alone as the reference.

    PYTHONPATH=src python3 bench/dial_blackhole.py [--samples N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import tether
from tether.lifecycle.dialplan import ATTEMPT_DELAY
from tether.testing import BlackHole, TestServer

Sample = tuple[float, float]  # (connect_time, whole request)


def sync_sample(url: str, resolver: Callable[[str, int], list[str]]) -> Sample:
    started = time.perf_counter()
    with tether.Session(resolver=resolver) as s:
        info = s.get(url).connection_info
    return info.connect_time, time.perf_counter() - started


def async_sample(url: str, resolver: Callable[[str, int], list[str]]) -> Sample:
    async def main() -> Sample:
        started = time.perf_counter()
        async with tether.AsyncSession(resolver=resolver) as s:
            info = (await s.get(url)).connection_info
        return info.connect_time, time.perf_counter() - started

    return asyncio.run(main())


def row(name: str, samples: list[Sample]) -> str:
    connect = [c * 1000 for c, _ in samples]
    whole = [w * 1000 for _, w in samples]
    return (
        f"| {name} | {len(samples)} | {statistics.median(connect):.1f} | "
        f"{min(connect):.1f}-{max(connect):.1f} | {statistics.median(whole):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args()
    table = {"dual.test": ["::1", "127.0.0.1"], "v4.test": ["127.0.0.1"]}

    def resolver(host: str, port: int) -> list[str]:
        return table[host]

    print("| dial | samples | connect ms (median) | connect ms (min-max) | request ms (median) |")
    print("|---|---|---|---|---|")
    with TestServer() as server, BlackHole("::1", server.port):
        for body, sample in (("sync", sync_sample), ("async", async_sample)):
            for host, label in (("v4.test", "127.0.0.1 only"), ("dual.test", "::1 black-holed")):
                url = f"http://{host}:{server.port}/"
                samples = [sample(url, resolver) for _ in range(args.samples)]
                print(row(f"{body}, {label}", samples))
    print(f"\nattempt delay (RFC 8305): {ATTEMPT_DELAY * 1000:.0f} ms")


if __name__ == "__main__":
    main()
