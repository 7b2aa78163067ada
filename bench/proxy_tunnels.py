"""Through squid to an https nginx: how many CONNECT tunnels each client opens, and how fast.

    python3 bench/proxy_tunnels.py [--requests 200] [--threads 16]

Starts nginx (TLS, HTTP/1.1, the test suite's fixture) and squid (forward + CONNECT) on free
loopback ports, then for each client runs N sequential GETs, and N GETs from 16 threads (16
asyncio tasks for the async clients), each client with room for 16 pooled connections. It
counts, from the servers' own logs, the tunnels squid opened (one CONNECT line per tunnel,
written when it closes) and the TLS connections nginx accepted, and times the run. Every body
is checked. Clients: tether Session and AsyncSession, requests Session, httpx Client, aiohttp
(when installed). The numbers are printed as a Markdown table; nothing is typed in.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import trustme  # noqa: E402
from servers.nginx import SMALL_BODY, Nginx, find_nginx  # noqa: E402
from servers.proxies import Squid, find  # noqa: E402

import tether  # noqa: E402

Fetch = Callable[[str], bytes]


def tether_sync(proxy: str, ca: str) -> tuple[Fetch, Callable[[], None]]:
    s = tether.Session(proxy=proxy, verify=ca, pool_maxsize=16)
    return (lambda url: s.get(url).content), s.close


def requests_sync(proxy: str, ca: str) -> tuple[Fetch, Callable[[], None]]:
    import requests
    from requests.adapters import HTTPAdapter

    s = requests.Session()
    s.trust_env = False
    s.mount("https://", HTTPAdapter(pool_maxsize=16))
    s.proxies = {"https": proxy}
    s.verify = ca
    return (lambda url: s.get(url).content), s.close


def httpx_sync(proxy: str, ca: str) -> tuple[Fetch, Callable[[], None]]:
    import httpx

    ctx = ssl.create_default_context(cafile=ca)
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    c = httpx.Client(proxy=proxy, verify=ctx, limits=limits, trust_env=False)
    return (lambda url: c.get(url).content), c.close


async def tether_async(proxy: str, ca: str, urls: list[str], tasks: int) -> list[bytes]:
    async with tether.AsyncSession(proxy=proxy, verify=ca, pool_maxsize=16) as s:
        return await _gather(urls, tasks, lambda url: _content(s.get(url)))


async def aiohttp_async(proxy: str, ca: str, urls: list[str], tasks: int) -> list[bytes]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=16, ssl=ssl.create_default_context(cafile=ca))
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as s:

        async def get(url: str) -> bytes:
            async with s.get(url, proxy=proxy) as r:
                return await r.read()

        return await _gather(urls, tasks, get)


async def _content(pending: object) -> bytes:
    response = await pending  # type: ignore[misc]
    return bytes(response.content)


async def _gather(urls: list[str], tasks: int, get: Callable[[str], object]) -> list[bytes]:
    queue = list(reversed(urls))
    out: list[bytes] = []

    async def worker() -> None:
        while queue:
            out.append(await get(queue.pop()))  # type: ignore[misc]

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return out


def _tunnels(squid: Squid, before: int) -> int:
    # squid logs a tunnel when it closes: wait until the count stops moving.
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 0.5:
        now = len(squid.wait_for("CONNECT", 0)) - before
        if now != last:
            last, stable_since = now, time.monotonic()
        time.sleep(0.05)
    return last


def run(args: argparse.Namespace) -> None:
    if not (find_nginx() and find("squid")):
        sys.exit("needs nginx and squid (apt-get install nginx squid)")
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as d:
        nginx = Nginx(Path(d), binary=find_nginx() or "", ca=ca)
        with nginx, Squid(ca, find("squid") or "") as squid:
            url = nginx.url + "/"
            urls = [url] * args.requests
            ca_file = str(nginx.ca_file)
            proxy = squid.proxy_url()
            sync_clients = {"tether": tether_sync, "requests": requests_sync, "httpx": httpx_sync}
            async_clients = {"tether async": tether_async}
            try:
                import aiohttp  # noqa: F401

                async_clients["aiohttp"] = aiohttp_async
            except ImportError:
                pass
            rows = []
            for mode, workers in (("sequential", 1), (f"{args.threads} threads", args.threads)):
                for name, make in sync_clients.items():
                    rows.append(
                        measure(
                            name,
                            mode,
                            squid,
                            nginx,
                            urls,
                            lambda w=workers, m=make: _sync_run(m, proxy, ca_file, urls, w),
                        )
                    )
                for name, coro in async_clients.items():
                    rows.append(
                        measure(
                            name,
                            mode,
                            squid,
                            nginx,
                            urls,
                            lambda w=workers, c=coro: asyncio.run(c(proxy, ca_file, urls, w)),
                        )
                    )
    print(
        f"\n{args.requests} GETs of {len(SMALL_BODY)} bytes through squid (CONNECT) to nginx "
        "over TLS, HTTP/1.1\n"
    )
    print("| client | mode | tunnels opened (squid) | TLS connections (nginx) | requests/s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| {} | {} | {} | {} | {:.0f} |".format(*row))


def _sync_run(
    make: Callable[..., tuple[Fetch, Callable[[], None]]],
    proxy: str,
    ca: str,
    urls: list[str],
    workers: int,
) -> list[bytes]:
    fetch, close = make(proxy, ca)
    try:
        if workers == 1:
            return [fetch(u) for u in urls]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(fetch, urls))
    finally:
        close()


def measure(
    name: str,
    mode: str,
    squid: Squid,
    nginx: Nginx,
    urls: list[str],
    body: Callable[[], list[bytes]],
) -> tuple[str, str, int, int, float]:
    before_tunnels = len(squid.wait_for("CONNECT", 0))
    before_origin = len(nginx.access_log())
    started = time.perf_counter()
    bodies = body()
    elapsed = time.perf_counter() - started
    if bodies != [SMALL_BODY] * len(urls):
        raise SystemExit(f"{name} {mode}: wrong bodies")
    tunnels = _tunnels(squid, before_tunnels)
    entries = nginx.wait_for_requests(before_origin + len(urls))[before_origin:]
    origin_conns = len({e.connection for e in entries})
    return name, mode, tunnels, origin_conns, len(urls) / elapsed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    run(parser.parse_args())
