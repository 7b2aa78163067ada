"""Where AsyncSession's sequential keep-alive GET spends its client CPU, next to its peers.

Run (after bench/run has made the venv), from the repository root:
    PYTHONPATH=src bench/.venv/bin/python bench/aio_profile.py [--n 5000] [--profile] [--uvloop]

Starts the benchmark nginx (bench/nginx_server.py, the harness's config) on CPU 0, pins itself
to CPU 1, then for 3 rounds runs each client for ``--n`` sequential GETs of the 13-byte file
after 200 warm-up requests, in one event loop per client (started before the clock), and prints
CPU µs per request (``time.process_time``) and how many reads (``data_received`` calls) a
response took on the hand-written asyncio floor. ``--profile`` adds a cProfile (CPU time) of
AsyncSession's loop, by own time and cumulative.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nginx_server import Nginx

import tether

Get = Callable[[], Awaitable[bytes]]


class _Floor(asyncio.Protocol):
    """One future per request, done when the whole (Content-Length) response has arrived."""

    def __init__(self) -> None:
        self.fut: asyncio.Future[None] | None = None
        self.buf = b""
        self.reads = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        start = self.buf.find(b"Content-Length: ") + 16
        length = int(self.buf[start : self.buf.find(b"\r\n", start)])
        if len(self.buf) >= end + 4 + length and self.fut is not None:
            self.buf = b""
            self.fut.set_result(None)


async def floor(port: int) -> tuple[Get, Callable[[], Awaitable[None]], _Floor]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(_Floor, "127.0.0.1", port)
    raw = f"GET /small HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n".encode()

    async def get() -> bytes:
        proto.fut = loop.create_future()
        proto.transport.write(raw)
        await proto.fut
        return b"x"

    async def close() -> None:
        transport.close()

    return get, close, proto


async def make(kind: str, port: int) -> tuple[Get, Callable[[], Awaitable[None]]]:
    url = f"http://127.0.0.1:{port}/small"
    if kind == "asyncio floor":
        get, close, _ = await floor(port)
        return get, close
    if kind == "AsyncConnectionPool":
        pool = tether.AsyncConnectionPool("127.0.0.1", port)

        async def pget() -> bytes:
            return (await pool.request("GET", "/small")).data

        return pget, pool.aclose
    if kind == "AsyncSession":
        s = tether.AsyncSession()

        async def sget() -> bytes:
            return (await s.get(url)).content

        return sget, s.aclose
    if kind == "aiohttp":
        import aiohttp

        conn = aiohttp.TCPConnector(limit=1, limit_per_host=1, ssl=False, keepalive_timeout=300)
        a = aiohttp.ClientSession(connector=conn)

        async def aget() -> bytes:
            async with a.get(url) as r:
                return await r.read()

        return aget, a.close
    raise ValueError(kind)


async def run(kind: str, port: int, n: int, prof: cProfile.Profile | None) -> float:
    get, close = await make(kind, port)
    try:
        for _ in range(200):
            assert await get()
        if prof is not None:
            prof.enable()
        c0 = time.process_time()
        for _ in range(n):
            await get()
        cpu = time.process_time() - c0
        if prof is not None:
            prof.disable()
        return cpu / n * 1e6
    finally:
        await close()


def sync_session(port: int, n: int) -> float:
    url = f"http://127.0.0.1:{port}/small"
    with tether.Session() as s:
        for _ in range(200):
            assert s.get(url).content
        c0 = time.process_time()
        for _ in range(n):
            s.get(url).content  # noqa: B018
        return (time.process_time() - c0) / n * 1e6


async def reads_per_response(port: int) -> float:
    get, close, proto = await floor(port)
    try:
        for _ in range(100):
            await get()
        proto.reads = 0
        for _ in range(500):
            await get()
        return proto.reads / 500
    finally:
        await close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--uvloop", action="store_true")
    ap.add_argument("--kinds", default="asyncio floor,AsyncConnectionPool,AsyncSession,aiohttp")
    args = ap.parse_args()
    runner: Callable[..., float] = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    os.sched_setaffinity(0, {1})
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        ng = Nginx(Path(tmp) / "nginx", server_cpu=0)
        ng.prepare()
        ng.start()
        try:
            port = ng.ports["plain"]
            reads = runner(reads_per_response(port))
            print(f"reads per response (asyncio floor): {reads:.2f}")
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for kind in [*kinds, "Session (sync)"]:
                    if kind == "Session (sync)":
                        us = sync_session(port, args.n)
                    else:
                        us = runner(run(kind, port, args.n, None))
                    best[kind] = min(best.get(kind, us), us)
            print(f"CPU µs per request, best of {args.rounds} x {args.n}:")
            for kind, us in best.items():
                print(f"  {kind:22} {us:7.1f}")
            if args.profile:
                prof = cProfile.Profile(time.process_time)  # CPU: a wait in epoll costs nothing
                runner(run("AsyncSession", port, args.n, prof))
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        finally:
            ng.stop()
            ng.cleanup()


if __name__ == "__main__":
    main()
