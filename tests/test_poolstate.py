"""The pool's brain on its own: orders, single-flight dials, streams, stops. No sockets, no clock.

A fake connection has exactly the attributes ``PoolState`` reads; every decision is checked
through what a body would do next (the order's action) and through the public counters.
"""

from __future__ import annotations

from tether.lifecycle.poolstate import Action, PoolState
from tether.lifecycle.rules import CloseReason, Limits, expiry


class Conn:
    """A connection as the brain sees it."""

    def __init__(self, multiplexed: bool, stream_limit: int = 1, now: float = 0.0) -> None:
        self.multiplexed = multiplexed
        self.stream_limit = stream_limit
        self.requests = self.in_flight = 0
        self.accepting = True
        self.stop_reason: CloseReason | None = None
        self.created_at = self.idle_since = now
        self.expires_at = float("inf")
        self.expiry_reason: CloseReason | None = None
        self.hangup_seen = False
        self.server_timeout = None
        self.server_max = None
        self.rtt = 0.0

    def go_idle(self, now: float, limits: Limits, learned: float | None) -> CloseReason | None:
        self.idle_since = now
        self.expires_at, self.expiry_reason = expiry(self, limits, learned)  # type: ignore[arg-type]
        return self.expiry_reason if self.expires_at <= now else None


def brain(
    multiplexing: bool, maxsize: int = 10, block: bool = False, **limits: object
) -> PoolState[Conn]:
    return PoolState(maxsize, block, Limits(**limits), multiplexing)  # type: ignore[arg-type]


def test_sixteen_orders_share_one_dial_when_http2_is_possible() -> None:
    state = brain(multiplexing=True)
    doomed: list[tuple[Conn, CloseReason]] = []
    woke: list[int] = []
    first = state.checkout(0.0, False, doomed)
    assert first.action is Action.DIAL
    others = [state.checkout(0.0, False, doomed, lambda i=i: woke.append(i)) for i in range(15)]
    assert all(o.action is Action.WAIT for o in others)  # no second dial
    conn = Conn(multiplexed=True, stream_limit=100)
    state.dialed(first, conn, 0.0, doomed)
    assert woke == list(range(15))  # FIFO
    assert all(o.exchange is not None and o.exchange.conn is conn for o in others)
    assert conn.in_flight == 16 and state.stats().connections_opened == 1
    assert [o.exchange.streams_in_flight for o in others][-1] == 16  # type: ignore[union-attr]
    assert state.stats().peak_streams == 16


def test_past_the_stream_limit_another_connection_is_dialled_or_the_order_waits() -> None:
    state = brain(multiplexing=True, maxsize=1, block=True)
    doomed: list[tuple[Conn, CloseReason]] = []
    first = state.checkout(0.0, False, doomed)
    conn = Conn(multiplexed=True, stream_limit=2)
    state.dialed(first, conn, 0.0, doomed)
    second = state.checkout(0.0, False, doomed)
    assert second.action is Action.REUSE and not second.needs_check  # busy: being read
    third = state.checkout(0.0, False, doomed)
    assert third.action is Action.WAIT  # at the limit, and maxsize=1 with block
    assert first.exchange is not None
    state.finish(first.exchange, 1.0, doomed)
    assert third.action is Action.REUSE and third.exchange.conn is conn  # type: ignore[union-attr]


def test_an_http11_answer_ends_single_flight_and_waiters_dial_their_own() -> None:
    state = brain(multiplexing=True)
    doomed: list[tuple[Conn, CloseReason]] = []
    first = state.checkout(0.0, False, doomed)
    waiting = [state.checkout(0.0, False, doomed) for _ in range(3)]
    state.dialed(first, Conn(multiplexed=False), 0.0, doomed)  # ALPN chose http/1.1
    assert [o.action for o in waiting] == [Action.DIAL] * 3
    assert state.dialing == 3


