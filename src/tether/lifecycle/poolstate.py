"""A pool's bookkeeping and decisions, with no lock, no waiting and no I/O.

This is the pool's brain, the same for HTTP/1.1 and HTTP/2, for the threaded body
(`sync.pool`) and the asyncio one: each body holds its lock around every call, does the
waiting and the socket work, and nothing else. Every decision lives here once: which
connection carries a request, when to dial and when to wait, whether a connection is kept,
what is counted.

A connection says how many exchanges it may carry at once (``stream_limit``: 1 for HTTP/1.1,
the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` for HTTP/2) and whether it takes new ones at
all (``accepting``: False after ``Connection: close``, a GOAWAY, an error). The brain counts
what it carries (``in_flight``) and so knows its spare capacity.

How a request gets a connection (``checkout``). It is an *order*, filled by whichever comes
first (Go's ``wantConn``):

1. A multiplexed connection already busy with a spare stream: no liveness check needed, it is
   being read.
2. The most recently used idle connection (the warmest; the oldest age out at the bottom of the
   stack). One whose lifecycle deadline has passed is retired on the way. The caller checks,
   outside its lock, that its socket is still quiet (``dead_on_checkout`` if not).
3. If a dial is in progress that may yield HTTP/2 (the protocol is not known to be HTTP/1.1),
   wait for it: 16 threads starting at once share one dial instead of opening 16 connections.
4. Dial, unless ``block`` is set and ``maxsize`` connections exist: then wait in FIFO order for
   a freed stream or connection.

How an exchange ends (``finish``): the connection's in-flight count drops; a connection that
stopped accepting is closed once empty; a healthy one serves the oldest waiting order first,
and otherwise, once empty, goes idle (with its expiry fixed once) if there is room.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from .exchange import Exchange
from .rules import CloseReason, IdleTimeoutLearner, Limits, expiry
from .trace import (
    ConnectionReused,
    GoawayReceived,
    ReleasedToPool,
    Retry,
    Tracer,
    retry_reason,
)

__all__ = ["Action", "Order", "PoolFacts", "PoolState", "PoolStats", "Pooled"]


class Pooled(Protocol):
    """What the pool's brain needs from a connection (HTTP/1.1 or HTTP/2)."""

    id: int  # unique in the process: the "#n" of logs and traces
    requests: int  # exchanges it has been given (the brain counts)
    in_flight: int  # exchanges it carries now (the brain counts)
    multiplexed: bool  # may carry several at once (HTTP/2)
    stream_limit: int  # how many at once: 1, or the server's max concurrent streams
    accepting: bool  # may take new exchanges
    stop_reason: CloseReason | None  # why it stopped accepting: its close reason
    created_at: float
    idle_since: float
    expires_at: float
    expiry_reason: CloseReason | None
    hangup_seen: bool  # the watcher reported a hang-up while it was busy: check on finish

    def go_idle(self, now: float, limits: Limits, learned: float | None) -> CloseReason | None: ...


C = TypeVar("C", bound=Pooled)


class Action(enum.Enum):
    """What a filled order asks its caller to do."""

    REUSE = "use order.exchange (an idle connection: check its liveness first)"
    DIAL = "open a new connection (a slot is reserved: report with dialed or dial_failed)"
    WAIT = "wait until the order is filled (or time out and cancel it)"


