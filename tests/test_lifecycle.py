"""The reuse, retirement and retry rules, as pure functions of plain numbers (a fake clock)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tether.lifecycle import CloseReason, IdleTimeoutLearner, Limits, expiry, should_retry

NO_LIMITS = Limits(idle_timeout=None, max_lifetime=None, max_requests=None)


@dataclass
class Record:
    """A ConnectionRecord with plain numbers: made at t=1000, idle since t=1100."""

    created_at: float = 1000.0
    idle_since: float = 1100.0
    requests: int = 1
    server_timeout: float | None = None
    server_max: int | None = None
    rtt: float = 0.0


# -- expiry: one rule at a time --------------------------------------------------------------------


def test_no_rule_never_expires() -> None:
    assert expiry(Record(), NO_LIMITS, None) == (math.inf, None)


def test_idle_timeout() -> None:
    deadline, reason = expiry(Record(), Limits(idle_timeout=5.0), None)
    assert deadline == 1105.0
    assert reason is CloseReason.IDLE_TIMEOUT


def test_default_limits_retire_idle_connections() -> None:
    deadline, reason = expiry(Record(), Limits(), None)
    assert 1100.0 < deadline < math.inf
    assert reason is CloseReason.IDLE_TIMEOUT


@pytest.mark.parametrize("server_timeout", [1.0, 5.0, 15.0, 75.0])
@pytest.mark.parametrize("rtt", [0.0, 0.001, 0.05, 0.3])
def test_server_keep_alive_timeout_retires_before_the_server_closes(
    server_timeout: float, rtt: float
) -> None:
    record = Record(server_timeout=server_timeout, rtt=rtt)
    deadline, reason = expiry(record, NO_LIMITS, None)
    assert reason is CloseReason.SERVER_IDLE_TIMEOUT
    # A request sent at the deadline arrives half an RTT later; the server's idle clock started
    # half an RTT before ours: it must still be before the server closes.
    assert deadline < record.idle_since + server_timeout - rtt
    # ... but not absurdly early: the documented margin is 2·rtt + 0.05 s + 5 %.
    expected = record.idle_since + server_timeout - 2 * rtt - 0.05 - 0.05 * server_timeout
    assert deadline == pytest.approx(expected)


def test_larger_rtt_retires_earlier() -> None:
    deadlines = [
        expiry(Record(server_timeout=10.0, rtt=rtt), NO_LIMITS, None)[0]
        for rtt in (0.0, 0.01, 0.1, 1.0)
    ]
    assert deadlines == sorted(deadlines, reverse=True)
    assert len(set(deadlines)) == len(deadlines)


def test_tiny_server_timeout_means_already_expired() -> None:
    record = Record(server_timeout=0.0, rtt=0.01)
    deadline, reason = expiry(record, NO_LIMITS, None)
    assert deadline <= record.idle_since
    assert reason is CloseReason.SERVER_IDLE_TIMEOUT


@pytest.mark.parametrize("rtt", [0.0, 0.02, 0.2])
def test_learned_timeout(rtt: float) -> None:
    record = Record(rtt=rtt)
    deadline, reason = expiry(record, NO_LIMITS, 4.0)
    assert reason is CloseReason.LEARNED_IDLE_TIMEOUT
    assert record.idle_since < deadline < record.idle_since + 4.0 - rtt


def test_max_lifetime() -> None:
    record = Record(created_at=1000.0, idle_since=1100.0)
    deadline, reason = expiry(record, Limits(idle_timeout=None, max_lifetime=103.0), None)
    assert deadline == 1103.0
    assert reason is CloseReason.MAX_LIFETIME


def test_max_lifetime_already_past() -> None:
    record = Record(created_at=1000.0, idle_since=1100.0)
    deadline, reason = expiry(record, Limits(idle_timeout=5.0, max_lifetime=50.0), None)
    assert deadline <= record.idle_since
    assert reason is CloseReason.MAX_LIFETIME


@pytest.mark.parametrize(("requests", "poolable"), [(98, True), (99, True), (100, False)])
def test_keep_alive_max(requests: int, poolable: bool) -> None:
    record = Record(requests=requests, server_max=100)
    deadline, reason = expiry(record, Limits(idle_timeout=5.0), None)
    if poolable:
        assert (deadline, reason) == (1105.0, CloseReason.IDLE_TIMEOUT)
    else:
        assert (deadline, reason) == (-math.inf, CloseReason.KEEP_ALIVE_MAX)


def test_keep_alive_max_zero_is_never_poolable() -> None:
    # "Keep-Alive: max=0" on the first response: server_max == requests.
    assert expiry(Record(requests=1, server_max=1), Limits(), None)[0] == -math.inf


@pytest.mark.parametrize(("requests", "poolable"), [(2, True), (3, False), (4, False)])
def test_max_requests(requests: int, poolable: bool) -> None:
    record = Record(requests=requests)
    deadline, reason = expiry(record, Limits(idle_timeout=5.0, max_requests=3), None)
    if poolable:
        assert reason is CloseReason.IDLE_TIMEOUT
    else:
        assert (deadline, reason) == (-math.inf, CloseReason.MAX_REQUESTS)


def test_request_count_rules_beat_every_deadline() -> None:
    record = Record(requests=5, server_max=5, server_timeout=1.0)
    limits = Limits(idle_timeout=0.5, max_lifetime=1.0, max_requests=5)
    deadline, reason = expiry(record, limits, 0.5)
    assert deadline == -math.inf
    assert reason in (CloseReason.KEEP_ALIVE_MAX, CloseReason.MAX_REQUESTS)


# -- expiry: the earliest rule wins ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("idle", "server", "learned", "lifetime", "winner"),
    [
        (5.0, 75.0, None, None, CloseReason.IDLE_TIMEOUT),
        (5.0, 2.0, None, None, CloseReason.SERVER_IDLE_TIMEOUT),
        (5.0, None, 3.0, None, CloseReason.LEARNED_IDLE_TIMEOUT),
        (5.0, 4.0, 2.0, None, CloseReason.LEARNED_IDLE_TIMEOUT),
        (5.0, 2.0, 4.0, None, CloseReason.SERVER_IDLE_TIMEOUT),
        (5.0, 4.0, 3.0, 101.0, CloseReason.MAX_LIFETIME),
        (None, 30.0, 20.0, 200.0, CloseReason.LEARNED_IDLE_TIMEOUT),
        (1.0, 4.0, 3.0, 200.0, CloseReason.IDLE_TIMEOUT),
        # a server timeout a bit above our idle timeout still wins once the margin is taken
        (5.0, 5.2, None, None, CloseReason.SERVER_IDLE_TIMEOUT),
    ],
)
def test_earliest_rule_wins(
    idle: float | None,
    server: float | None,
    learned: float | None,
    lifetime: float | None,
    winner: CloseReason,
) -> None:
    record = Record(server_timeout=server, rtt=0.01)
    limits = Limits(idle_timeout=idle, max_lifetime=lifetime)
    deadline, reason = expiry(record, limits, learned)
    assert reason is winner
    # the deadline is no later than what any single rule alone would give
    singles = [
        expiry(Record(rtt=0.01), Limits(idle_timeout=idle), None)[0],
        expiry(Record(server_timeout=server, rtt=0.01), NO_LIMITS, None)[0],
        expiry(Record(rtt=0.01), NO_LIMITS, learned)[0],
        expiry(Record(), Limits(idle_timeout=None, max_lifetime=lifetime), None)[0],
    ]
    assert deadline == min(singles)


# -- learning an idle timeout ----------------------------------------------------------------------


def test_learner_starts_unknown() -> None:
    assert IdleTimeoutLearner().timeout is None


def test_learner_keeps_the_minimum() -> None:
    learner = IdleTimeoutLearner()
    learner.observe_idle_close(10.0)
    assert learner.timeout == 10.0
    learner.observe_idle_close(4.0)
    assert learner.timeout == 4.0
    learner.observe_idle_close(8.0)
    assert learner.timeout == 4.0


def test_learner_ignores_early_closes() -> None:
    learner = IdleTimeoutLearner()
    learner.observe_idle_close(0.0)
    learner.observe_idle_close(IdleTimeoutLearner.MIN_LEARNABLE / 2)
    assert learner.timeout is None
    learner.observe_idle_close(3.0)
    learner.observe_idle_close(0.1)
    assert learner.timeout == 3.0


def test_learner_takes_a_close_at_the_threshold() -> None:
    learner = IdleTimeoutLearner()
    learner.observe_idle_close(IdleTimeoutLearner.MIN_LEARNABLE)
    assert learner.timeout == IdleTimeoutLearner.MIN_LEARNABLE


def test_learned_timeout_feeds_expiry() -> None:
    learner = IdleTimeoutLearner()
    learner.observe_idle_close(2.0)
    deadline, reason = expiry(Record(rtt=0.01), Limits(idle_timeout=5.0), learner.timeout)
    assert reason is CloseReason.LEARNED_IDLE_TIMEOUT
    assert deadline < 1102.0


# -- retry -----------------------------------------------------------------------------------------

# Go net/http (transport.go, shouldRetryRequest): only a failure on a reused connection, before
# any response byte, and either nothing of the request written or the request replayable.
RETRY_TABLE = [
    # reused, response_started, wrote_any, replayable, retry
    (True, False, False, False, True),
    (True, False, False, True, True),
    (True, False, True, False, False),
    (True, False, True, True, True),
    (True, True, False, False, False),
    (True, True, False, True, False),
    (True, True, True, False, False),
    (True, True, True, True, False),
    (False, False, False, False, False),
    (False, False, False, True, False),
    (False, False, True, False, False),
    (False, False, True, True, False),
    (False, True, False, False, False),
    (False, True, False, True, False),
    (False, True, True, False, False),
    (False, True, True, True, False),
]


@pytest.mark.parametrize(
    ("reused", "response_started", "wrote_any", "replayable", "retry"), RETRY_TABLE
)
def test_should_retry(
    reused: bool, response_started: bool, wrote_any: bool, replayable: bool, retry: bool
) -> None:
    assert (
        should_retry(
            reused=reused,
            response_started=response_started,
            wrote_any=wrote_any,
            replayable=replayable,
        )
        is retry
    )
