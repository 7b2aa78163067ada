"""curl-style log lines from trace events: the logging module is one consumer of the trace.

At DEBUG the ``tether.connection`` logger says "connected to 127.0.0.1:8080 (#3)",
"re-using connection #3 (idle 0.42 s, request 7)", "connection #3 left intact" and
"closing connection #3: server closed idle connection"; ``tether.http`` names each request's
method and path (never its query string, headers or body) and the response status.

Pools install the log consumer when they are created and ``tether`` logs at DEBUG; a pool
made while DEBUG is off pays nothing for logging.
"""

from __future__ import annotations

import logging

from . import trace as t

__all__ = ["describe_event", "log_event", "log_tracer"]

connection_log = logging.getLogger("tether.connection")
http_log = logging.getLogger("tether.http")


def _host(address: tuple[str, int]) -> str:
    host = address[0]
    return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"


def describe_event(event: t.TraceEvent) -> str | None:
    """The line a curl user recognises for ``event`` (None for events too small to print)."""
    n = event.connection_id
    match event:
        case t.ConnectStart():
            return f"connecting to {event.origin}"
        case t.ConnectDone(address=address):
            return f"connected to {_host(address)} (#{n})"
        case t.TLSDone(version=version, alpn=alpn, seconds=seconds):
            return f"TLS {version} handshake in {seconds * 1000:.1f} ms, ALPN {alpn} (#{n})"
        case t.ConnectionReused(idle_time=idle, request_number=number):
            return f"re-using connection #{n} (idle {idle:.2f} s, request {number})"
        case t.StreamOpened(stream_id=sid):
            return f"stream {sid} opened on connection #{n}"
        case t.StreamReset(stream_id=sid, reason=reason):
            return f"stream {sid} reset on connection #{n}: {reason}"
        case t.GoawayReceived():
            return f"connection #{n}: server sent GOAWAY, no new streams"
        case t.ReleasedToPool():
            return f"connection #{n} left intact"
        case t.ConnectionClosed(reason=reason):
            return f"closing connection #{n}: {reason.value}"
        case t.Retry(method=method, why=why, error=error):
            return f"retrying {method} after {error} on connection #{n}: {why}"
        case t.RequestHeadersSent(method=method, path=path):
            return f"{method} {path} sent on connection #{n}"
        case t.ResponseHeadersReceived(status=status, http_version=version):
            return f"{version} {status} received on connection #{n}"
    return None


def log_event(event: t.TraceEvent) -> None:
    """Log ``event`` at DEBUG under ``tether.connection`` or ``tether.http``."""
    line = describe_event(event)
    if line is None:
        return
    request_line = isinstance(event, t.RequestHeadersSent | t.ResponseHeadersReceived)
    logger = http_log if request_line else connection_log
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(line)


def log_tracer(user: t.Tracer | None) -> t.Tracer | None:
    """The tracer a new pool installs: the user's, plus logging if ``tether`` logs at DEBUG."""
    logging_on = connection_log.isEnabledFor(logging.DEBUG) or http_log.isEnabledFor(logging.DEBUG)
    return t.combine(user, log_event if logging_on else None)