def test_goaway_stops_new_streams_and_closes_when_the_last_one_ends() -> None:
    state = brain(multiplexing=True)
    doomed: list[tuple[Conn, CloseReason]] = []
    first = state.checkout(0.0, False, doomed)
    conn = Conn(multiplexed=True, stream_limit=100)
    state.dialed(first, conn, 0.0, doomed)
    second = state.checkout(0.0, False, doomed)
    state.stop(conn, CloseReason.GOAWAY, 0.0, doomed)
    assert doomed == []  # two streams still in flight
    nxt = state.checkout(0.0, False, doomed)
    assert nxt.action is Action.DIAL  # not onto the connection that said goodbye
    state.finish(first.exchange, 0.0, doomed)  # type: ignore[arg-type]
    state.finish(second.exchange, 0.0, doomed)  # type: ignore[arg-type]
    assert doomed == [(conn, CloseReason.GOAWAY)]
    assert state.stats().goaways == 1 and state.stats().closes == {"GOAWAY": 1}


def test_a_raised_stream_limit_serves_waiters() -> None:
    state = brain(multiplexing=True, maxsize=1, block=True)
    doomed: list[tuple[Conn, CloseReason]] = []
    first = state.checkout(0.0, False, doomed)
    conn = Conn(multiplexed=True, stream_limit=1)
    state.dialed(first, conn, 0.0, doomed)
    waiter = state.checkout(0.0, False, doomed)
    assert waiter.action is Action.WAIT
    conn.stream_limit = 10  # the server's SETTINGS
    state.changed(conn, 0.0, doomed)
    assert waiter.action is Action.REUSE


def test_busy_multiplexed_connection_honours_max_lifetime() -> None:
    state = brain(multiplexing=True, max_lifetime=10.0)
    doomed: list[tuple[Conn, CloseReason]] = []
    first = state.checkout(0.0, False, doomed)
    conn = Conn(multiplexed=True, stream_limit=100)
    state.dialed(first, conn, 0.0, doomed)
    later = state.checkout(11.0, False, doomed)
    assert later.action is Action.DIAL  # never idle, but too old for new streams
    state.finish(first.exchange, 11.0, doomed)  # type: ignore[arg-type]
    assert doomed == [(conn, CloseReason.MAX_LIFETIME)]


def test_cancel_and_give_back_leave_nothing_reserved() -> None:
    state = brain(multiplexing=False, maxsize=1, block=True)
    doomed: list[tuple[Conn, CloseReason]] = []
    first = state.checkout(0.0, False, doomed)
    waiter = state.checkout(0.0, False, doomed)
    assert state.cancel(waiter)  # timed out: out of the queue
    conn = Conn(multiplexed=False)
    state.dialed(first, conn, 0.0, doomed)
    late = state.checkout(0.0, False, doomed)
    state.finish(first.exchange, 1.0, doomed)  # type: ignore[arg-type]
    assert late.action is Action.REUSE  # filled as its caller gave up ...
    assert not state.cancel(late)  # ... so cancel says so, and it is given back
    state.give_back(late, 1.0, doomed)
    stats = state.stats()
    assert (stats.in_use, stats.idle, stats.requests) == (0, 1, 1)


def test_a_closed_slot_lets_the_oldest_waiter_dial() -> None:
    state = brain(multiplexing=False, maxsize=1, block=True)
    doomed: list[tuple[Conn, CloseReason]] = []
    first = state.checkout(0.0, False, doomed)
    conn = Conn(multiplexed=False)
    state.dialed(first, conn, 0.0, doomed)
    waiter = state.checkout(0.0, False, doomed)
    conn.accepting, conn.stop_reason = False, CloseReason.NOT_PERSISTENT  # Connection: close
    state.finish(first.exchange, 0.0, doomed)  # type: ignore[arg-type]
    assert doomed == [(conn, CloseReason.NOT_PERSISTENT)]
    assert waiter.action is Action.DIAL
