"""Ten thousand random cancellations, HTTP/1.1 and HTTP/2, against nginx and the in-process
servers; afterwards the pool serves the next request at once and nothing is left behind.

Each call is cut in one of three ways, picked at random: ``asyncio.timeout`` with a deadline
of a few milliseconds, ``task.cancel()`` after a random number of loop turns (so that every
await of the request is hit: pool wait, dial, write, head, body, drain, async upload), or
``task.cancel()`` after a random sleep. The calls themselves vary: small and large GETs, a
streamed body read in part and closed, POSTs with bytes and with an async generator. Every
test is bounded: it stops at 10,000 cancellations or after ``BUDGET`` seconds, whichever
comes first, and must have cut at least ``FLOOR`` calls so it cannot pass idly.

Afterwards: no exchange, stream, waiter or dial left in the pool, the next request served
within a short pool timeout, sockets back to where they were after ``aclose``, no task left
pending (``aio_helpers.run``), and no unclosed-transport warning (``filterwarnings=error``).
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aio_helpers import LOOPS, eventually, run, socket_count
from servers.nginx import Nginx

from tether import AsyncConnectionPool, Timeout, TransportError
from tether.testing import H2TestServer, TestServer

TARGET = 10_000  # cancellations
BUDGET = 20.0  # seconds of cutting, at most, per test
FLOOR = 500  # cancellations a test must reach within its budget (a loaded 2-core machine)
TASKS = 16
NEXT = Timeout(pool=0.5, connect=2, read=2)  # "at once": a leaked slot would exceed this


async def upload(n: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        await asyncio.sleep(0)
        yield b"u" * 4096


async def call(pool: AsyncConnectionPool, paths: dict[str, str], rng: random.Random) -> None:
    """One request of a random kind, read to its end (or, streamed, in part and closed)."""
    kind = rng.choice(["small", "large", "stream", "post", "upload"])
    if kind == "stream":
        r = await pool.request("GET", paths["large"], stream=True)
        try:
            await r.aiter_bytes(1000).__anext__()
        finally:
            await r.aclose()  # the drain itself may be cut
    elif kind in ("post", "upload"):
        body: Any = b"p" * 2000 if kind == "post" else upload(rng.randint(1, 8))
        await (await pool.request("POST", paths["post"], body=body)).aread()
    else:
        await (await pool.request("GET", paths[kind])).aread()


async def cut_one(
    pool: AsyncConnectionPool, paths: dict[str, str], rng: random.Random, errors: list[str]
) -> bool:
    """One call, cut at a random point; True if it really was cut. A transport error (a
    server that dropped the connection under it) is noted in ``errors``."""
    try:
        return await _cut_one(pool, paths, rng)
    except TransportError as exc:
        errors.append(str(exc))
        return False


async def _cut_one(pool: AsyncConnectionPool, paths: dict[str, str], rng: random.Random) -> bool:
    how = rng.random()
    if how < 0.4:
        try:
            async with asyncio.timeout(rng.uniform(0, 0.0015)):
                await call(pool, paths, rng)
        except TimeoutError:
            return True
        return False
    task = asyncio.ensure_future(call(pool, paths, rng))
    if how < 0.8:
        for _ in range(rng.randint(0, 12)):  # a random number of loop turns: any await
            if task.done():
                break
            await asyncio.sleep(0)
    else:
        await asyncio.sleep(rng.uniform(0, 0.001))
    cut = task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return cut
    return False


async def hammer(
    pool: AsyncConnectionPool, paths: dict[str, str], seed: int, errors: list[str]
) -> int:
    """``TASKS`` tasks cutting calls until ``TARGET`` cancellations or ``BUDGET`` seconds."""
    gc.collect()
    before = socket_count()
    stop = time.monotonic() + BUDGET
    cut = [0]

    async def worker(k: int) -> None:
        rng = random.Random(seed * 100 + k)
        while cut[0] < TARGET and time.monotonic() < stop:
            cut[0] += await cut_one(pool, paths, rng, errors)

    async with pool:
        await asyncio.gather(*(worker(k) for k in range(TASKS)))
        stats = pool.stats()
        assert (stats.in_use, stats.streams_in_flight) == (0, 0), stats
        assert not pool._state.waiters and pool._state.dialing == 0
        assert stats.open <= pool.maxsize
        # The next request is served at once: no slot, stream or dial was leaked.
        r = await pool.request("GET", paths["small"], timeout=NEXT)
        assert r.status == 200
    gc.collect()
    # A dial cut inside create_connection is closed by the loop a turn later; the in-process
    # servers close their side a moment after we do.
    assert await eventually(lambda: socket_count() <= before, 5.0), (socket_count(), before)
    assert cut[0] >= FLOOR, f"only {cut[0]} calls were cut in {BUDGET}s"
    return cut[0]


@pytest.fixture
def h2() -> Iterator[H2TestServer]:
    with H2TestServer() as server:
        yield server


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop", LOOPS)
def test_cancellations_over_http11_against_the_test_server(
    test_server: TestServer, loop: str
) -> None:
    pool = AsyncConnectionPool("127.0.0.1", test_server.port, maxsize=4, block=True)
    paths = {"small": "/echo", "large": "/bytes/300000", "post": "/echo"}
    errors: list[str] = []
    run(hammer(pool, paths, 1, errors), loop)
    assert errors == []
    assert test_server.wait_open_connections(0, timeout=5)
    test_server.errors.clear()  # the server saw many clients vanish mid-request


@pytest.mark.timeout(60)
def test_cancellations_over_http11_against_nginx(nginx: Nginx) -> None:
    pool = AsyncConnectionPool("127.0.0.1", nginx.port, maxsize=4, block=True)
    paths = {"small": "/", "large": "/64k.bin", "post": "/echo"}
    errors: list[str] = []
    run(hammer(pool, paths, 2, errors))
    assert errors == []


@pytest.mark.timeout(60)
def test_cancellations_over_http2_against_nginx(nginx_h2c: Nginx) -> None:
    """Streams are reset (RST_STREAM(CANCEL)) and their connection carries the others."""
    pool = AsyncConnectionPool("127.0.0.1", nginx_h2c.port, http2="prior-knowledge", maxsize=2)
    paths = {"small": "/", "large": "/64k.bin", "post": "/echo"}
    errors: list[str] = []
    run(hammer(pool, paths, 3, errors))
    assert errors == []


@pytest.mark.timeout(60)
def test_cancellations_over_http2_against_the_h2_test_server(h2: H2TestServer) -> None:
    """h2's server side may take a RST_STREAM that crossed its END_STREAM on the wire for a
    connection error (RFC 9113 §5.1 allows the crossing): such a connection is lost with the
    requests in flight on it, and the pool must absorb that too. What the server logged
    about it is not judged here."""
    pool = AsyncConnectionPool("127.0.0.1", h2.port, http2="prior-knowledge", maxsize=2)
    paths = {"small": "/", "large": "/bytes/200000", "post": "/echo"}
    errors: list[str] = []
    run(hammer(pool, paths, 4, errors))
    # Only the requests in flight on a connection the server dropped may fail, as any
    # in-flight request fails when its connection is lost.
    assert all("connection" in e for e in errors), errors[:3]
