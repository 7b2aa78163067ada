"""A pool's bookkeeping and decisions, with no lock, no waiting and no I/O.

This is the pool's brain; `pool.ConnectionPool` (threads) is one body that holds a lock around
every call, does the waiting and the socket work, and an asyncio pool will be another. Every
decision lives here once: which idle connection to reuse and which to retire on the way, when
to dial and when to wait, whether a released connection is kept, what is counted.

How a checkout decides (`checkout`):

1. Take the most recently used idle connection (the warmest; the oldest age out at the bottom
   of the stack). If its lifecycle deadline has passed (the server's Keep-Alive timeout or max
   is near, our idle timeout, lifetime or request limit), retire it and take the next one.
2. The caller then checks, outside its lock, that the socket is still quiet (a readable idle
   socket means the server closed it) and reports a dead one with `dead_on_checkout`.
3. With no idle connection left, dial, unless ``block`` is set and ``maxsize`` connections
   exist: then the caller waits for a release and asks again.

How a release decides (`release`): a connection whose response was complete and persistent
goes back on the stack if there is room; any other is closed, and every close has a reason
that is counted.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from .rules import CloseReason, IdleTimeoutLearner, Limits

__all__ = ["Action", "PoolState", "PoolStats", "Pooled"]


class Pooled(Protocol):
    """What the pool's brain needs from a connection (HTTP/1.1 today, HTTP/2 later)."""

    requests: int
    idle_since: float
    expires_at: float
    expiry_reason: CloseReason | None
    reusable: bool
    peer_closed: bool  # the server closed it (checked, not just reported)
    hangup_seen: bool  # the watcher reported a hang-up while it was busy: check on release

    def go_idle(self, now: float, limits: Limits, learned: float | None) -> CloseReason | None: ...


C = TypeVar("C", bound=Pooled)


