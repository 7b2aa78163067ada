"""When a connection may be reused, when it must be retired, and when a request may be retried.

Everything that decides a connection's fate lives here, as pure functions of numbers the
connection records and of the clock's reading, which is passed in: the pool asks, this module
answers, and tests can ask with any clock they like. docs/lifecycle.md explains each rule.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DRAIN_LIMIT",
    "DRAIN_TIMEOUT",
    "MAX_REUSED_RETRIES",
    "PING_AFTER_IDLE",
    "PING_TIMEOUT",
    "CloseReason",
    "ConnectionRecord",
    "IdleTimeoutLearner",
    "LearnerTable",
    "Limits",
    "closed_before_request",
    "expiry",
    "ping_due",
    "ping_limit",
    "reset_wait",
    "should_drain",
    "should_retry",
]


class CloseReason(enum.Enum):
    """Why a connection was closed: every close has one, and the pool counts them."""

    SERVER_CLOSED_IDLE = "server closed idle connection"
    SERVER_CLOSED = "server closed the connection after the response"
    IDLE_TIMEOUT = "idle timeout"
    SERVER_IDLE_TIMEOUT = "server's Keep-Alive timeout is near"
    LEARNED_IDLE_TIMEOUT = "learned server idle timeout is near"
    KEEP_ALIVE_MAX = "server's Keep-Alive max reached"
    MAX_REQUESTS = "max requests per connection reached"
    MAX_LIFETIME = "max lifetime reached"
    NOT_PERSISTENT = "response not persistent (Connection: close, HTTP/1.0, close-delimited)"
    POOL_FULL = "pool full"
    BODY_NOT_CONSUMED = "response closed before its body was read"
    PROTOCOL_ERROR = "protocol error"
    ABANDONED = "exchange interrupted by an exception that was not the network's"
    NETWORK_ERROR = "network error"
    TIMEOUT = "timeout"
    UNSOLICITED_DATA = "server sent data on an idle connection"
    POOL_CLOSED = "pool closed"
    GOAWAY = "server sent GOAWAY (HTTP/2): no new streams, closed once its streams ended"
    PING_TIMEOUT = "no answer to a PING on a connection that had been silent (HTTP/2)"
    SERVER_CLOSED_BEFORE_REQUEST = (
        "server closed the connection before our request arrived (FIN, then a reset for it)"
    )


@dataclass(frozen=True, slots=True)
class Limits:
    """Client-side limits on a connection's life.

    Args:
        idle_timeout: retire a connection idle this long (seconds). Never longer than the
            server's announced ``Keep-Alive: timeout`` or the learned one.
        max_lifetime: retire a connection this old, idle or not (None: no limit).
        max_requests: retire a connection after this many requests (None: no limit).
        retry_closed_before_request: on Linux, send a request again (whatever its method) when
            its reused connection proves the server closed before the request arrived (FIN,
            then a reset for our bytes: ``closed_before_request``). False turns it off.
    """

    idle_timeout: float | None = 5.0
    max_lifetime: float | None = None
    max_requests: int | None = None
    retry_closed_before_request: bool = True


# How much earlier than the server's deadline we retire: the request needs a one-way trip to
# arrive and the server's idle clock started a one-way trip before ours; the rest is jitter.
_MARGIN_FIXED = 0.05
_MARGIN_FRACTION = 0.05


def server_deadline(timeout: float, rtt: float) -> float:
    """Idle seconds after which a request may reach a server that closes at ``timeout``."""
    return timeout - 2.0 * rtt - _MARGIN_FIXED - _MARGIN_FRACTION * timeout


class ConnectionRecord(Protocol):
    """What the lifecycle rules need to know about one connection when it goes idle."""

    created_at: float
    idle_since: float
    requests: int
    server_timeout: float | None  # Keep-Alive: timeout=
    server_max: int | None  # the request count at which Keep-Alive: max= is reached
    rtt: float  # a round-trip estimate, seconds


NEVER = float("inf")


def expiry(
    record: ConnectionRecord, limits: Limits, learned_timeout: float | None
) -> tuple[float, CloseReason | None]:
    """When an idle connection must stop being reused, and why.

    Returns ``(deadline, reason)``: the clock reading from which the connection must be retired
    and the reason to give then. A deadline of ``-inf`` means it must not go back to the pool
    at all; ``(inf, None)`` means no rule ever retires it. Computed once when the connection is
    released, so that checkout only compares one number with the clock.
    """
    if record.server_max is not None and record.requests >= record.server_max:
        return -NEVER, CloseReason.KEEP_ALIVE_MAX
    if limits.max_requests is not None and record.requests >= limits.max_requests:
        return -NEVER, CloseReason.MAX_REQUESTS
    deadline, reason = NEVER, None
    idle_since = record.idle_since
    if limits.idle_timeout is not None:
        deadline, reason = idle_since + limits.idle_timeout, CloseReason.IDLE_TIMEOUT
    if record.server_timeout is not None:
        at = idle_since + server_deadline(record.server_timeout, record.rtt)
        if at < deadline:
            deadline, reason = at, CloseReason.SERVER_IDLE_TIMEOUT
    if learned_timeout is not None:
        at = idle_since + server_deadline(learned_timeout, record.rtt)
        if at < deadline:
            deadline, reason = at, CloseReason.LEARNED_IDLE_TIMEOUT
    if limits.max_lifetime is not None:
        at = record.created_at + limits.max_lifetime
        if at < deadline:
            deadline, reason = at, CloseReason.MAX_LIFETIME
    return deadline, reason


class IdleTimeoutLearner:
    """Learns how long an origin lets a connection sit idle when it does not say so.

    A learned bound is a hypothesis. Each time a server closes a connection that sat idle for
    ``t`` seconds, its idle timeout is at most ``t``: the learner keeps the smallest such bound
    (closes after less than ``MIN_LEARNABLE`` seconds are more likely a request limit or a
    restart, and are not learned). One mass close (a restart, a failover) would then hold the
    bound down for ever, so the bound is also *tested*: a connection idle well past it
    (``PROBE_FACTOR`` times, and within every other limit) may carry one *probe*, a request
    that may be sent again anyway (``Request.replayable``), one at a time per origin. A probe
    answered after ``s`` seconds idle refutes the bound: it is raised so that connections idle
    up to ``s`` are reused by every request. A probe that finds the connection closed confirms
    the bound; the next probe waits ``PROBE_SPACING`` seconds, doubled after each confirmation
    in a row (at most ``PROBE_SPACING_MAX``), so a bound that is right costs few retried
    requests. Only requests that could be retried on a dead connection ever ride an unproven
    idle time, so probing cannot lose a POST.

    Shared by every pool of one origin (``LearnerTable``): pools with different TLS settings
    talk to one server. ``generation`` changes with the bound, so pools can refresh deadlines.
    """

    MIN_LEARNABLE = 0.2
    PROBE_FACTOR = 1.25  # probe only connections idle this many times the bound, or longer
    PROBE_SPACING = 1.0
    PROBE_SPACING_MAX = 300.0

    __slots__ = (
        "closes",
        "confirmed",
        "generation",
        "next_probe",
        "probes",
        "probing",
        "timeout",
    )

    def __init__(self) -> None:
        self.timeout: float | None = None
        self.generation = 0
        self.probing = False  # a probe is in flight
        self.next_probe = 0.0  # no probe before this clock reading (after a failed one)
        self.closes = 0  # idle closes learned from (the bound's confirmations)
        self.probes = 0  # probes that survived (the bound's refutations)
        self.confirmed = 0  # probes in a row that found the connection closed

    def observe_idle_close(self, idle_seconds: float) -> None:
        """The server closed a connection after it had been idle ``idle_seconds``."""
        if idle_seconds < self.MIN_LEARNABLE:
            return
        self.closes += 1
        if self.timeout is None or idle_seconds < self.timeout:
            self.timeout = idle_seconds
            self.generation += 1

    def may_probe(self, now: float) -> bool:
        """May a replayable request ride a connection idle past the learned bound now?"""
        return self.timeout is not None and not self.probing and now >= self.next_probe

    def probe_ended(self, idle_seconds: float, answered: bool, rtt: float, now: float) -> None:
        """A probe ended: the server answered after ``idle_seconds`` idle, or it did not."""
        self.probing = False
        if not answered:
            spacing = self.PROBE_SPACING * 2.0 ** min(self.confirmed, 20)
            self.confirmed += 1
            self.next_probe = now + min(spacing, self.PROBE_SPACING_MAX)
            self.observe_idle_close(idle_seconds)
            return
        self.confirmed = 0
        # The bound that lets every request reuse a connection idle up to ``idle_seconds``:
        # server_deadline() of it is exactly what survived.
        raised = (idle_seconds + 2.0 * rtt + _MARGIN_FIXED) / (1.0 - _MARGIN_FRACTION)
        if self.timeout is not None and raised > self.timeout:
            self.timeout = raised
            self.probes += 1
            self.generation += 1


class LearnerTable:
    """One ``IdleTimeoutLearner`` per origin, shared by the pools of a pool manager.

    The least recently used origins are forgotten beyond ``size``; a pool keeps its learner
    while it lives, so forgetting only drops what no pool uses any more.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = max(1, size)
        self._learners: OrderedDict[Hashable, IdleTimeoutLearner] = OrderedDict()

    def get(self, origin: Hashable) -> IdleTimeoutLearner:
        """The learner for ``origin`` (scheme, host, port), created if needed."""
        learners = self._learners
        learner = learners.get(origin)
        if learner is None:
            learner = learners[origin] = IdleTimeoutLearner()
            while len(learners) > self.size:
                learners.popitem(last=False)
        else:
            learners.move_to_end(origin)
        return learner


