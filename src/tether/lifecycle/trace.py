"""What happens to connections, as typed events: ``Session(trace=callback)`` receives them.

Every event is a frozen dataclass with ``at`` (the pool's monotonic clock, seconds), ``origin``
(``"http://127.0.0.1:8080"``) and ``connection_id`` (the ``#n`` of ``connection_info``; 0 for a
connection not made yet). The pool's brain emits the events it decides (reuse, release, GOAWAY,
retry); the sync and asyncio bodies emit the I/O facts (connect, TLS, request sent, response
received and done, stream reset, close). A callback runs on the thread (or in the task) doing
the work, so it must be quick and must not raise; an exception it raises is the caller's.

No event carries a header value, a query string or a body: a trace may be logged as it is.
With no callback installed, each event site costs one ``is None`` test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .dialplan import DialAttempt
from .rules import CloseReason

__all__ = [
    "ConnectDone",
    "ConnectStart",
    "ConnectionClosed",
    "ConnectionReused",
    "DNSDone",
    "GoawayReceived",
    "ReleasedToPool",
    "RequestBodySent",
    "RequestHeadersSent",
    "ResponseDone",
    "ResponseHeadersReceived",
    "Retry",
    "StreamOpened",
    "StreamReset",
    "TLSDone",
    "TLSStart",
    "TraceEvent",
    "Tracer",
    "combine",
    "connected",
    "exchanged",
    "reset",
    "retry_reason",
]


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """Base of every event: when, for which origin, on which connection."""

    at: float
    origin: str
    connection_id: int


@dataclass(frozen=True, slots=True)
class ConnectStart(TraceEvent):
    """A new connection is being dialed (``connection_id`` is 0: it has none yet)."""


@dataclass(frozen=True, slots=True)
class DNSDone(TraceEvent):
    """The host name resolved (``seconds``; 0.0 for an IP literal or a proxied dial's own)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class ConnectDone(TraceEvent):
    """TCP connected: ``address`` is the server's (ip, port), ``dns`` and ``connect`` seconds;
    ``attempts`` every address the dial tried, in order, with what became of it (happy
    eyeballs: the winner is ``"connected"``, the others ``"abandoned"`` or their error)."""

    address: tuple[str, int]
    local_address: tuple[str, int]
    dns: float
    connect: float
    attempts: tuple[DialAttempt, ...] = ()


@dataclass(frozen=True, slots=True)
class TLSStart(TraceEvent):
    """The TLS handshake began (https only)."""


@dataclass(frozen=True, slots=True)
class TLSDone(TraceEvent):
    """The TLS handshake ended: ``version`` ("TLSv1.3"), ``alpn`` ("h2", "http/1.1" or None)."""

    version: str | None
    alpn: str | None
    seconds: float


@dataclass(frozen=True, slots=True)
class ConnectionReused(TraceEvent):
    """A request takes a connection that carried one before: ``idle_time`` seconds idle (0.0
    for a busy HTTP/2 connection), ``request_number`` on it (2, 3, ...)."""

    idle_time: float
    request_number: int


@dataclass(frozen=True, slots=True)
class StreamOpened(TraceEvent):
    """An HTTP/2 stream carries the request."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class RequestHeadersSent(TraceEvent):
    """The request is written: ``method`` and ``path`` (without the query string). ``at`` is
    when the writing ended: HTTP/1.1 writes the head and a bytes body in one call, so this event
    and `RequestBodySent` share it."""

    method: str
    path: str
    stream_id: int


@dataclass(frozen=True, slots=True)
class RequestBodySent(TraceEvent):
    """The request body is written (only for requests with a body)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class ResponseHeadersReceived(TraceEvent):
    """The response head arrived (``at`` is the first response byte)."""

    status: int
    http_version: str
    stream_id: int


@dataclass(frozen=True, slots=True)
class ResponseDone(TraceEvent):
    """The response body was read to its end (or drained on close)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset(TraceEvent):
    """An HTTP/2 stream ended before its response did (``reason``: what happened)."""

    stream_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class GoawayReceived(TraceEvent):
    """The server sent GOAWAY: the connection takes no new streams."""


@dataclass(frozen=True, slots=True)
class ReleasedToPool(TraceEvent):
    """The connection went back to the pool, idle and reusable, after ``requests`` requests."""

    requests: int


@dataclass(frozen=True, slots=True)
class ConnectionClosed(TraceEvent):
    """The connection was closed, for ``reason``, after ``requests`` requests."""

    reason: CloseReason
    requests: int


@dataclass(frozen=True, slots=True)
class Retry(TraceEvent):
    """A failed request is sent again; ``connection_id`` is the failed one, ``why`` the rule
    that made resending safe, ``error`` the failure's type."""

    method: str
    why: str
    error: str


Tracer = Callable[[TraceEvent], None]


def combine(*tracers: Tracer | None) -> Tracer | None:
    """One tracer calling each given one in turn (None if none is given)."""
    given = [t for t in tracers if t is not None]
    if not given:
        return None
    if len(given) == 1:
        return given[0]

    def both(event: TraceEvent) -> None:
        for tracer in given:
            tracer(event)

    return both


def retry_reason(unprocessed: bool) -> str:
    """Why the retry rules allowed a request to be sent again."""
    if unprocessed:
        return "the server said it did not process the request (GOAWAY or REFUSED_STREAM)"
    return "a reused connection failed before any response byte and the request is replayable"


# -- the I/O facts, emitted by both bodies from what their drivers recorded --------------------


def connected(tracer: Tracer, origin: str, conn: Any, started: float) -> None:
    """A dial that began at ``started`` made ``conn``: its connect and TLS events."""
    timings = conn.timings
    tcp_done = started + timings.dns + timings.connect
    n = conn.id
    tracer(DNSDone(started + timings.dns, origin, n, timings.dns))
    tracer(
        ConnectDone(
            tcp_done,
            origin,
            n,
            conn.remote_address,
            conn.local_address,
            timings.dns,
            timings.connect,
            tuple(getattr(timings, "attempts", ())),
        )
    )
    if timings.tls or conn.tls[0] is not None:
        tracer(TLSStart(tcp_done, origin, n))
        version, _, alpn = conn.tls
        tracer(TLSDone(tcp_done + timings.tls, origin, n, version, alpn, timings.tls))


def exchanged(tracer: Tracer, origin: str, exchange: Any, request: Any, head: Any) -> None:
    """A request was written and its response head read: the events in between."""
    n = exchange.conn.id
    sid = exchange.stream_id
    sent = exchange.sent_at
    if sid:
        tracer(StreamOpened(sent, origin, n, sid))
    path = request.url.target.partition("?")[0]  # a query string may carry a token
    tracer(RequestHeadersSent(sent, origin, n, request.method, path, sid))
    if request.body:
        tracer(RequestBodySent(sent, origin, n, sid))
    tracer(
        ResponseHeadersReceived(
            sent + exchange.ttfb, origin, n, head.status, head.http_version, sid
        )
    )


def reset(tracer: Tracer, origin: str, exchange: Any, why: str, now: float) -> None:
    """An HTTP/2 stream ended early; one whose response never began was not reported opened
    yet (``exchanged`` runs once the head is in), so it is now, before its reset."""
    n, sid = exchange.conn.id, exchange.stream_id
    if not exchange.response_started:
        tracer(StreamOpened(exchange.sent_at or now, origin, n, sid))
    tracer(StreamReset(now, origin, n, sid, why))
