"""One request's facts on one connection: what was written, when the response started.

A connection may carry many exchanges at once (HTTP/2 streams), so nothing about a single
request lives on the connection. The pool's brain creates an ``Exchange`` when it assigns a
request to a connection; the connection's driver fills in what happened; the retry verdict
and ``ConnectionInfo`` are read from it.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import NetworkError, TransportError
from .rules import (
    MAX_REUSED_RETRIES,
    MAX_UNPROCESSED_RETRIES,
    CloseReason,
    closed_before_request,
    should_retry,
)

__all__ = ["Attempts", "Exchange"]


class Exchange:
    """A request's turn on a connection (an HTTP/1.1 cycle or an HTTP/2 stream).

    Set by the brain: ``conn``, ``request_number`` (1 for the connection's first request),
    ``streams_in_flight`` (this one included, when it started) and ``idle_time`` (how long the
    connection sat idle before it). Set by the driver: ``stream_id`` (HTTP/2), ``wrote_any``,
    ``response_started``, ``sent_at``, ``ttfb`` and ``unprocessed`` (the server promised it did
    not process the request: HTTP/2 GOAWAY above its last stream id, or REFUSED_STREAM).

    The first-contact race (``rules.closed_before_request``): the brain sets ``watch_reset``
    (the rule is on, Linux); an HTTP/1.1 driver then records ``one_send`` (the wire bytes of
    the request's only send, 0 if it took more), and on an EOF before any response byte
    ``eof_first``, ``one_segment`` (that send fits one TCP segment) and ``reset_after_eof`` (a
    reset within ``rules.reset_wait`` of the EOF). ``probe``:
    the connection was idle past the learned idle timeout (``IdleTimeoutLearner``).
    """

    __slots__ = (
        "assigned_at",
        "conn",
        "done_at",
        "eof_first",
        "idle_time",
        "one_segment",
        "one_send",
        "probe",
        "request_number",
        "reset_after_eof",
        "response_started",
        "sent_at",
        "stream",
        "stream_id",
        "streams_in_flight",
        "ttfb",
        "unprocessed",
        "watch_reset",
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
        self.assigned_at = 0.0  # when the brain gave it a connection (set there)
        self.done_at = 0.0  # when the brain saw it end (0.0: not yet)
        self.watch_reset = False
        self.one_send = 0
        self.one_segment = False
        self.eof_first = False
        self.reset_after_eof = False
        self.probe = False

    @property
    def reused(self) -> bool:
        return self.request_number > 1

    @property
    def closed_before_request(self) -> bool:
        """The connection proved that the server closed before this request reached it."""
        return closed_before_request(
            reused=self.reused,
            eof_before_response=self.eof_first and not self.response_started,
            reset_after_eof=self.reset_after_eof,
            one_segment=self.one_segment,
        )

    def close_reason(self, otherwise: CloseReason) -> CloseReason:
        """Why this exchange's failed connection is closed: ``otherwise`` unless proven above."""
        return CloseReason.SERVER_CLOSED_BEFORE_REQUEST if self.closed_before_request else otherwise

    def may_retry(self, replayable: bool, network_failure: bool) -> bool:
        """May the failed request be sent again on another connection?

        Always when the server said it did not process it (HTTP/2) or the connection proved it
        never reached the server (``closed_before_request``); otherwise Go's rule
        (``rules.should_retry``), for network failures only.
        """
        if self.unprocessed:
            return True
        if network_failure and self.closed_before_request:
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
    out dead allows Go's retry (or the first-contact race's, whatever the method) while each
    failure is on a reused connection, at most ``maxsize + 1`` times (every pooled connection
    stale, then a fresh one; capped at ``MAX_REUSED_RETRIES``). A fresh connection's failure
    is never retried, so the loop ends at the first one. Both bodies use this one object.
    """

    __slots__ = ("dead", "dead_budget", "failed", "fresh", "reached", "retries", "unprocessed")

    def __init__(self, maxsize: int = 1) -> None:
        self.retries = 0  # what connection_info.retries says
        self.unprocessed = 0
        self.dead = 0
        self.dead_budget = min(max(1, maxsize) + 1, MAX_REUSED_RETRIES)
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
            allowed = self.dead < self.dead_budget and exchange.may_retry(
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
            if not exchange.closed_before_request:  # proven not to have reached it
                self.reached |= error.may_have_reached_server
        return allowed
