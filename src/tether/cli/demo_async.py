"""``tether demo``'s asyncio scene: what only asyncio users meet, tasks cancelled mid-request.

Hundreds of requests are cut by ``asyncio.timeout`` at random moments (waiting for a slot,
writing, waiting for the head, reading the body); the pool must come out whole: no slot
held, no socket left open, the next request served at once. Checked from the server's side
(its open connections) as well as from the pool's counters.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from ..aio.pool import AsyncConnectionPool
from ..models import Timeout
from ..testing.testserver import TestServer

__all__ = ["scene_async_cancel"]

_CALLS = 400
_TASKS = 8


def scene_async_cancel(out: Callable[[str], None]) -> bool:
    """Run the scene; True if every check held."""
    out("6. asyncio: tasks cancelled mid-request, the pool carries on")
    with TestServer() as server:
        cut, ok = asyncio.run(_cancel_many(server, out))
        server.errors.clear()  # it saw many clients vanish mid-response, as it should
        gone = server.wait_open_connections(0, timeout=3.0)
        return (
            _check(
                out, cut > _CALLS // 4, f"{cut} of {_CALLS} requests were cut by asyncio.timeout"
            )
            and ok
            and _check(out, gone, "the server sees no connection left open after aclose()")
        )


async def _cancel_many(server: TestServer, out: Callable[[str], None]) -> tuple[int, bool]:
    pool = AsyncConnectionPool("127.0.0.1", server.port, maxsize=4, block=True)
    out(f'   pool = tether.AsyncConnectionPool("127.0.0.1", {server.port}, maxsize=4, block=True)')
    out(f"   {_TASKS} tasks x {_CALLS // _TASKS}: async with asyncio.timeout(random 0-30 ms): ...")
    async with pool:

        async def worker(seed: int) -> int:
            rng = random.Random(seed)
            cut = 0
            for _ in range(_CALLS // _TASKS):
                path = rng.choice(["/slow/0.02", "/slow-body/0.02", "/echo", "/bytes/300000"])
                try:
                    async with asyncio.timeout(rng.uniform(0.0, 0.03)):
                        await (await pool.request("GET", path)).aread()
                except TimeoutError:
                    cut += 1
            return cut

        cut = sum(await asyncio.gather(*(worker(k) for k in range(_TASKS))))
        stats = pool.stats()
        out(f"   pool.stats(): in_use={stats.in_use} open={stats.open} closes={stats.closes}")
        whole = _check(out, stats.in_use == 0, "no connection is held by a cancelled task")
        r = await pool.request("GET", "/echo", timeout=Timeout(pool=0.5, read=2))
        served = _check(out, r.status == 200, "the next request is served at once (pool=0.5 s)")
    return cut, whole and served


def _check(out: Callable[[str], None], ok: bool, claim: str) -> bool:
    out(f"  [{'ok' if ok else 'FAILED'}] {claim}")
    return ok
