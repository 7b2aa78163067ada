"""One request's facts on one connection: what was written, when the response started.

A connection may carry many exchanges at once (HTTP/2 streams), so nothing about a single
request lives on the connection. The pool's brain creates an ``Exchange`` when it assigns a
request to a connection; the connection's driver fills in what happened; the retry verdict
and ``ConnectionInfo`` are read from it.
"""

from __future__ import annotations

from typing import Any

from .rules import should_retry

__all__ = ["Exchange"]


class Exchange:
    """A request's turn on a connection (an HTTP/1.1 cycle or an HTTP/2 stream).

    Set by the brain: ``conn``, ``request_number`` (1 for the connection's first request),
    ``streams_in_flight`` (this one included, when it started) and ``idle_time`` (how long the
    connection sat idle before it). Set by the driver: ``stream_id`` (HTTP/2), ``wrote_any``,
    ``response_started``, ``ttfb`` and ``unprocessed`` (the server promised it did not process
    the request: HTTP/2 GOAWAY above its last stream id, or REFUSED_STREAM).
    """

    __slots__ = (
        "conn",
        "idle_time",
        "request_number",
        "response_started",
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
