"""``tether get``: requests over one session; ``-v`` shows heads and what each connection did.

With ``-v`` every request prints the connection lines a curl user knows, in the order things
happened ("* connected to 127.0.0.1:8080 (#1)", "* re-using connection #1 (idle 0.42 s,
request 2)", "* connection #1 left intact"), the request head (">") and the response head
("<"). Credentials and cookie values are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..client.session import Session
from ..exceptions import TetherError
from ..lifecycle import trace as tr
from ..lifecycle.tracelog import describe_event
from ..response import Response
from .output import Output, redact
from .tlsargs import verify_from

__all__ = ["add_arguments", "run_get"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tether get``'s options (curl's letters where curl has one)."""
    parser.add_argument("urls", nargs="+", metavar="URL")
    parser.add_argument("-v", "--verbose", action="store_true", help="heads and connection lines")
    parser.add_argument(
        "-H", "--header", action="append", default=[], metavar="'Name: value'", help="add a header"
    )
    parser.add_argument("-X", "--request", dest="method", help="method (default GET, or POST)")
    parser.add_argument("-d", "--data", help="request body (sent as it is)")
    parser.add_argument("--json", dest="json_body", metavar="DATA", help="JSON request body")
    parser.add_argument("--http2", action="store_true", help="offer HTTP/2 (h2c for http://)")
    parser.add_argument("-n", type=int, default=1, metavar="N", help="send each URL N times")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the body to FILE")
    parser.add_argument("--report-json", action="store_true", help="print one JSON document")


class _Transcript:
    """Collects one request's trace events, printed in order once its response is in."""

    def __init__(self) -> None:
        self.events: list[tr.TraceEvent] = []

    def __call__(self, event: tr.TraceEvent) -> None:
        self.events.append(event)

    def take(self) -> list[tr.TraceEvent]:
        events, self.events = self.events, []
        return events


def _headers(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"tether get: -H wants 'Name: value', got {value!r}")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def run_get(args: argparse.Namespace, out: Output) -> int:
    """Send every request; print what the user asked for; 0 if every response came back."""
    if args.n < 1:
        raise SystemExit("tether get: -n must be at least 1")
    transcript = _Transcript()
    # --http2: ALPN on https; h2c (prior knowledge) when every URL is plain http.
    http2: Any = "prior-knowledge" if all(u.startswith("http:") for u in args.urls) else True
    method = args.method or ("POST" if args.data is not None or args.json_body else "GET")
    body: Any = args.data.encode() if args.data is not None else None
    json_body = json.loads(args.json_body) if args.json_body else None
    headers = _headers(args.header)
    results: list[dict[str, Any]] = []
    failures = 0
    started = time.monotonic()
    with Session(
        http2=http2 if args.http2 else False,
        verify=verify_from(args),
        trace=transcript if args.verbose or out.json_mode else None,
    ) as session:
        for url in args.urls:
            for _ in range(args.n):
                try:
                    r = session.request(
                        method,
                        url,
                        data=body,
                        json=json_body,
                        headers=headers,
                        stream=args.output is not None,
                    )
                    if args.output is not None:
                        _download(r, args.output, out)
                except TetherError as exc:
                    failures += 1
                    _print_events(out, transcript.take(), None)
                    out.line(f"error: {type(exc).__name__}: {exc}", style="bold red")
                    results.append({"url": url, "error": type(exc).__name__, "message": str(exc)})
                    continue
                events = transcript.take()
                if args.verbose:
                    _print_events(out, events, r)
                if args.output is None:
                    out.line(r.text.rstrip("\n"))
                results.append(_result(r, events))
        stats = session.stats()
    if args.verbose:
        _print_events(out, transcript.take(), None)  # the closes at the session's end
    wall = time.monotonic() - started
    _summary(out, stats, results, wall, to_stderr=not args.verbose)
    out.document({"requests": results, "summary": _summary_data(stats, results, wall)})
    return 1 if failures else 0


def _print_events(out: Output, events: list[tr.TraceEvent], r: Response | None) -> None:
    """Connection lines before the request head, the heads, then what followed."""
    head_done = False
    for event in events:
        if isinstance(event, tr.RequestHeadersSent) and r is not None and not head_done:
            _request_head(out, r)
            _response_head(out, r)
            head_done = True
            continue
        if isinstance(event, tr.RequestHeadersSent | tr.ResponseHeadersReceived):
            continue
        line = describe_event(event)
        if line is not None and not isinstance(event, tr.ConnectStart):
            out.line(f"* {line}", style="cyan")
    if r is not None and not head_done:
        _request_head(out, r)
        _response_head(out, r)


def _request_head(out: Output, r: Response) -> None:
    request = r.request
    version = "HTTP/2" if r.http_version == "HTTP/2" else "HTTP/1.1"
    out.line(f"> {request.method} {request.url.target} {version}", style="bold")
    out.line(f"> Host: {request.url.host_header}")
    for name, value in request.headers.items():
        if name.lower() != "host":
            out.line(f"> {name}: {redact(name, value)}")
    out.line(">")


def _response_head(out: Output, r: Response) -> None:
    out.line(f"< {r.http_version} {r.status} {r.reason}", style="bold green")
    for name, value in r.headers.items():
        out.line(f"< {name}: {redact(name, value)}")
    out.line("<")


def _download(r: Response, path: str, out: Output) -> None:
    total = r.headers.get("content-length")
    size = int(total) if total and total.isdigit() else None
    with open(path, "wb") as f, out.progress(f"-> {path}", size) as bar:
        for chunk in r.iter_bytes():
            f.write(chunk)
            bar.advance(len(chunk))


def _result(r: Response, events: list[tr.TraceEvent]) -> dict[str, Any]:
    i = r.connection_info
    return {
        "url": str(r.url),
        "status": r.status,
        "http_version": r.http_version,
        "connection": i.connection_id,
        "reused": i.reused,
        "request_number": i.request_number,
        "idle_time": round(i.idle_time, 6),
        "retries": i.retries,
        "elapsed": round(r.elapsed_seconds, 6),
        "ttfb": round(i.ttfb, 6),
        "events": [type(e).__name__ for e in events],
    }


def _summary_data(stats: Any, results: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    done = [r for r in results if "status" in r]
    ttfbs = sorted(r["ttfb"] for r in done)
    return {
        "requests": len(results),
        "errors": len(results) - len(done),
        "connections_opened": stats.connections_opened,
        "reuse_ratio": round(stats.reuse_ratio, 4),
        "retries": stats.retries,
        "closes": stats.closes,
        "seconds": round(wall, 6),
        "median_ttfb": ttfbs[len(ttfbs) // 2] if ttfbs else None,
    }


def _summary(
    out: Output, stats: Any, results: list[dict[str, Any]], wall: float, to_stderr: bool
) -> None:
    s = _summary_data(stats, results, wall)
    ttfb = s["median_ttfb"]
    line = (
        f"* {s['requests']} request(s), {s['connections_opened']} connection(s) opened, "
        f"reuse {stats.reuse_ratio:.0%}, {s['errors']} error(s), {wall * 1000:.0f} ms"
        + (f", median time to first byte {ttfb * 1000:.1f} ms" if ttfb else "")
    )
    if out.json_mode:
        return
    if to_stderr:  # the body alone goes to stdout: `tether get URL > file` stays clean
        print(line, file=sys.stderr)
    else:
        out.line(line, style="bold")
