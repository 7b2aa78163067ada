"""Cancellation at every await (dial, pool wait, write, head, body, drain) leaves the pool
whole, and the one-brain promise: sync and async count the same for the same exchange."""

from __future__ import annotations

import asyncio
import gc
import random

import pytest
from aio_helpers import LOOPS, eventually, run, socket_count

import tether
from tether import AsyncConnectionPool, ConnectionPool, Timeout
from tether.testing import TestServer

PATHS = ["/slow/0.02", "/slow-body/0.02", "/echo", "/bytes/300000", "stream"]


async def one_cancelled_call(pool: AsyncConnectionPool, rng: random.Random) -> bool:
    """One request (or a streamed read and close) under a random small deadline."""
    path = rng.choice(PATHS)
    try:
        async with asyncio.timeout(rng.uniform(0.0, 0.03)):
            if path == "stream":
                r = await pool.request("GET", "/slow-body/0.02", stream=True)
                try:
                    await r.aiter_bytes(5).__anext__()
                finally:
                    await r.aclose()  # the drain itself may be cut
            else:
                await (await pool.request("GET", path)).aread()
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize(("loop", "total"), [("asyncio", 2000), (LOOPS[1], 400)])
def test_random_cancellations_leave_the_pool_healthy(
    test_server: TestServer, loop: str, total: int
) -> None:
    tasks = 8

    async def main() -> int:
        gc.collect()  # earlier tests' garbage must not close its sockets during this one
        before = socket_count()
        pool = AsyncConnectionPool("127.0.0.1", test_server.port, maxsize=4, block=True)
        async with pool:

            async def worker(seed: int) -> int:
                rng = random.Random(seed)
                return sum([await one_cancelled_call(pool, rng) for _ in range(total // tasks)])

            cancelled = sum(await asyncio.gather(*(worker(k) for k in range(tasks))))
            stats = pool.stats()
            assert (stats.in_use, stats.streams_in_flight) == (0, 0)
            assert stats.open <= 4 and not pool._state.waiters and pool._state.dialing == 0
            # The next request is served at once: no slot was leaked.
            r = await pool.request("GET", "/echo", timeout=Timeout(pool=0.5, read=2))
            assert r.status == 200
        assert test_server.wait_open_connections(0, timeout=5)
        # A dial cut inside create_connection is closed by the loop a turn later; and the
        # in-process upstream of the nginx fixtures lingers 1 s on its closes (same process).
        assert await eventually(lambda: socket_count() == before, 3.0), (socket_count(), before)
        return cancelled

    cancelled = run(main(), loop)
    assert cancelled > total // 4  # most calls really were cut somewhere
    test_server.errors.clear()  # the server saw many clients vanish mid-response


def test_cancelling_a_pool_wait_gives_the_slot_to_the_next_task(test_server: TestServer) -> None:
    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", test_server.port, block=True) as pool:
            held = await pool.request("GET", "/bytes/10", stream=True)
            waiter = asyncio.ensure_future(pool.request("GET", "/echo"))
            await asyncio.sleep(0.01)
            waiter.cancel()
            await held.aclose()  # fills the cancelled order: it must be given back
            with pytest.raises(asyncio.CancelledError):
                await waiter
            r = await pool.request("GET", "/echo", timeout=Timeout(pool=0.2))
            assert (r.status, r.connection_info.reused) == (200, True)
            assert pool.stats().open == 1

    run(main())
    assert test_server.connections_accepted == 1


def test_cancel_after_the_response_is_complete_keeps_the_connection(
    test_server: TestServer,
) -> None:
    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", test_server.port) as pool:
            r = await pool.request("GET", "/bytes/10", stream=True)
            await asyncio.sleep(0.05)  # the whole body has arrived, unread
            task = asyncio.ensure_future(r.aread())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await r.aclose()
            assert (await pool.request("GET", "/echo")).connection_info.reused
            assert pool.stats().closes == {}

    run(main())


def scripted_sync(port: int) -> tether.PoolStats:
    with ConnectionPool("127.0.0.1", port, maxsize=1, watch_idle=False) as pool:
        for path in ("/echo", "/echo", "/status/404", "/close", "/echo"):
            pool.request("GET", path)
        pool.request("POST", "/echo", body=b"x" * 1000)
        pool.request("HEAD", "/echo")
        pool.request("GET", "/bytes/100", stream=True).close()
        pool.request("GET", "/bytes/5000000", stream=True).close()
        pool.request("GET", "/echo")
        with pytest.raises(tether.ReadTimeout):
            pool.request("GET", "/slow/1", timeout=Timeout(read=0.05))
        pool.request("GET", "/echo")
        return pool.stats()


async def scripted_async(port: int) -> tether.PoolStats:
    async with AsyncConnectionPool("127.0.0.1", port, maxsize=1) as pool:
        for path in ("/echo", "/echo", "/status/404", "/close", "/echo"):
            await pool.request("GET", path)
        await pool.request("POST", "/echo", body=b"x" * 1000)
        await pool.request("HEAD", "/echo")
        await (await pool.request("GET", "/bytes/100", stream=True)).aclose()
        await (await pool.request("GET", "/bytes/5000000", stream=True)).aclose()
        await pool.request("GET", "/echo")
        with pytest.raises(tether.ReadTimeout):
            await pool.request("GET", "/slow/1", timeout=Timeout(read=0.05))
        await pool.request("GET", "/echo")
        return pool.stats()


def test_sync_and_async_count_the_same_for_the_same_exchange() -> None:
    with TestServer() as a, TestServer() as b:
        sync_stats = scripted_sync(a.port)
        async_stats = run(scripted_async(b.port))
        assert a.connection_request_counts == b.connection_request_counts
    assert sync_stats == async_stats
    assert sync_stats.closes == {"NOT_PERSISTENT": 1, "BODY_NOT_CONSUMED": 1, "TIMEOUT": 1}
