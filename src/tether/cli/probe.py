"""``tether probe URL``: what a person needs to configure a client for a server, measured.

Every answer comes from requests tether sends and the trace events of its connections:

- keep-alive: does a second request ride the first one's connection?
- protocols: ALPN h2 / http/1.1 on https, h2c (prior knowledge) on http, max concurrent streams;
- what the server announces (``Server``, ``Connection``, ``Keep-Alive``);
- the real idle timeout: idle gaps on a fresh connection, growing (1, 2, 4 s...) then bisected,
  within ``--max-wait`` seconds of waiting in all. A server that closes an idle connection
  (FIN) is seen closing it by tether's idle watcher, which times the close itself; a server
  that drops it silently is found by the next request failing (tether's retry);
- requests per connection: up to ``--max-requests`` on one connection, noting whether the
  server announced the end (``Connection: close``, ``Keep-Alive: max``, GOAWAY) or just closed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ..client.session import Session
from ..exceptions import TetherError
from ..lifecycle import trace as tr
from ..lifecycle.rules import CloseReason, Limits, server_deadline
from .output import Output, Progress
from .tlsargs import verify_from

__all__ = ["add_arguments", "run_probe"]

# Closes by which a server ends a connection after some requests, and whether it said so first.
_ANNOUNCED = {CloseReason.NOT_PERSISTENT, CloseReason.KEEP_ALIVE_MAX, CloseReason.GOAWAY}
_UNANNOUNCED = {CloseReason.SERVER_CLOSED, CloseReason.SERVER_CLOSED_IDLE}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tether probe``'s options."""
    parser.add_argument("url", metavar="URL")
    parser.add_argument(
        "--max-wait", type=float, default=30.0, help="seconds of idle waiting in all (default 30)"
    )
    parser.add_argument(
        "--max-requests", type=int, default=200, help="requests on one connection (default 200)"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.25, help="bisection stops this close (seconds)"
    )
    parser.add_argument("--json", dest="json_out", action="store_true", help="one JSON document")


class _Events:
    """A tracer that keeps every event, for the measurements to read."""

    def __init__(self) -> None:
        self.events: list[tr.TraceEvent] = []

    def __call__(self, event: tr.TraceEvent) -> None:
        self.events.append(event)

    def closes(self) -> list[tr.ConnectionClosed]:
        return [e for e in self.events if isinstance(e, tr.ConnectionClosed)]


def _session(args: argparse.Namespace, events: _Events, **kwargs: Any) -> Session:
    # No client-side idle limit: the server's behaviour is what is measured.
    return Session(
        verify=verify_from(args), trace=events, limits=Limits(idle_timeout=None), **kwargs
    )


def _basics(args: argparse.Namespace) -> dict[str, Any]:
    events = _Events()
    with _session(args, events, pool_maxsize=1) as s:
        r1 = s.get(args.url)
        r2 = s.get(args.url)
    heads = {name: r1.headers.get(name) for name in ("server", "connection", "keep-alive")}
    return {
        "status": r1.status,
        "keep_alive": r2.connection_info.reused,
        "connections": sum(isinstance(e, tr.ConnectDone) for e in events.events),
        "announced": {k: v for k, v in heads.items() if v is not None},
        "rtt": min(r1.connection_info.ttfb, r2.connection_info.ttfb),
        "tls_version": r1.connection_info.tls_version,
    }


def _protocols(args: argparse.Namespace) -> dict[str, Any]:
    https = args.url.startswith("https:")
    found: dict[str, Any] = {"h2": False, "h2c": False, "alpn": None, "max_streams": None}
    events = _Events()
    try:
        with _session(args, events, http2=True if https else "prior-knowledge", timeout=5.0) as s:
            r = s.get(args.url)
    except TetherError as exc:
        found["h2_error"] = f"{type(exc).__name__}: {exc}"
        return found
    info = r.connection_info
    found["alpn"] = info.alpn_protocol
    if info.protocol == "h2":
        found["h2c" if not https else "h2"] = True
        found["max_streams"] = info.max_concurrent_streams
    return found


