"""POSTs lost in the keep-alive race behind a latency proxy that forwards resets as resets.

    PYTHONPATH=src python3 bench/first_contact_race.py [--posts M] [--first N]

A TestServer closes connections idle ``--idle`` seconds (never announced); a DelayProxy adds
``--delay`` each way and forwards a FIN and a reset that follows it as they are. A POST sent
just before the server's close reaches it just after: the server's kernel resets it, while the
client has not yet seen the FIN. Two measures per client:

* first contact: ``--first`` fresh clients, each sends one POST at the racy gap after a GET,
  before anything could be learned;
* a run: ``--posts`` POSTs on one client at gaps across the window.

tether (and tether with ``Limits(retry_closed_before_request=False)``: "tether-off") against
whichever of requests, urllib3 and httpx are installed (stock clients, as they ship).
Prints "lost N of M" per client and measure.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from tether import ConnectionPool, Limits
from tether.testing import DelayProxy, TestServer

Post = Callable[[bytes], int]


@contextlib.contextmanager
def tether_client(url: str, rule: bool = True) -> Iterator[tuple[Post, Callable[[], int]]]:
    host, port = url.removeprefix("http://").split(":")
    limits = Limits(retry_closed_before_request=rule)
    with ConnectionPool(host, int(port), timeout=5.0, limits=limits) as pool:
        yield (
            lambda body: pool.request("POST", "/echo", body=body).status,
            lambda: pool.request("GET", "/").status,
        )


@contextlib.contextmanager
def requests_client(url: str) -> Iterator[tuple[Post, Callable[[], int]]]:
    import requests

    with requests.Session() as s:
        yield (
            lambda body: s.post(f"{url}/echo", data=body, timeout=5).status_code,
            lambda: s.get(f"{url}/", timeout=5).status_code,
        )


@contextlib.contextmanager
def urllib3_client(url: str) -> Iterator[tuple[Post, Callable[[], int]]]:
    import urllib3

    with urllib3.PoolManager(retries=False) as pm:
        yield (
            lambda body: pm.request("POST", f"{url}/echo", body=body).status,
            lambda: pm.request("GET", f"{url}/").status,
        )


@contextlib.contextmanager
def httpx_client(url: str) -> Iterator[tuple[Post, Callable[[], int]]]:
    import httpx

    with httpx.Client(timeout=5.0) as c:
        yield (
            lambda body: c.post(f"{url}/echo", content=body).status_code,
            lambda: c.get(f"{url}/").status_code,
        )


CLIENTS: dict[str, tuple[Callable[[str], contextlib.AbstractContextManager[Any]], str]] = {
    "tether": (tether_client, "tether"),
    "tether-off": (lambda url: tether_client(url, rule=False), "tether"),
    "requests": (requests_client, "requests"),
    "urllib3": (urllib3_client, "urllib3"),
    "httpx": (httpx_client, "httpx"),
}


def _post(post: Post) -> bool:
    """True if the POST was lost (an error instead of an answer)."""
    try:
        return post(b"x" * 100) != 200
    except Exception:  # each client's own error types (tether: RequestError)
        return True


def measure(name: str, url: str, first: int, posts: int, gaps: list[float]) -> tuple[int, int]:
    factory = CLIENTS[name][0]
    lost_first = 0
    for i in range(first):
        with factory(url) as (post, get):
            get()
            time.sleep(gaps[i % len(gaps)])
            lost_first += _post(post)
    lost_run = 0
    with factory(url) as (post, get):
        get()
        for i in range(posts):
            time.sleep(gaps[i % len(gaps)])
            lost_run += _post(post)
    return lost_first, lost_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=float, default=0.5, help="server idle close, seconds")
    parser.add_argument("--delay", type=float, default=0.02, help="proxy delay each way")
    parser.add_argument("--first", type=int, default=6, help="first-contact trials")
    parser.add_argument("--posts", type=int, default=12, help="POSTs in the run")
    args = parser.parse_args()
    # Gaps whose POST reaches the server after its close, before the client sees the FIN.
    d, idle = args.delay, args.idle
    gaps = [idle - 1.5 * d, idle - 1.2 * d, idle - 0.8 * d, idle - 0.5 * d]
    names = [n for n, (_, mod) in CLIENTS.items() if importlib.util.find_spec(mod) is not None]
    print(f"server closes idle {idle}s, proxy {d * 1000:.0f} ms each way, resets forwarded")
    print(f"gaps after the last response: {', '.join(f'{g:.3f}' for g in gaps)} s")
    with (
        TestServer(idle_close_after=idle) as server,
        DelayProxy(("127.0.0.1", server.port), delay=d) as proxy,
    ):
        url = f"http://127.0.0.1:{proxy.port}"
        for name in names:
            lost_first, lost_run = measure(name, url, args.first, args.posts, gaps)
            print(
                f"{name:9} first contact: lost {lost_first} of {args.first}   "
                f"run: lost {lost_run} of {args.posts}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
