"""One request's facts on one connection: what was written, when the response started.

A connection may carry many exchanges at once (HTTP/2 streams), so nothing about a single
request lives on the connection. The pool's brain creates an ``Exchange`` when it assigns a
request to a connection; the connection's driver fills in what happened; the retry verdict
and ``ConnectionInfo`` are read from it.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import NetworkError, TransportError
from .rules import MAX_UNPROCESSED_RETRIES, should_retry

__all__ = ["Attempts", "Exchange"]


class Exchange:
    """A request's turn on a connection (an HTTP/1.1 cycle or an HTTP/2 stream).

    Set by the brain: ``conn``, ``request_number`` (1 for the connection's first request),
    ``streams_in_flight`` (this one included, when it started) and ``idle_time`` (how long the
    connection sat idle before it). Set by the driver: ``stream_id`` (HTTP/2), ``wrote_any``,
    ``response_started``, ``sent_at``, ``ttfb`` and ``unprocessed`` (the server promised it did
    not process the request: HTTP/2 GOAWAY above its last stream id, or REFUSED_STREAM).
    """

    __slots__ = (
        "conn",
        "idle_time",
        "request_number",
        "response_started",
        "sent_at",
        "stream",
        "stream_id",
        "streams_in_flight",
        "ttfb",
        "unprocessed",
        "wrote_any",
    )

    def __init__(self, conn: Any, request_number: int, in_flight: int, idle_time: float) -> None:
        self.conn = conn
        self.request_number = request_number
        self.streams_in_flight = in_flight
        self.idle_time = idle_time
        self.stream_id = 0
        self.stream: Any = None  # the driver's per-stream state (HTTP/2)
        self.wrote_any = False
        self.response_started = False
        self.unprocessed = False
        self.ttfb = 0.0
        self.sent_at = 0.0  # the clock when the request was written (the driver sets it)

    @property
    def reused(self) -> bool:
        return self.request_number > 1

    def may_retry(self, replayable: bool, network_failure: bool) -> bool:
        """May the failed request be sent again on another connection?

        Always when the server said it did not process it; otherwise Go's rule
        (``rules.should_retry``), for network failures only.
        """
        if self.unprocessed:
            return True
        return network_failure and should_retry(
            reused=self.reused,
            response_started=self.response_started,
            wrote_any=self.wrote_any,
            replayable=replayable,
        )

    def __repr__(self) -> str:
        return (
            f"<Exchange conn #{getattr(self.conn, 'id', '?')} request {self.request_number} "
            f"stream {self.stream_id}>"
        )


class Attempts:
    """One request's attempts: whether the rules allow another, and what to tell the user.

    Two budgets, kept apart so that one kind of retry never uses up the other: streams the
    server promised it never processed (GOAWAY, REFUSED_STREAM) may be sent again up to
    ``MAX_UNPROCESSED_RETRIES`` times, whatever the method; a reused connection that turned
    out dead allows Go's retry once. Both bodies (threads and asyncio) use this one object.
    """

    __slots__ = ("dead", "failed", "fresh", "reached", "retries", "unprocessed")

    def __init__(self) -> None:
        self.retries = 0  # what connection_info.retries says
        self.unprocessed = 0
        self.dead = 0
        self.fresh = False  # the next attempt wants a new connection (after a dead one)
        self.failed: TransportError | None = None  # the latest attempt's error
        self.reached = False  # may any earlier attempt have reached the server?

    def retry(self, exchange: Exchange, replayable: bool, error: TransportError) -> bool:
        """After ``exchange`` failed with ``error``: send the request again?"""
        if exchange.unprocessed:
            allowed = self.unprocessed < MAX_UNPROCESSED_RETRIES
            if allowed:
                self.unprocessed += 1
        else:
            allowed = self.dead == 0 and exchange.may_retry(
                replayable, isinstance(error, NetworkError)
            )
            if allowed:
                self.dead += 1
        if allowed:
            self.retries += 1
            # A stream the server never processed may go on any healthy connection (after a
            # GOAWAY that one takes no new streams; after REFUSED_STREAM it may carry the retry
            # itself); a dead reused one asks for a new connection.
            self.fresh = not exchange.unprocessed
            self.failed = error
            self.reached |= error.may_have_reached_server
        return allowed
