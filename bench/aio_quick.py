"""Quick tether-only figures for the asyncio body next to the sync one (no venv needed):
``PYTHONPATH=src python3 bench/aio_quick.py``. Private nginx instances on loopback; best of 2."""

import asyncio
import pathlib
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import trustme
import uvloop
from servers.nginx import Nginx, find_nginx

import tether

N = 3000


def sync_seq(url, **kw):
    with tether.Session(**kw) as s:
        for _ in range(200):
            s.get(url)
        t = time.perf_counter()
        c0 = time.process_time()
        for _ in range(N):
            assert s.get(url).content
        return N / (time.perf_counter() - t), (time.process_time() - c0) / N * 1e6


def sync_16(url, **kw):
    with tether.Session(pool_maxsize=16, **kw) as s:
        s.get(url)

        def w():
            for _ in range(N // 16):
                s.get(url)

        ts = [threading.Thread(target=w) for _ in range(16)]
        t = time.perf_counter()
        [x.start() for x in ts]
        [x.join() for x in ts]
        return (N // 16 * 16) / (time.perf_counter() - t), 0


async def async_seq(url, **kw):
    async with tether.AsyncSession(**kw) as s:
        for _ in range(200):
            await s.get(url)
        t = time.perf_counter()
        c0 = time.process_time()
        for _ in range(N):
            assert (await s.get(url)).content
        return N / (time.perf_counter() - t), (time.process_time() - c0) / N * 1e6


async def async_16(url, **kw):
    async with tether.AsyncSession(pool_maxsize=16, **kw) as s:
        await s.get(url)

        async def w():
            for _ in range(N // 16):
                await s.get(url)

        t = time.perf_counter()
        await asyncio.gather(*(w() for _ in range(16)))
        return (N // 16 * 16) / (time.perf_counter() - t), 0


ca = trustme.CA()
with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:  # noqa: SIM117
    with (
        Nginx(pathlib.Path(d1), binary=find_nginx()) as ng,
        Nginx(pathlib.Path(d2), binary=find_nginx(), ca=ca, http2=True) as h2,
    ):
        url = ng.url + "/"
        h2url = h2.url + "/"
        v = {"verify": str(h2.ca_file)}
        rows = [
            ("seq_small sync Session", lambda: sync_seq(url)),
            ("seq_small AsyncSession asyncio", lambda: asyncio.run(async_seq(url))),
            ("seq_small AsyncSession uvloop", lambda: uvloop.run(async_seq(url))),
            ("conc16 sync Session 16 threads", lambda: sync_16(url)),
            ("conc16 AsyncSession 16 tasks asyncio", lambda: asyncio.run(async_16(url))),
            ("conc16 AsyncSession 16 tasks uvloop", lambda: uvloop.run(async_16(url))),
            ("h2_seq sync Session(http2)", lambda: sync_seq(h2url, http2=True, **v)),
            (
                "h2_seq AsyncSession(http2) asyncio",
                lambda: asyncio.run(async_seq(h2url, http2=True, **v)),
            ),
            ("h2_16 sync Session(http2) 16 threads", lambda: sync_16(h2url, http2=True, **v)),
            (
                "h2_16 AsyncSession(http2) 16 tasks asyncio",
                lambda: asyncio.run(async_16(h2url, http2=True, **v)),
            ),
            (
                "h2_16 AsyncSession(http2) 16 tasks uvloop",
                lambda: uvloop.run(async_16(h2url, http2=True, **v)),
            ),
        ]
        for name, f in rows:
            best = max(f() for _ in range(2))
            print(
                f"{name:46s} {best[0]:8.0f} req/s"
                + (f"  {best[1]:5.0f} us CPU/req" if best[1] else "")
            )