class Action(enum.Enum):
    """What a checkout asks its caller to do."""

    REUSE = "reuse the connection returned (after its liveness check)"
    DIAL = "open a new connection (a slot is reserved: report with dialed or dial_failed)"
    WAIT = "wait for a release (block=True and maxsize connections exist), then ask again"


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters.

    ``connections_opened`` counts every TCP connect (reconnects included), ``requests`` every
    request sent (retries included), ``reuses`` the requests that rode an existing connection,
    ``closes`` how many connections were closed for each ``CloseReason`` (by name).
    """

    open: int
    idle: int
    in_use: int
    connections_opened: int
    requests: int
    reuses: int
    retries: int
    closes: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: PoolStats) -> PoolStats:
        closes = Counter(self.closes)
        closes.update(other.closes)
        return PoolStats(
            self.open + other.open,
            self.idle + other.idle,
            self.in_use + other.in_use,
            self.connections_opened + other.connections_opened,
            self.requests + other.requests,
            self.reuses + other.reuses,
            self.retries + other.retries,
            dict(closes),
        )


class PoolState(Generic[C]):
    """Idle stack, busy set, limits and counters of one pool. Not thread-safe by itself."""

    def __init__(self, maxsize: int, block: bool, limits: Limits) -> None:
        self.maxsize = max(1, maxsize)
        self.block = block
        self.limits = limits
        self.idle: list[C] = []  # a stack: most recently used last
        self.in_use: set[C] = set()
        self.dialing = 0
        self.closed = False
        self.learner = IdleTimeoutLearner()
        self.opened = self.requests = self.reuses = self.retries = 0
        self.closes: Counter[CloseReason] = Counter()

    # -- checkout -----------------------------------------------------------------------------

    def checkout(
        self, now: float, fresh: bool, doomed: list[tuple[C, CloseReason]]
    ) -> tuple[Action, C | None]:
        """Choose a connection for a request; expired idle ones are appended to ``doomed``.

        ``fresh`` (a retry) skips idle connections: the request needs a new one.
        """
        idle = self.idle
        while idle and not fresh:
            conn = idle.pop()
            if now >= conn.expires_at:
                doomed.append((conn, self._count_close(conn.expiry_reason)))
                continue
            self.in_use.add(conn)
            self.requests += 1  # taken back by dead_on_checkout if the liveness check fails
            self.reuses += 1
            return Action.REUSE, conn
        if self.block and self.open_count() >= self.maxsize:
            if not (fresh and idle):
                return Action.WAIT, None
            # A retry needs a new connection but the pool is full: retire an idle one.
            oldest = idle.pop(0)
            doomed.append((oldest, self._count_close(CloseReason.POOL_FULL)))
        self.dialing += 1
        return Action.DIAL, None

    def dead_on_checkout(self, conn: C, reason: CloseReason, now: float) -> CloseReason:
        """The connection from REUSE failed its liveness check: it carries nothing."""
        self.requests -= 1
        self.reuses -= 1
        return self.discard(conn, reason, now)

    def dialed(self, conn: C) -> None:
        """A DIAL succeeded: the new connection carries the request."""
        self.dialing -= 1
        self.opened += 1
        self.requests += 1
        self.in_use.add(conn)

    def dial_failed(self) -> None:
        self.dialing -= 1

    # -- after a response ---------------------------------------------------------------------

    def release(self, conn: C, now: float) -> tuple[C | None, CloseReason | None]:
        """Take back a connection whose exchange ended. Returns one to close, and why, if any.

        ``conn`` is kept if its response was complete and persistent and there is room;
        otherwise it is the one to close. Keeping it may retire the bottom of the stack instead.
        """
        self.in_use.discard(conn)
        reason: CloseReason | None
        if self.closed:
            reason = CloseReason.POOL_CLOSED
        elif not conn.reusable:
            reason = CloseReason.NOT_PERSISTENT
        elif conn.peer_closed:
            reason = CloseReason.SERVER_CLOSED
        elif len(self.idle) >= self.maxsize:
            reason = CloseReason.POOL_FULL
        else:
            reason = conn.go_idle(now, self.limits, self.learner.timeout)
        if reason is not None:
            return conn, self._count_close(reason)
        self.idle.append(conn)
        # The bottom of the stack is the oldest: retire it here when its time is up, so a
        # connection never reused under light load does not linger.
        oldest = self.idle[0]
        if now >= oldest.expires_at:
            del self.idle[0]
            return oldest, self._count_close(oldest.expiry_reason)
        return None, None

    def discard(self, conn: C, reason: CloseReason, now: float) -> CloseReason:
        """A checked-out connection must be closed (failed, dead on checkout, abandoned)."""
        self.in_use.discard(conn)
        if reason is CloseReason.SERVER_CLOSED_IDLE:
            self._learn(now - conn.idle_since)
        return self._count_close(reason)

    def claim_idle(self, conn: C) -> bool:
        """Take ``conn`` off the idle stack to check it (the watcher reported a hang-up).

        False if it is busy: its owner checks it when releasing it (``hangup_seen``).
        """
        if conn not in self.idle:
            conn.hangup_seen = True
            return False
        conn.hangup_seen = False
        self.idle.remove(conn)
        self.in_use.add(conn)
        return True

    def restore(self, conn: C) -> bool:
        """Put back a claimed connection that turned out healthy, its idle clock unchanged.

        False if the pool closed meanwhile: the caller closes it.
        """
        self.in_use.discard(conn)
        if self.closed:
            self._count_close(CloseReason.POOL_CLOSED)
            return False
        self.idle.append(conn)
        return True

    def close(self) -> list[C]:
        """Refuse new work; return the idle connections to close (busy ones close on release)."""
        self.closed = True
        idle, self.idle = self.idle, []
        for _ in idle:
            self._count_close(CloseReason.POOL_CLOSED)
        return idle

    # -- accounting ---------------------------------------------------------------------------

    def open_count(self) -> int:
        return len(self.idle) + len(self.in_use) + self.dialing

    def stats(self) -> PoolStats:
        return PoolStats(
            len(self.idle) + len(self.in_use),
            len(self.idle),
            len(self.in_use),
            self.opened,
            self.requests,
            self.reuses,
            self.retries,
            {reason.name: n for reason, n in self.closes.items()},
        )

    def _count_close(self, reason: CloseReason | None) -> CloseReason:
        reason = reason or CloseReason.IDLE_TIMEOUT
        self.closes[reason] += 1
        return reason

    def _learn(self, idle_seconds: float) -> None:
        before = self.learner.timeout
        self.learner.observe_idle_close(idle_seconds)
        if self.learner.timeout != before:
            # A new bound: every idle connection's deadline may move closer.
            for conn in self.idle:
                conn.go_idle(conn.idle_since, self.limits, self.learner.timeout)
