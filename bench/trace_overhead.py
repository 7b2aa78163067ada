"""What tracing costs: client CPU microseconds per request with no hook, a no-op hook, a
collecting hook and DEBUG logging, over sequential keep-alive requests to a local server.

    PYTHONPATH=src python3 bench/trace_overhead.py [-n 3000] [--rounds 5] [--no-hooks]

The server (tether.testing.TestServer) runs in a child process, so ``time.process_time``
counts the client's CPU only. Rounds interleave the variants; the median round is printed.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import tether

SERVER = (
    "import sys, time\n"
    "from tether.testing import TestServer\n"
    "with TestServer() as s:\n"
    "    print(s.port, flush=True)\n"
    "    sys.stdin.read()\n"
)


def cpu_per_request(port: int, n: int, trace: Callable[[Any], None] | None) -> float:
    kwargs = {"trace": trace} if trace is not None else {}  # --no-hooks: a tree without trace=
    with tether.ConnectionPool("127.0.0.1", port, **kwargs) as pool:
        for _ in range(50):  # warm up: the connection, caches
            pool.request("GET", "/")
        began = time.process_time()
        for _ in range(n):
            pool.request("GET", "/")
        return (time.process_time() - began) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--no-hooks", action="store_true", help="only 'no hook' (to compare with an older tree)"
    )
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        kept: list[Any] = []
        log = logging.getLogger("tether")
        handler = logging.NullHandler()
        variants: dict[str, Callable[[], float]] = {
            "no hook": lambda: cpu_per_request(port, args.n, None),
            "no-op hook": lambda: cpu_per_request(port, args.n, lambda e: None),
            "collecting hook": lambda: cpu_per_request(port, args.n, kept.append),
        }

        def with_logging() -> float:
            log.setLevel(logging.DEBUG)
            log.addHandler(handler)
            try:
                return cpu_per_request(port, args.n, None)
            finally:
                log.removeHandler(handler)
                log.setLevel(logging.NOTSET)

        variants["DEBUG logging (NullHandler)"] = with_logging
        if args.no_hooks:
            variants = {"no hook": variants["no hook"]}
        results: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, measure in variants.items():
                results[name].append(measure())
                kept.clear()
        base = statistics.median(results["no hook"])
        print(f"{args.n} sequential GETs x {args.rounds} rounds, client CPU per request:")
        for name, values in results.items():
            median = statistics.median(values)
            print(f"  {name:<28} {median:7.1f} us  ({median - base:+6.1f} us vs no hook)")
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
