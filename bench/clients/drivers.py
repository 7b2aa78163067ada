"""Bounded load loops shared by every client, so all clients pay the same overhead.

Every loop stops after ``n`` requests or ``t`` seconds, whichever comes first.
Every response is checked: status 200 and the exact body length; the full body
is compared during warm-up and on every 64th measured request.  A wrong answer
raises ``BadResponse`` (the run fails; it is never counted as a fast result).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Get = Callable[[], tuple[int, bytes]]
AsyncGet = Callable[[], Awaitable[tuple[int, bytes]]]


class BadResponse(Exception):
    pass


@dataclass
class Ctx:
    """What a client factory needs to know about its target."""

    scheme: str  # "http" | "https"
    host: str
    port: int
    path: str
    cafile: str | None  # the trustme CA for TLS runs (never the environment's bundle)
    concurrency: int  # pool size the client should allow
    h2: bool = False

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    def ssl_context(self, alpn: list[str] | None = None) -> Any:
        import ssl

        ctx = ssl.create_default_context(cafile=self.cafile)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx


@dataclass
class SyncClient:
    get: Get
    close: Callable[[], None] = lambda: None
    # connections the client itself says it opened (None: it cannot tell)
    connections: Callable[[], int | None] = lambda: None
    info: dict[str, str] = field(default_factory=dict)
    # facts known only after the run (e.g. the HTTP versions seen), merged into info
    describe: Callable[[], dict[str, str]] = dict


@dataclass
class AsyncClient:
    get: AsyncGet
    close: Callable[[], Awaitable[None]]
    connections: Callable[[], int | None] = lambda: None
    info: dict[str, str] = field(default_factory=dict)
    # facts known only after the run (e.g. the HTTP versions seen), merged into info
    describe: Callable[[], dict[str, str]] = dict


@dataclass
class Params:
    n: int
    t: float
    warmup: int
    expected: bytes


def check_full(status: int, body: bytes, expected: bytes) -> None:
    if status != 200:
        raise BadResponse(f"status {status}, expected 200")
    if body != expected:
        raise BadResponse(
            f"wrong body: {len(body)} bytes (expected {len(expected)}), starts {body[:40]!r}"
        )


def _result(done: int, wall: float, cpu: float, warmup: int, **extra: Any) -> dict[str, Any]:
    return {"ok": True, "requests": done, "wall_s": wall, "cpu_s": cpu, "warmup": warmup, **extra}


# --- sequential ---------------------------------------------------------------


def run_seq(client: SyncClient, p: Params) -> dict[str, Any]:
    get = client.get
    expected = p.expected
    exp_len = len(expected)
    for _ in range(p.warmup):
        status, body = get()
        check_full(status, body, expected)
    perf = time.perf_counter
    cpu0 = time.process_time()
    t0 = perf()
    deadline = t0 + p.t
    done = 0
    n = p.n
    while done < n:
        status, body = get()
        if status != 200 or len(body) != exp_len:
            check_full(status, body, expected)
        done += 1
        if not done & 63:
            check_full(status, body, expected)
        if perf() > deadline:
            break
    wall = perf() - t0
    cpu = time.process_time() - cpu0
    return _result(done, wall, cpu, p.warmup)


# --- threads ------------------------------------------------------------------


def run_threads(make_get: Callable[[int], Get], p: Params, concurrency: int) -> dict[str, Any]:
    """``concurrency`` threads; ``make_get(i)`` gives thread i its get function."""
    expected = p.expected
    exp_len = len(expected)
    counter = itertools.count()
    barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]
    done = [0] * concurrency
    errors: list[BaseException] = []
    warm_each = max(1, p.warmup // concurrency)
    n = p.n
    perf = time.perf_counter

    def worker(i: int) -> None:
        try:
            get = make_get(i)
            for _ in range(warm_each):
                status, body = get()
                check_full(status, body, expected)
            barrier.wait()  # everyone warmed up (and the pool is filled)
            barrier.wait()  # main thread has taken t0
            c = 0
            while next(counter) < n:
                status, body = get()
                if status != 200 or len(body) != exp_len:
                    check_full(status, body, expected)
                c += 1
                if not c & 63:
                    check_full(status, body, expected)
                if perf() > deadline[0]:
                    break
            done[i] = c
        except threading.BrokenBarrierError:
            pass
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for th in threads:
        th.start()
    try:
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        pass
    if errors:
        raise errors[0]
    cpu0 = time.process_time()
    t0 = perf()
    deadline[0] = t0 + p.t
    barrier.wait(timeout=60)
    # one deadline for all joins (not 60 s each), and a failed worker ends the wait
    join_deadline = perf() + p.t + 60
    for th in threads:
        while th.is_alive() and not errors and perf() < join_deadline:
            th.join(timeout=0.05)
    wall = perf() - t0
    cpu = time.process_time() - cpu0
    if errors:
        raise errors[0]
    if any(th.is_alive() for th in threads):
        raise RuntimeError("a worker thread did not finish in time")
    return _result(sum(done), wall, cpu, warm_each * concurrency, threads=concurrency)


# --- asyncio tasks ------------------------------------------------------------


async def run_tasks(client: AsyncClient, p: Params, concurrency: int) -> dict[str, Any]:
    get = client.get
    expected = p.expected
    exp_len = len(expected)
    warm_each = max(1, p.warmup // concurrency)
    counter = itertools.count()
    n = p.n
    perf = time.perf_counter
    deadline = [0.0]

    async def warm() -> None:
        for _ in range(warm_each):
            status, body = await get()
            check_full(status, body, expected)

    async def work() -> int:
        c = 0
        while next(counter) < n:
            status, body = await get()
            if status != 200 or len(body) != exp_len:
                check_full(status, body, expected)
            c += 1
            if not c & 63:
                check_full(status, body, expected)
            if perf() > deadline[0]:
                break
        return c

    await asyncio.gather(*(warm() for _ in range(concurrency)))
    cpu0 = time.process_time()
    t0 = perf()
    deadline[0] = t0 + p.t
    counts = await asyncio.wait_for(
        asyncio.gather(*(work() for _ in range(concurrency))), timeout=p.t + 60
    )
    wall = perf() - t0
    cpu = time.process_time() - cpu0
    return _result(sum(counts), wall, cpu, warm_each * concurrency, tasks=concurrency)


# --- memory per idle pooled connection ---------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _open_sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def _burst(get: Get, expected: bytes, count: int) -> None:
    """``count`` threads each send one request to the slow resource at once, so the
    pool has to open ``count`` connections; they are all idle in the pool after."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        try:
            barrier.wait(timeout=30)
            status, body = get()
            check_full(status, body, expected)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    if errors:
        raise errors[0]
    if any(th.is_alive() for th in threads):
        raise RuntimeError("burst threads did not finish in time")


def run_mem(factory: Callable[[], SyncClient], p: Params, count: int) -> dict[str, Any]:
    """Open ``count`` pooled connections and report RSS and tracemalloc growth per
    idle connection.  A first client does the same burst and is closed, so lazy
    imports, thread stacks and allocator arenas are warm before the baseline."""
    first = factory()
    _burst(first.get, p.expected, count)
    first.close()
    del first
    gc.collect()

    tracemalloc.start()
    client = factory()
    gc.collect()
    sockets0 = _open_sockets()
    rss0 = _rss_bytes()
    traced0 = tracemalloc.get_traced_memory()[0]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    _burst(client.get, p.expected, count)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    gc.collect()
    traced1 = tracemalloc.get_traced_memory()[0]
    rss1 = _rss_bytes()
    idle = _open_sockets() - sockets0
    reported = client.connections()
    tracemalloc.stop()
    client.close()
    if idle <= 0:
        raise RuntimeError("no idle pooled connection is open after the burst")
    return _result(
        count,
        wall,
        cpu,
        count,
        idle_connections=idle,
        client_connections=reported,
        rss_per_conn=(rss1 - rss0) / idle,
        traced_per_conn=(traced1 - traced0) / idle,
        info=client.info,
    )