def _gap(
    args: argparse.Namespace, gap: float, bar: Progress, spent: Callable[[float], None]
) -> tuple[bool, float | None]:
    """One idle gap on a fresh connection: (alive after it, the close time if seen)."""
    events = _Events()
    with _session(args, events, pool_maxsize=1) as s:
        s.get(args.url)
        released = next((e.at for e in events.events if isinstance(e, tr.ReleasedToPool)), None)
        if released is None:  # the server did not keep this one: nothing to wait on
            return False, None
        began = time.monotonic()
        while (waited := time.monotonic() - began) < gap:
            idle_close = [c for c in events.closes() if c.reason is CloseReason.SERVER_CLOSED_IDLE]
            if idle_close:
                spent(waited)
                return False, idle_close[0].at - released
            time.sleep(min(0.01, gap - waited))
            bar.update(note=f"idle gap {gap:.2f} s: {waited:.1f} s")
        spent(gap)
        r = s.get(args.url)
    return r.connection_info.reused and not r.connection_info.retries, None


def _idle_timeout(args: argparse.Namespace, out: Output) -> dict[str, Any]:
    """Growing gaps until the server closes, then bisection; ``--max-wait`` bounds the waiting."""
    budget = args.max_wait
    left = [budget]

    def spent(seconds: float) -> None:
        left[0] -= seconds
        bar.advance(seconds)

    alive_at, dead_at, seen, gaps = 0.0, None, None, []
    with out.progress("idle timeout", budget) as bar:
        gap = 1.0
        while dead_at is None and gap <= left[0]:
            alive, seen = _gap(args, gap, bar, spent)
            gaps.append((gap, alive))
            if seen is not None:
                break
            if alive:
                alive_at, gap = gap, gap * 2
            else:
                dead_at = gap
        while seen is None and dead_at is not None and dead_at - alive_at > args.tolerance:
            gap = (alive_at + dead_at) / 2
            if gap > left[0]:
                break
            alive, seen = _gap(args, gap, bar, spent)
            gaps.append((gap, alive))
            if alive:
                alive_at = gap
            else:
                dead_at = gap
    found: dict[str, Any] = {"gaps": [{"seconds": g, "alive": a} for g, a in gaps]}
    if seen is not None:
        found.update(timeout=round(seen, 3), how="observed: the server closed the idle connection")
    elif dead_at is not None:
        found.update(
            timeout=round((alive_at + dead_at) / 2, 3),
            between=[alive_at, dead_at],
            how="bisected: the server dropped idle connections without a close tether saw",
        )
    else:
        found.update(timeout=None, alive_after=alive_at, how=f"no close within {budget:g} s")
    return found


def _requests_limit(args: argparse.Namespace, out: Output) -> dict[str, Any]:
    events = _Events()
    with (
        out.progress("requests per connection", args.max_requests) as bar,
        _session(args, events, pool_maxsize=1) as s,
    ):
        for _ in range(args.max_requests):
            r = s.get(args.url)
            bar.advance()
            ended = [c for c in events.closes() if c.reason in _ANNOUNCED | _UNANNOUNCED]
            if ended or r.connection_info.retries:
                break
    retried = sum(isinstance(e, tr.Retry) for e in events.events)
    if not ended:
        return {"limit": None, "tried": args.max_requests, "retries": retried}
    close = ended[0]
    return {
        "limit": close.requests,
        "close": close.reason.name,
        "announced": close.reason in _ANNOUNCED,
        "retries": retried,
    }


