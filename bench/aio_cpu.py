"""CPU time per request, sequential plain HTTP/1.1: tether AsyncSession, tether Session, aiohttp.

    PYTHONPATH=src bench/.venv/bin/python bench/aio_cpu.py [--reps 5] [--n 2000] [--uvloop]

One private nginx (tests/servers/nginx.py) pinned to CPU 0; each measurement is a fresh
client subprocess pinned to CPU 1 that warms up (200 requests), then times 2000 sequential
GETs of a 13-byte file with ``time.process_time``. The machine is shared, so the figure is
CPU µs per request (not requests per second), the lowest of ``--reps`` runs. aiohttp comes
from the bench venv (``bench/run`` makes it); without it its row is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
KINDS = ["tether-async", "tether-sync", "aiohttp", "asyncio-floor", "socket-floor"]
# The floors: the same GET written by hand, with nothing but the loop (an asyncio.Protocol and
# one future per request) or a blocking socket: what no client on that body can go below.
_RAW = b"GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n"


class _Floor(asyncio.BufferedProtocol):
    # Reads into one buffer: a plain Protocol's loop allocates 256 KiB per read (mmap, page
    # fault, munmap), which tether's drivers do not pay, so that would be no floor.
    fut: asyncio.Future[None] | None = None
    view = memoryview(bytearray(256 * 1024))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        bytes(self.view[:nbytes])  # the copy a driver makes
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(None)


async def _asyncio_floor(url: str, n: int) -> float:
    loop = asyncio.get_running_loop()
    host, port = url.split("//")[1].split("/")[0].split(":")
    transport, proto = await loop.create_connection(_Floor, host, int(port))
    for i in range(n + 200):
        if i == 200:
            c0 = time.process_time()
        proto.fut = loop.create_future()
        proto.transport.write(_RAW)
        await proto.fut
    transport.close()
    return (time.process_time() - c0) / n * 1e6


def _socket_floor(url: str, n: int) -> float:
    import socket

    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(n + 200):
            if i == 200:
                c0 = time.process_time()
            sock.sendall(_RAW)
            sock.recv(65536)  # one segment: head and the 13-byte body
    return (time.process_time() - c0) / n * 1e6


def client(kind: str, url: str, n: int, loop: str) -> float:
    """CPU µs per request for ``n`` sequential GETs after a warm-up."""
    if kind == "socket-floor":
        return _socket_floor(url, n)
    if kind == "tether-sync":
        import tether

        with tether.Session() as s:
            for _ in range(200):
                s.get(url)
            c0 = time.process_time()
            for _ in range(n):
                assert s.get(url).content
            return (time.process_time() - c0) / n * 1e6

    async def main() -> float:
        if kind == "asyncio-floor":
            return await _asyncio_floor(url, n)
        if kind == "aiohttp":
            import aiohttp

            async with aiohttp.ClientSession() as s:
                for _ in range(200):
                    async with s.get(url) as r:
                        await r.read()
                c0 = time.process_time()
                for _ in range(n):
                    async with s.get(url) as r:
                        assert await r.read()
                return (time.process_time() - c0) / n * 1e6
        import tether

        async with tether.AsyncSession() as s:
            for _ in range(200):
                await s.get(url)
            c0 = time.process_time()
            for _ in range(n):
                assert (await s.get(url)).content
            return (time.process_time() - c0) / n * 1e6

    if loop == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def pin_server(pid: int) -> None:
    """nginx's master and worker on CPU 0."""
    pids = [pid]
    children = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        subprocess.run(["taskset", "-p", "-c", "0", str(p)], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--client", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    loop = "uvloop" if args.uvloop else "asyncio"
    if args.client:
        print(json.dumps(client(args.client[0], args.client[1], args.n, loop)))
        return
    sys.path.insert(0, str(HERE.parent / "tests"))
    from servers.nginx import Nginx, find_nginx

    binary = find_nginx()
    assert binary, "nginx not found"
    best: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory() as d,
        Nginx(pathlib.Path(d), binary=binary, keepalive_requests=1_000_000) as ng,
    ):
        assert ng._proc is not None
        pin_server(ng._proc.pid)
        url = ng.url + "/small.txt"
        for _ in range(args.reps):
            for kind in KINDS:
                cmd = ["taskset", "-c", "1", sys.executable, __file__, "--n", str(args.n)]
                cmd += ["--uvloop"] if args.uvloop else []
                out = subprocess.run(
                    [*cmd, "--client", kind, url], capture_output=True, text=True, env=os.environ
                )
                if out.returncode:
                    print(f"{kind}: failed: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                us = json.loads(out.stdout)
                best[kind] = min(best.get(kind, us), us)
    print(f"CPU µs per request, sequential plain HTTP/1.1, {loop}, best of {args.reps}:")
    for kind, us in best.items():
        print(f"  {kind:14} {us:7.1f}")
    if "tether-async" in best:
        a = best["tether-async"]
        if "tether-sync" in best:
            print(f"  async/sync throughput ratio {best['tether-sync'] / a:.2f}x (target >= 0.8)")
        if "aiohttp" in best:
            print(f"  async/aiohttp ratio        {best['aiohttp'] / a:.2f}x (target >= 1.5)")


if __name__ == "__main__":
    main()
