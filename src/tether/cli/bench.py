"""``tether bench URL -n N -c C``: a bounded load run over one session.

``C`` threads share one `Session` (one HTTP/2 connection with ``--http2``) and send ``N``
requests in all, or as many as fit in ``--duration`` seconds. Prints requests per second,
latency percentiles, connections opened, the reuse ratio and errors by kind.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from typing import Any

from ..client.session import Session
from ..exceptions import TetherError
from .output import Output
from .tlsargs import verify_from

__all__ = ["add_arguments", "percentile", "run_bench"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tether bench``'s options."""
    parser.add_argument("url", metavar="URL")
    parser.add_argument("-n", type=int, default=1000, metavar="N", help="requests (default 1000)")
    parser.add_argument("-c", type=int, default=4, metavar="C", help="concurrency (default 4)")
    parser.add_argument("--http2", action="store_true", help="HTTP/2 (h2c for http://)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--json", dest="json_out", action="store_true", help="one JSON document")


def percentile(sorted_values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of already sorted values (0.0 if none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil without floats drifting
    return sorted_values[int(rank) - 1]


class _Run:
    """The shared counters of one run (under a lock: the threads report into it)."""

    def __init__(self, total: int, deadline: float | None) -> None:
        self.lock = threading.Lock()
        self.left = total
        self.deadline = deadline
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0 or (self.deadline is not None and time.monotonic() >= self.deadline):
                return False
            self.left -= 1
            return True


def run_bench(args: argparse.Namespace, out: Output) -> int:
    """Run the load, then print (or emit as JSON) what it measured."""
    if args.n < 1 or args.c < 1:
        raise SystemExit("tether bench: -n and -c must be at least 1")
    http2: Any = False
    if args.http2:
        http2 = True if args.url.startswith("https:") else "prior-knowledge"
    started = time.monotonic()
    run = _Run(args.n, started + args.duration if args.duration else None)
    with (
        Session(http2=http2, verify=verify_from(args), pool_maxsize=args.c) as session,
        out.progress("bench", args.n) as bar,
    ):

        def worker() -> None:
            while run.take():
                began = time.monotonic()
                try:
                    r = session.get(args.url)
                    kind = None if r.status < 500 else f"HTTP {r.status}"
                except TetherError as exc:
                    kind, r = type(exc).__name__, None
                took = time.monotonic() - began
                with run.lock:
                    if kind is None and r is not None:
                        run.latencies.append(took)
                        run.statuses[r.status] += 1
                    else:
                        run.errors[kind or "error"] += 1
                bar.advance()

        threads = [threading.Thread(target=worker, name=f"bench-{i}") for i in range(args.c)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        stats = session.stats()
    result = _result(run, stats, wall, args)
    _print(out, result)
    out.document(result)
    return 0 if not run.errors else 1


def _result(run: _Run, stats: Any, wall: float, args: argparse.Namespace) -> dict[str, Any]:
    lat = sorted(run.latencies)
    done = len(lat) + sum(run.errors.values())
    return {
        "url": args.url,
        "requests": done,
        "ok": len(lat),
        "concurrency": args.c,
        "seconds": round(wall, 6),
        "rps": round(done / wall, 2) if wall > 0 else 0.0,
        "latency_ms": {
            name: round(percentile(lat, p) * 1000, 3)
            for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
        "connections_opened": stats.connections_opened,
        "reuse_ratio": round(stats.reuse_ratio, 4),
        "retries": stats.retries,
        "closes": stats.closes,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "errors": dict(run.errors),
    }


def _print(out: Output, r: dict[str, Any]) -> None:
    lat = r["latency_ms"]
    out.line(
        f"{r['requests']} requests in {r['seconds']:.2f} s over {r['concurrency']} "
        f"thread(s): {r['rps']:.0f} requests/s",
        style="bold",
    )
    out.line(
        f"latency  p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f} ms  "
        f"p99 {lat['p99']:.2f} ms  max {lat['max']:.2f} ms"
    )
    out.line(
        f"connections opened {r['connections_opened']}, reuse {r['reuse_ratio']:.1%}, "
        f"retries {r['retries']}, closes {r['closes'] or '{}'}"
    )
    errors = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "none"
    out.line(f"errors   {errors}", style="red" if r["errors"] else None)