def run_probe(args: argparse.Namespace, out: Output) -> int:
    """Measure, print, recommend."""
    if args.max_wait <= 0 or args.max_requests < 1 or args.tolerance <= 0:
        raise SystemExit("tether probe: --max-wait, --max-requests and --tolerance must be > 0")
    out.line(f"probing {args.url}", style="bold")
    try:
        basics = _basics(args)
    except TetherError as exc:
        out.line(f"error: {type(exc).__name__}: {exc}", style="bold red")
        out.document({"url": args.url, "error": type(exc).__name__, "message": str(exc)})
        return 1
    report: dict[str, Any] = {"url": args.url, **basics, "protocols": _protocols(args)}
    _print_basics(out, report)
    if basics["keep_alive"]:
        report["idle"] = _idle_timeout(args, out)
        _print_idle(out, report["idle"])
        report["requests_per_connection"] = _requests_limit(args, out)
        _print_limit(out, report["requests_per_connection"])
    report["recommendations"] = recommend(report)
    out.line("recommendation:", style="bold")
    for line in report["recommendations"]:
        out.line(f"  - {line}", style="green")
    out.document(report)
    return 0


def _print_basics(out: Output, report: dict[str, Any]) -> None:
    p = report["protocols"]
    out.line(f"  status            {report['status']}")
    out.line(f"  keep-alive        {'yes' if report['keep_alive'] else 'no'}")
    if report["tls_version"]:
        out.line(f"  TLS               {report['tls_version']}, ALPN {p['alpn'] or 'none'}")
    h2 = "h2 (ALPN)" if p["h2"] else ("h2c (prior knowledge)" if p["h2c"] else "no")
    out.line(f"  HTTP/2            {h2}")
    if p["max_streams"]:
        out.line(f"  max streams       {p['max_streams']} concurrent")
    for name, value in report["announced"].items():
        out.line(f"  {name + ':':<17} {value}")


def _print_idle(out: Output, idle: dict[str, Any]) -> None:
    gaps = ", ".join(f"{g['seconds']:g} s {'ok' if g['alive'] else 'closed'}" for g in idle["gaps"])
    timeout = idle["timeout"]
    shown = f"{timeout:.2f} s" if timeout is not None else "none seen"
    out.line(f"  idle timeout      {shown} ({idle['how']}; gaps: {gaps})")


def _print_limit(out: Output, limit: dict[str, Any]) -> None:
    if limit["limit"] is None:
        out.line(f"  requests/conn     no limit in {limit['tried']} requests")
        return
    said = "announced" if limit["announced"] else "not announced"
    out.line(f"  requests/conn     {limit['limit']} ({said}: {limit['close'].lower()})")


def recommend(report: dict[str, Any]) -> list[str]:
    """Advice from the measurements (pure: tests call it on any report)."""
    tips: list[str] = []
    if not report["keep_alive"]:
        tips.append(
            "this server closes every connection after its response: no client can reuse "
            "connections here; each request pays a new TCP (and TLS) handshake"
        )
        return tips
    idle = report.get("idle", {})
    timeout = idle.get("timeout")
    if timeout is not None:
        below = max(server_deadline(timeout, report["rtt"]), 0.0)
        tips.append(
            f"set idle_timeout below {below:.1f} s (tether.Limits(idle_timeout={below:.1f})); "
            "tether also learns it from the first idle close it sees"
        )
    else:
        tips.append(f"no idle close within the probe's wait: {idle.get('how', 'not measured')}")
    limit = report.get("requests_per_connection", {})
    if limit.get("limit"):
        n = limit["limit"]
        if limit["announced"]:
            tips.append(
                f"this server closes after {n} requests and says so on the last response: "
                "tether opens a new connection in time, with no error"
            )
        else:
            tips.append(
                f"this server closes after {n} requests without saying so: tether retries "
                "idempotent requests safely; requests users will see RemoteDisconnected"
            )
    p = report["protocols"]
    if p["h2"] or p["h2c"]:
        how = "http2=True" if p["h2"] else 'http2="prior-knowledge"'
        tips.append(
            f"HTTP/2 is available: Session({how}) carries up to {p['max_streams']} requests "
            "at once on one connection"
        )
    return tips