def should_retry(
    *, reused: bool, response_started: bool, wrote_any: bool, replayable: bool
) -> bool:
    """Go net/http's rule for sending a failed request again on a new connection.

    Only a failure on a *reused* connection is retried (a new one failing is a real error), only
    before any byte of the response arrived, and only if nothing of the request was written or
    the request can be replayed safely (idempotent method or Idempotency-Key, rewindable body).
    """
    if not reused or response_started:
        return False
    return not wrote_any or replayable


# A reset may follow the server's FIN by a round trip (our bytes went out, its kernel answered):
# wait this many round-trip estimates, plus a fixed allowance for scheduling, and no longer.
_RESET_RTTS = 2.0
_RESET_FIXED = 0.005
_RESET_MAX = 1.0


def reset_wait(rtt: float) -> float:
    """How long to watch for a reset after an EOF that came before any response byte."""
    return min(_RESET_RTTS * max(rtt, 0.0) + _RESET_FIXED, _RESET_MAX)


def closed_before_request(
    *, reused: bool, eof_before_response: bool, reset_after_eof: bool, one_segment: bool
) -> bool:
    """Did the server provably close the connection before our request reached it?

    A server that closed an idle connection answers the bytes that arrive afterwards with a
    reset: the client reads EOF (the FIN), then within about a round trip sees the reset. A
    server that read the request and then closed sends the FIN and no reset; one that aborts
    after reading sends a reset without a FIN (a read error, not EOF). If all of the request
    went out in one send that fits one TCP segment, the server cannot have read a prefix of it
    before the FIN while the rest drew the reset. Then the request never reached the server
    application and may be sent again whatever its method. Only on a reused connection: a new
    one that closes at once is a real refusal (docs/lifecycle.md has the argument).
    """
    return reused and eof_before_response and reset_after_eof and one_segment