class Order:
    """A request waiting for a connection: filled by a freed stream or a completed dial."""

    __slots__ = ("dial", "exchange", "fresh", "needs_check", "replayable", "wake")

    def __init__(
        self, fresh: bool, wake: Callable[[], None] | None, replayable: bool = False
    ) -> None:
        self.fresh = fresh  # a retry: not an idle connection, they may be stale too
        self.replayable = replayable  # may probe a connection idle past the learned bound
        self.wake = wake  # called (under the caller's lock) when filled while waiting
        self.exchange: Exchange | None = None
        self.dial = False
        self.needs_check = False  # the connection was idle: liveness check before use

    @property
    def action(self) -> Action:
        if self.dial:
            return Action.DIAL
        return Action.REUSE if self.exchange is not None else Action.WAIT


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters (or a pool manager's: the sum over its pools).

    ``connections_opened`` counts every TCP connect (reconnects included), ``requests`` every
    request sent (retries included), ``reuses`` the requests that rode a connection that had
    carried one before (HTTP/2: every stream after a connection's first), ``retries`` the
    requests sent again, ``closes`` how many connections were closed for each ``CloseReason``
    (by name). HTTP/2: ``streams_in_flight`` now, ``peak_streams`` the most carried at once on
    one connection, ``goaways`` received, ``unprocessed_retries`` the retries of streams the
    server promised it never processed (GOAWAY, REFUSED_STREAM). ``user_retries``: the
    requests a session sent again because its ``retries=`` policy said so (a 503, a failed
    connect); pools leave it 0. ``tunnels_opened`` counts the connections that were tunnels
    through a proxy (CONNECT or SOCKS), each one handshake.

    ``learned_idle_timeout``: the server's idle timeout tether learned from its closes (the
    shortest, over origins); ``keep_alive``: what the server announced in ``Keep-Alive``
    ("timeout=5, max=100"), if anything. ``by_origin``: the same numbers for each origin
    (``"http://127.0.0.1:8080"``); ``describe()`` prints them as a table.
    """

    open: int
    idle: int
    in_use: int
    connections_opened: int
    requests: int
    reuses: int
    retries: int
    closes: dict[str, int] = field(default_factory=dict)
    streams_in_flight: int = 0
    peak_streams: int = 0
    goaways: int = 0
    unprocessed_retries: int = 0
    user_retries: int = 0
    tunnels_opened: int = 0
    learned_idle_timeout: float | None = None
    keep_alive: str | None = None
    # Not compared nor in the repr: two runs against different ports count the same.
    by_origin: dict[str, PoolStats] = field(default_factory=dict, compare=False, repr=False)

    @property
    def reuse_ratio(self) -> float:
        """The share of requests that rode an already used connection (0.0 with none)."""
        return self.reuses / self.requests if self.requests else 0.0

    def __add__(self, other: PoolStats) -> PoolStats:
        closes = Counter(self.closes)
        closes.update(other.closes)
        by_origin = dict(self.by_origin)
        for origin, stats in other.by_origin.items():
            mine = by_origin.get(origin)
            by_origin[origin] = stats if mine is None else mine + stats
        learned = [t for t in (self.learned_idle_timeout, other.learned_idle_timeout) if t]
        return PoolStats(
            self.open + other.open,
            self.idle + other.idle,
            self.in_use + other.in_use,
            self.connections_opened + other.connections_opened,
            self.requests + other.requests,
            self.reuses + other.reuses,
            self.retries + other.retries,
            dict(closes),
            self.streams_in_flight + other.streams_in_flight,
            max(self.peak_streams, other.peak_streams),
            self.goaways + other.goaways,
            self.unprocessed_retries + other.unprocessed_retries,
            self.user_retries + other.user_retries,
            self.tunnels_opened + other.tunnels_opened,
            min(learned) if learned else None,
            other.keep_alive or self.keep_alive,
            by_origin,
        )

    def history(self) -> PoolStats:
        """What was done, without what is held now (for a pool that is gone)."""
        return replace(
            self,
            open=0,
            idle=0,
            in_use=0,
            streams_in_flight=0,
            by_origin={o: s.history() for o, s in self.by_origin.items()},
        )

    def describe(self) -> str:
        """The counters per origin as a plain-text table (``print(session.stats().describe())``)."""
        from .statsview import describe

        return describe(self)

    def __rich__(self) -> Any:
        """The same table for rich (``rich.print(session.stats())``); needs ``tether[cli]``."""
        from .statsview import rich_table

        return rich_table(self)


Doomed = list[tuple[C, CloseReason]]


class PoolState(Generic[C]):
    """Connections, waiting orders, limits and counters of one pool. Not thread-safe by itself.

    ``multiplexing``: the pool may get HTTP/2 connections (ALPN or prior knowledge), so dials
    are single-flight until the first one says which protocol the server speaks. ``learner``:
    the origin's idle-timeout learner, shared with the other pools of the origin (a pool
    manager's ``LearnerTable``); a pool of its own otherwise.
    """

    def __init__(
        self,
        maxsize: int,
        block: bool,
        limits: Limits,
        multiplexing: bool,
        tracer: Tracer | None = None,
        origin: str = "",
        learner: IdleTimeoutLearner | None = None,
        tunneled: bool = False,
    ) -> None:
        self.maxsize = max(1, maxsize)
        self.tracer = tracer  # see lifecycle.trace: the events decided here are emitted here
        self.origin = origin
        self.block = block
        self.limits = limits
        self.idle: list[C] = []  # a stack: most recently used last
        self.active: set[C] = set()  # carrying at least one exchange
        self.shared: list[C] = []  # multiplexed, active, accepting: may take another stream
        self.waiters: deque[Order] = deque()
        self.dialing = 0
        self.dialing_shared = 0  # dials that may yield a multiplexed connection
        self.single_flight = multiplexing
        self.closed = False
        self.tunneled = tunneled  # every connection is a proxy tunnel (counted as such)
        self.learner = learner if learner is not None else IdleTimeoutLearner()
        self._generation = self.learner.generation  # the bound this pool's deadlines used
        self.opened = self.requests = self.reuses = self.retries = 0
        self.goaways = self.unprocessed_retries = self.peak_streams = 0
        self.closes: Counter[CloseReason] = Counter()
        self.keep_alive: str | None = None  # the latest Keep-Alive header's terms

    # -- getting a connection -----------------------------------------------------------------

    def checkout(
        self,
        now: float,
        fresh: bool,
        doomed: Doomed[C],
        wake: Callable[[], None] | None = None,
        replayable: bool = False,
    ) -> Order:
        """An order for a connection: filled now (REUSE or DIAL) or queued (WAIT).

        ``replayable``: the request may be sent again if its connection is dead, so it may
        probe an idle connection past the learned idle timeout (``IdleTimeoutLearner``).
        """
        if self.learner.generation != self._generation:
            self._refresh_deadlines()  # another pool of this origin learned a new bound
        order = Order(fresh, wake, replayable)
        if not self._fill(order, now, doomed):
            self.waiters.append(order)
        return order

    def cancel(self, order: Order) -> bool:
        """The caller stops waiting (timeout, interruption). False if it was filled meanwhile."""
        if order.action is not Action.WAIT:
            return False
        try:
            self.waiters.remove(order)
        except ValueError:
            pass
        return True

    def give_back(self, order: Order, now: float, doomed: Doomed[C]) -> None:
        """A filled order its caller can no longer use (it was interrupted)."""
        if order.dial:
            self.dial_failed(order, now, doomed)
        elif order.exchange is not None:
            self.requests -= 1
            if order.exchange.reused:
                self.reuses -= 1
            self.finish(order.exchange, now, doomed)

    def _fill(self, order: Order, now: float, doomed: Doomed[C]) -> bool:
        if not order.fresh:
            for conn in self.shared:
                if conn.in_flight < conn.stream_limit and self._fit_for_more(conn, now, doomed):
                    self._assign(order, conn, now, was_idle=False)
                    return True
            idle = self.idle
            while idle:
                conn = idle.pop()
                if now >= conn.expires_at:
                    if self._may_probe(order, conn, now):
                        self._assign(order, conn, now, was_idle=True)
                        assert order.exchange is not None
                        order.exchange.probe = self.learner.probing = True
                        return True
                    doomed.append((conn, self._count_close(conn.expiry_reason)))
                    continue
                self._assign(order, conn, now, was_idle=True)
                return True
            if self.dialing_shared:
                return False  # the dial in progress will likely carry this request too
        if self.block and self.open_count() >= self.maxsize:
            if not (order.fresh and self.idle):
                return False
            # A retry needs a new connection but the pool is full: retire an idle one.
            oldest = self.idle.pop(0)
            doomed.append((oldest, self._count_close(CloseReason.POOL_FULL)))
        order.dial = True
        self.dialing += 1
        if self.single_flight:
            self.dialing_shared += 1
        return True

    def _may_probe(self, order: Order, conn: C, now: float) -> bool:
        # For a replayable request, on a connection retired by the learned bound only, idle
        # well past the bound (``PROBE_FACTOR``): where the hypothesis predicts a close for
        # sure. Below the bound a probe tests nothing; just past it, it would often meet the
        # very close the bound's margin avoids, and cost a retried request.
        if conn.expiry_reason is not CloseReason.LEARNED_IDLE_TIMEOUT or not order.replayable:
            return False
        learner = self.learner
        if not learner.may_probe(now) or learner.timeout is None:
            return False
        if now - conn.idle_since <= learner.timeout * learner.PROBE_FACTOR:
            return False
        return now < expiry(conn, self.limits, None)[0]  # type: ignore[arg-type]

    def _fit_for_more(self, conn: C, now: float, doomed: Doomed[C]) -> bool:
        # A busy multiplexed connection has no idle deadline; the request limit and the
        # lifetime still apply (it stops taking streams and closes when its last one ends).
        limits = self.limits
        if limits.max_requests is not None and conn.requests >= limits.max_requests:
            self._stop(conn, CloseReason.MAX_REQUESTS, doomed)
            return False
        if limits.max_lifetime is not None and now - conn.created_at >= limits.max_lifetime:
            self._stop(conn, CloseReason.MAX_LIFETIME, doomed)
            return False
        return True

    def _assign(self, order: Order, conn: C, now: float, was_idle: bool) -> None:
        conn.in_flight += 1
        conn.requests += 1
        self.requests += 1
        if conn.requests > 1:
            self.reuses += 1
        if conn.in_flight == 1:
            self.active.add(conn)
            if conn.multiplexed and conn.accepting:
                self.shared.append(conn)
        if conn.in_flight > self.peak_streams:
            self.peak_streams = conn.in_flight
        idle_time = now - conn.idle_since if was_idle else 0.0
        exchange = order.exchange = Exchange(conn, conn.requests, conn.in_flight, idle_time)
        exchange.assigned_at = now
        exchange.watch_reset = self.limits.retry_closed_before_request and not conn.multiplexed
        if self.tracer is not None and conn.requests > 1:
            self.tracer(ConnectionReused(now, self.origin, conn.id, idle_time, conn.requests))
        order.needs_check = was_idle

    def dead_on_checkout(
        self, order: Order, reason: CloseReason, now: float, doomed: Doomed[C]
    ) -> None:
        """The idle connection of a REUSE order failed its liveness check: this order carried
        nothing on it. It is closed now, or (HTTP/2: other orders took streams on it meanwhile)
        once their streams end: a GOAWAY still lets the streams it covers finish."""
        exchange = order.exchange
        assert exchange is not None
        conn: C = exchange.conn
        self.requests -= 1
        if exchange.reused:
            self.reuses -= 1
        conn.in_flight -= 1
        conn.requests -= 1
        if conn.in_flight == 0:
            self.active.discard(conn)
        if exchange.probe:
            exchange.probe = self.learner.probing = False
            if reason is CloseReason.SERVER_CLOSED_IDLE:
                self._probe_ended(exchange, conn, now)  # found closed: the bound held
        elif reason is CloseReason.SERVER_CLOSED_IDLE:
            self._learn(now - conn.idle_since)
        if conn.accepting:
            self._stop(conn, reason, doomed)
        elif conn.in_flight == 0:  # stopped during the check (a GOAWAY it read): close now
            doomed.append((conn, self._count_close(conn.stop_reason)))
        self._serve_waiters(now, doomed)

    def dialed(self, order: Order, conn: C, now: float, doomed: Doomed[C]) -> None:
        """The order's dial succeeded: the new connection carries its request, and may serve
        the orders that waited for it."""
        self._dial_over()
        self.opened += 1
        self.single_flight = conn.multiplexed  # the server's answer: HTTP/2 or not
        order.dial = False
        self._assign(order, conn, now, was_idle=False)
        self._serve_waiters(now, doomed)

    def dial_failed(self, order: Order, now: float, doomed: Doomed[C]) -> None:
        order.dial = False
        self._dial_over()
        self._serve_waiters(now, doomed)  # those who waited for this dial may dial themselves

    def _dial_over(self) -> None:
        self.dialing -= 1
        if self.dialing_shared:
            self.dialing_shared -= 1

    # -- after an exchange --------------------------------------------------------------------

    def finish(self, exchange: Exchange, now: float, doomed: Doomed[C]) -> None:
        """An exchange ended (complete, failed or abandoned): account for its connection.

        A connection that stopped accepting closes once empty; a healthy one goes to the
        oldest waiting order or, once empty, back to the idle stack if there is room.
        """
        conn: C = exchange.conn
        exchange.done_at = now
        if exchange.probe:
            exchange.probe = False
            self._probe_ended(exchange, conn, now)
        elif exchange.reused and exchange.eof_first and not exchange.response_started:
            # EOF instead of an answer on a connection that had sat idle: an idle close, seen
            # the hard way (whether or not the reset proved the request never arrived).
            self._learn(exchange.idle_time)
        conn.in_flight -= 1
        if conn.in_flight == 0:
            self.active.discard(conn)
            if conn.multiplexed and conn in self.shared:
                self.shared.remove(conn)
        if self.closed and conn.accepting:
            self._stop(conn, CloseReason.POOL_CLOSED, doomed)
        elif not conn.accepting:
            if conn in self.shared:
                self.shared.remove(conn)
            if conn.in_flight == 0:
                doomed.append((conn, self._count_close(conn.stop_reason)))
        elif conn.in_flight == 0:
            self._idle_or_close(conn, now, doomed)
            return
        self._serve_waiters(now, doomed)  # a freed stream, or a freed slot to dial in

    def _idle_or_close(self, conn: C, now: float, doomed: Doomed[C]) -> None:
        reason = conn.go_idle(now, self.limits, self.learner.timeout)
        if reason is not None:
            doomed.append((conn, self._count_close(reason)))
            self._serve_waiters(now, doomed)
            return
        if self.tracer is not None and (self.waiters or len(self.idle) < self.maxsize):
            self.tracer(ReleasedToPool(now, self.origin, conn.id, conn.requests))
        if self.waiters:
            self.idle.append(conn)  # the oldest order takes it (as a warm idle connection)
            self._serve_waiters(now, doomed)
            return
        if len(self.idle) >= self.maxsize:
            doomed.append((conn, self._count_close(CloseReason.POOL_FULL)))
            return
        self.idle.append(conn)
        # The bottom of the stack is the oldest: retire it here when its time is up, so a
        # connection never reused under light load does not linger.
        oldest = self.idle[0]
        if now >= oldest.expires_at:
            del self.idle[0]
            doomed.append((oldest, self._count_close(oldest.expiry_reason)))

    def stop(self, conn: C, reason: CloseReason, now: float, doomed: Doomed[C]) -> None:
        """``conn`` must take no new exchange (GOAWAY, a connection error, an abandoned
        exchange): closed now if empty, else when its last exchange finishes."""
        if reason is CloseReason.GOAWAY:
            self.goaways += 1
            if self.tracer is not None:
                self.tracer(GoawayReceived(now, self.origin, conn.id))
        # Busy: the reason is counted when its last exchange finishes; idle: closed now. (An
        # idle one that stopped accepting was closed and counted already.)
        if conn.in_flight or conn.accepting:
            self._stop(conn, reason, doomed)
        self._serve_waiters(now, doomed)  # they may need another connection now

    def _stop(self, conn: C, reason: CloseReason, doomed: Doomed[C]) -> None:
        conn.accepting = False
        conn.stop_reason = reason
        if conn in self.shared:
            self.shared.remove(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.in_flight == 0:
            doomed.append((conn, self._count_close(reason)))

    def changed(self, conn: C, now: float, doomed: Doomed[C]) -> None:
        """``conn``'s stream limit changed (the server's SETTINGS): waiters may fit now."""
        self._serve_waiters(now, doomed)

    def retried(
        self, exchange: Exchange, now: float, method: str, error: BaseException | None = None
    ) -> None:
        """``exchange`` failed and its request is sent again (the rules allowed it)."""
        self.retries += 1
        if exchange.unprocessed:
            self.unprocessed_retries += 1
        if self.tracer is not None:
            why = retry_reason(exchange.unprocessed)
            kind = type(error).__name__ if error is not None else "failure"
            self.tracer(Retry(now, self.origin, exchange.conn.id, method, why, kind))

    def _serve_waiters(self, now: float, doomed: Doomed[C]) -> None:
        waiters = self.waiters
        while waiters and not self.closed:
            order = waiters[0]
            if not self._fill(order, now, doomed):
                return  # FIFO: what the oldest order cannot have, nobody behind it can
            waiters.popleft()
            if order.wake is not None:
                order.wake()

    # -- the idle watcher ---------------------------------------------------------------------

    def claim_idle(self, conn: C) -> bool:
        """Take ``conn`` off the idle stack to check it (the watcher reported it readable).

        False if it is busy: its owner checks it when its exchange finishes (``hangup_seen``).
        """
        if conn not in self.idle:
            conn.hangup_seen = True
            return False
        conn.hangup_seen = False
        self.idle.remove(conn)
        self.active.add(conn)
        return True

    def restore(self, conn: C, doomed: Doomed[C]) -> None:
        """Put back a claimed connection that turned out healthy, its idle clock unchanged."""
        self.active.discard(conn)
        if self.closed or not conn.accepting:
            reason = CloseReason.POOL_CLOSED if self.closed else conn.stop_reason
            doomed.append((conn, self._count_close(reason)))
            return
        self.idle.append(conn)

    def claimed_dead(self, conn: C, reason: CloseReason, now: float) -> CloseReason:
        """A claimed idle connection turned out closed by the server (or said GOAWAY)."""
        self.active.discard(conn)
        if not conn.accepting and conn.stop_reason is not None:
            return conn.stop_reason  # stopped while being checked (GOAWAY): counted then
        conn.accepting = False
        if reason is CloseReason.SERVER_CLOSED_IDLE:
            self._learn(now - conn.idle_since)
        return self._count_close(reason)

    def close(self) -> list[C]:
        """Refuse new work; return the idle connections to close (busy ones close on finish).

        Waiting orders stay unfilled; their callers are woken by the body and see ``closed``.
        """
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.accepting = False
            self._count_close(CloseReason.POOL_CLOSED)
        return idle

    # -- accounting ---------------------------------------------------------------------------

    def open_count(self) -> int:
        return len(self.idle) + len(self.active) + self.dialing

    def stats(self) -> PoolStats:
        conns = [*self.idle, *self.active]
        flat = PoolStats(
            len(conns),
            len(self.idle),
            len(self.active),
            self.opened,
            self.requests,
            self.reuses,
            self.retries,
            {reason.name: n for reason, n in self.closes.items()},
            sum(c.in_flight for c in self.active if c.multiplexed),
            self.peak_streams,
            self.goaways,
            self.unprocessed_retries,
            learned_idle_timeout=self.learner.timeout,
            keep_alive=self._announced(conns),
            tunnels_opened=self.opened if self.tunneled else 0,
        )
        return replace(flat, by_origin={self.origin: flat}) if self.origin else flat

    def _announced(self, conns: list[C]) -> str | None:
        # What the newest connection heard in Keep-Alive; remembered once its connection goes.
        for conn in sorted(conns, key=lambda c: c.created_at, reverse=True):
            timeout = getattr(conn, "server_timeout", None)
            most = getattr(conn, "server_max", None)
            if timeout is not None or most is not None:
                parts = [f"timeout={timeout:g}"] if timeout is not None else []
                parts += [f"max={most} requests"] if most is not None else []
                self.keep_alive = ", ".join(parts)
                break
        return self.keep_alive

    def _count_close(self, reason: CloseReason | None) -> CloseReason:
        reason = reason or CloseReason.IDLE_TIMEOUT
        self.closes[reason] += 1
        return reason

    def _learn(self, idle_seconds: float) -> None:
        self.learner.observe_idle_close(idle_seconds)
        if self.learner.generation != self._generation:
            self._refresh_deadlines()  # a new bound: every idle connection's deadline moves

    def _probe_ended(self, exchange: Exchange, conn: C, now: float) -> None:
        # Answered after that long idle: the bound was wrong; not answered: it held.
        rtt = float(getattr(conn, "rtt", 0.0))
        self.learner.probe_ended(exchange.idle_time, exchange.response_started, rtt, now)
        if self.learner.generation != self._generation:
            self._refresh_deadlines()

    def _refresh_deadlines(self) -> None:
        self._generation = self.learner.generation
        for conn in self.idle:
            conn.go_idle(conn.idle_since, self.limits, self.learner.timeout)


class PoolFacts:
    """The settings and counters a pool shows, read from its brain: one definition for the
    threaded and the asyncio pool."""

    _state: PoolState[Any]

    @property
    def maxsize(self) -> int:
        return self._state.maxsize

    @property
    def block(self) -> bool:
        return self._state.block

    @property
    def limits(self) -> Limits:
        return self._state.limits

    @property
    def num_connections(self) -> int:
        """TCP connections opened so far, reconnects included (urllib3's counter)."""
        return self._state.opened

    @property
    def num_requests(self) -> int:
        """Requests sent so far, retries included (urllib3's counter)."""
        return self._state.requests

    @property
    def learned_idle_timeout(self) -> float | None:
        """The idle timeout this pool learned from the server's closes (None: none seen)."""
        return self._state.learner.timeout