# A response closed early is drained (and its HTTP/1.1 connection kept) only if this little is
# left and it arrives within this time, all of it: more is cheaper to close than to read.
# (HTTP/2 never drains: the stream is reset and the connection carries on.)
DRAIN_LIMIT = 64 * 1024
DRAIN_TIMEOUT = 0.1


def should_drain(
    *, persistent: bool, content_length: int | None, chunked: bool, received: int
) -> bool:
    """Is an abandoned HTTP/1.1 body worth reading to the end so the connection can be kept?

    Only when the response would leave the connection reusable and what is left is known to be
    small (or, chunked, might be: the drain itself stops at ``DRAIN_LIMIT``).
    """
    if not persistent:
        return False
    if content_length is None:
        return chunked
    return content_length - received <= DRAIN_LIMIT


# A stream the server promised it never processed (HTTP/2 GOAWAY above its last stream id, or
# REFUSED_STREAM) may be sent again whatever its method; bound how often, in case a server
# refuses everything. Generous: a server sending GOAWAY every 7 requests to 16 threads bounces
# about 9 streams per connection, and an unlucky request can lose several rounds in a row.
MAX_UNPROCESSED_RETRIES = 20

# Go retries while each failure is on a reused connection. tether too, but each such retry
# asks for a new connection, and a pool holds at most maxsize reused ones that could all be
# stale: maxsize + 1 attempts reach a fresh connection whatever happens. Capped for huge pools.
MAX_REUSED_RETRIES = 10

# A connection silent this long gets a PING before it is reused: a silent close (no GOAWAY,
# no FIN reaching us) would otherwise cost the request. At most one per silent period.
PING_AFTER_IDLE = 4.0
PING_TIMEOUT = 1.0


def ping_due(now: float, last_received: float) -> bool:
    """Must an HTTP/2 connection that last heard from its server at ``last_received`` be
    pinged before it carries a request?"""
    return now - last_received >= PING_AFTER_IDLE


def ping_limit(rtt: float) -> float:
    """How long the answer to that PING may take: ``PING_TIMEOUT``, or more on a slow path."""
    return max(PING_TIMEOUT, 4 * rtt)
