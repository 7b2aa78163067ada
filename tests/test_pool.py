"""Pool behaviour: limits, Keep-Alive, lifecycle rules, the idle watcher, closing, leaks.

Reuse is proven by what the server counted (``connections_accepted``) and by tether's public
counters (``stats()``, ``connection_info``). Lifecycle rules are driven by a fake clock, so
only the tests about real servers' real timers sleep.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import close_wait_count, fd_count

import tether
import tether.sync.pool
from tether import ConnectionPool, Limits, PoolManager, Timeout
from tether.io.watcher import IdleWatcher
from tether.testing import DelayProxy, Exchange, TestServer, pattern_bytes


@contextmanager
def serve(**options: Any) -> Iterator[TestServer]:
    """A TestServer with options, which must record no error."""
    with TestServer(**options) as server:
        yield server
    assert not server.errors, server.errors


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_for(condition: Callable[[], bool], timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def closes(pool: ConnectionPool, reason: str) -> int:
    return pool.stats().closes.get(reason, 0)


def numbers(pool: ConnectionPool, n: int, method: str = "GET") -> list[int]:
    """Send ``n`` requests; the position of each on its connection."""
    body = b"data" if method == "POST" else None
    return [
        pool.request(method, "/echo", body=body).connection_info.request_number for _ in range(n)
    ]


# -- maxsize and block ---------------------------------------------------------------------------


def test_block_true_waits_then_raises_pool_timeout_without_sending(
    test_server: TestServer,
) -> None:
    with ConnectionPool(
        "127.0.0.1", test_server.port, maxsize=2, block=True, timeout=Timeout(pool=0.3)
    ) as pool:
        held = [pool.request("GET", "/bytes/1000000", stream=True) for _ in range(2)]
        served = test_server.requests_served
        with pytest.raises(tether.PoolTimeout) as info:
            pool.request("GET", "/echo")
        assert info.value.may_have_reached_server is False
        assert isinstance(info.value, tether.TimeoutException)
        assert test_server.requests_served == served
        assert test_server.connections_accepted == 2
        assert pool.stats().in_use == 2
        held[0].close()
        r = pool.request("GET", "/echo")
        assert r.status == 200
        assert test_server.connections_accepted == 3  # the closed one was not drainable
        held[1].close()
        assert pool.stats().in_use == 0


def test_block_true_waiter_gets_the_released_connection(test_server: TestServer) -> None:
    with ConnectionPool(
        "127.0.0.1", test_server.port, maxsize=1, block=True, timeout=Timeout(pool=2)
    ) as pool:
        held = pool.request("GET", "/bytes/100", stream=True)
        timer = threading.Timer(0.1, held.read)
        timer.start()
        r = pool.request("GET", "/echo")
        timer.join()
        assert r.connection_info.reused
        assert test_server.connections_accepted == 1


def test_block_false_opens_extra_connection_and_closes_it_after(
    test_server: TestServer,
) -> None:
    with ConnectionPool("127.0.0.1", test_server.port, maxsize=1, block=False) as pool:
        a = pool.request("GET", "/bytes/20000", stream=True)
        b = pool.request("GET", "/bytes/20000", stream=True)
        assert test_server.connections_accepted == 2
        assert pool.stats().in_use == 2
        assert a.read() == b.read() == pattern_bytes(20000)
        stats = pool.stats()
        assert stats.closes == {"POOL_FULL": 1}
        assert (stats.open, stats.idle, stats.in_use) == (1, 1, 0)
        assert pool.request("GET", "/echo").connection_info.reused
        assert test_server.connections_accepted == 2
    assert test_server.wait_open_connections(0)


# -- Keep-Alive announced by the server -----------------------------------------------------------


def test_keep_alive_max_announced_with_close_opens_one_connection_per_max() -> None:
    with serve(keep_alive_header="timeout=5, max=3") as server:
        with ConnectionPool("127.0.0.1", server.port) as pool:
            assert numbers(pool, 7, "POST") == [1, 2, 3, 1, 2, 3, 1]
            assert server.connections_accepted == 3
            assert pool.stats().retries == 0
        assert server.connection_request_counts == [3, 3, 1]


def test_keep_alive_max_retires_before_a_silent_server_closes(test_server: TestServer) -> None:
    def limited(ex: Exchange) -> None:
        ex.respond(200, [("Keep-Alive", "timeout=5, max=3")], b"ok")
        if ex.index == 3:  # the announced limit: close, a moment later, without a word
            ex.wait(0.1)
            ex.close()

    test_server.route("/limited", limited)
    with ConnectionPool("127.0.0.1", test_server.port) as pool:
        errors = []
        for _ in range(7):
            try:
                pool.request("POST", "/limited", body=b"data")
            except tether.RequestError as exc:
                errors.append(exc)
        assert errors == []
        assert test_server.connections_accepted == 3
        assert closes(pool, "KEEP_ALIVE_MAX") == 2


@pytest.mark.parametrize("announce_close", [True, False])
def test_keep_alive_timeout_retires_before_the_server_closes(announce_close: bool) -> None:
    with (
        serve(keep_alive_header="timeout=1", announce_close=announce_close) as server,
        ConnectionPool("127.0.0.1", server.port) as pool,
    ):
        pool.request("POST", "/echo", body=b"first")
        time.sleep(0.9)  # the server closes at 1.0 s idle
        r = pool.request("POST", "/echo", body=b"second")
        assert r.status == 200
        assert not r.connection_info.reused
        assert r.connection_info.retries == 0
        stats = pool.stats()
        assert stats.closes == {"SERVER_IDLE_TIMEOUT": 1}
        assert stats.retries == 0
        assert server.connections_accepted == 2


def test_keep_alive_timeout_with_fake_clock() -> None:
    clock = FakeClock()
    with (
        serve(keep_alive_header="timeout=2") as server,
        ConnectionPool("127.0.0.1", server.port, clock=clock) as pool,
    ):
        pool.request("GET", "/echo")
        clock.advance(1.8)  # 2 s minus the margin (50 ms + 5 %) is 1.85 s
        assert pool.request("GET", "/echo").connection_info.reused
        clock.advance(1.9)
        assert not pool.request("GET", "/echo").connection_info.reused
        assert pool.stats().closes == {"SERVER_IDLE_TIMEOUT": 1}
        assert server.connections_accepted == 2


def test_slow_response_does_not_stop_reuse() -> None:
    clock = FakeClock()

    def think(ex: Exchange) -> None:
        ex.wait(0.05)  # the client is waiting for the response by now
        clock.advance(2.5)  # the server thought for 2.5 s
        ex.respond(200, [("Content-Type", "text/plain")], b"answer")

    with serve(keep_alive_header="timeout=5") as server:
        server.route("/think", think)
        with ConnectionPool("127.0.0.1", server.port, clock=clock) as pool:
            assert pool.request("GET", "/think").content == b"answer"
            r = pool.request("GET", "/think")  # at once: the server keeps it 5 s
            assert r.connection_info.reused
            assert server.connections_accepted == 1
            assert pool.stats().closes == {}


# -- our own limits, with a fake clock ------------------------------------------------------------


def test_idle_timeout(test_server: TestServer) -> None:
    clock = FakeClock()
    with ConnectionPool(
        "127.0.0.1", test_server.port, limits=Limits(idle_timeout=5), clock=clock
    ) as pool:
        pool.request("GET", "/echo")
        clock.advance(4.9)
        r = pool.request("GET", "/echo")
        assert r.connection_info.reused
        assert r.connection_info.idle_time == pytest.approx(4.9)
        clock.advance(5.1)
        r = pool.request("GET", "/echo")
        assert not r.connection_info.reused
        assert pool.stats().closes == {"IDLE_TIMEOUT": 1}
        assert test_server.connections_accepted == 2


def test_idle_timeout_none_keeps_connections(test_server: TestServer) -> None:
    clock = FakeClock()
    with ConnectionPool(
        "127.0.0.1", test_server.port, limits=Limits(idle_timeout=None), clock=clock
    ) as pool:
        pool.request("GET", "/echo")
        clock.advance(10_000)
        assert pool.request("GET", "/echo").connection_info.reused
        assert test_server.connections_accepted == 1


def test_max_lifetime(test_server: TestServer) -> None:
    clock = FakeClock()
    limits = Limits(idle_timeout=None, max_lifetime=10)
    with ConnectionPool("127.0.0.1", test_server.port, limits=limits, clock=clock) as pool:
        pool.request("GET", "/echo")
        clock.advance(6)
        assert pool.request("GET", "/echo").connection_info.request_number == 2
        clock.advance(3.9)
        assert pool.request("GET", "/echo").connection_info.request_number == 3
        clock.advance(0.2)
        assert pool.request("GET", "/echo").connection_info.request_number == 1
        assert pool.stats().closes == {"MAX_LIFETIME": 1}
        assert test_server.connections_accepted == 2


def test_max_requests(test_server: TestServer) -> None:
    with ConnectionPool(
        "127.0.0.1", test_server.port, limits=Limits(max_requests=2), clock=FakeClock()
    ) as pool:
        assert numbers(pool, 5) == [1, 2, 1, 2, 1]
        assert pool.stats().closes == {"MAX_REQUESTS": 2}
        assert test_server.connections_accepted == 3
    assert test_server.connection_request_counts == [2, 2, 1]


def test_learned_idle_timeout_retires_before_the_server_would(test_server: TestServer) -> None:
    clock = FakeClock()
    with ConnectionPool("127.0.0.1", test_server.port, clock=clock) as pool:
        pool.request("GET", "/echo")
        clock.advance(3)
        assert test_server.close_idle_connections() == 1
        assert wait_for(lambda: closes(pool, "SERVER_CLOSED_IDLE") == 1)
        assert pool.learned_idle_timeout == pytest.approx(3.0)
        pool.request("GET", "/echo")
        clock.advance(2.7)  # 3 s minus the margin (50 ms + 5 %) is 2.8 s
        assert pool.request("GET", "/echo").connection_info.reused
        clock.advance(2.9)
        assert not pool.request("GET", "/echo").connection_info.reused
        assert closes(pool, "LEARNED_IDLE_TIMEOUT") == 1
        assert test_server.connections_accepted == 3


def test_early_server_close_is_not_learned_as_idle_timeout(test_server: TestServer) -> None:
    clock = FakeClock()
    with ConnectionPool("127.0.0.1", test_server.port, clock=clock) as pool:
        pool.request("GET", "/echo")
        clock.advance(0.1)
        test_server.close_idle_connections()
        assert wait_for(lambda: closes(pool, "SERVER_CLOSED_IDLE") == 1)
        assert pool.learned_idle_timeout is None
        pool.request("GET", "/echo")
        clock.advance(4)
        assert pool.request("GET", "/echo").connection_info.reused


# -- the idle watcher -----------------------------------------------------------------------------


def test_server_closing_idle_connection_is_noticed_without_a_request(
    test_server: TestServer,
) -> None:
    with ConnectionPool("127.0.0.1", test_server.port) as pool:
        pool.request("GET", "/echo")
        assert pool.stats().open == 1
        assert test_server.close_idle_connections() == 1
        # (open drops a moment before the close is counted: wait for both)
        assert wait_for(lambda: pool.stats().closes == {"SERVER_CLOSED_IDLE": 1}, timeout=1.0)
        assert pool.stats().open == 0
        assert close_wait_count(test_server.port) == 0
        assert pool.num_requests == 1
        r = pool.request("GET", "/echo")
        assert (r.status, r.connection_info.reused, r.connection_info.retries) == (200, False, 0)


def test_without_watcher_close_wait_lingers_until_next_request(
    test_server: TestServer,
) -> None:
    with ConnectionPool("127.0.0.1", test_server.port, watch_idle=False) as pool:
        pool.request("GET", "/echo")
        assert test_server.close_idle_connections() == 1
        assert wait_for(lambda: close_wait_count(test_server.port) == 1)
        time.sleep(0.2)  # what the watcher would have noticed by now
        assert close_wait_count(test_server.port) == 1
        assert pool.stats().open == 1
        r = pool.request("POST", "/echo", body=b"safe")  # the liveness check on checkout
        assert (r.status, r.connection_info.reused, r.connection_info.retries) == (200, False, 0)
        assert pool.stats().closes == {"SERVER_CLOSED_IDLE": 1}
        assert close_wait_count(test_server.port) == 0
        assert test_server.connections_accepted == 2


def test_counters_after_the_liveness_check_discards_a_connection(
    test_server: TestServer,
) -> None:
    with ConnectionPool("127.0.0.1", test_server.port, watch_idle=False) as pool:
        pool.request("GET", "/echo")
        test_server.close_idle_connections()
        assert wait_for(lambda: close_wait_count(test_server.port) == 1)
        r = pool.request("GET", "/echo")
        assert not r.connection_info.reused
        assert test_server.requests_served == 2
        stats = pool.stats()
        assert (stats.requests, stats.reuses, pool.num_requests) == (2, 0, 2)


def test_watcher_covers_every_idle_connection(test_server: TestServer) -> None:
    with ConnectionPool("127.0.0.1", test_server.port, maxsize=3) as pool:
        held = [pool.request("GET", "/bytes/100", stream=True) for _ in range(3)]
        for r in held:
            r.read()
        assert pool.stats().idle == 3
        assert test_server.close_idle_connections() == 3
        assert wait_for(lambda: pool.stats().closes == {"SERVER_CLOSED_IDLE": 3})
        assert pool.stats().open == 0
        assert close_wait_count(test_server.port) == 0


def test_a_late_hangup_report_leaves_a_healthy_idle_connection_in_the_pool(
    test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watcher thread reads a report (a descriptor number), then waits for the CPU while
    # the pool closes that socket and a new connection gets the number and goes idle. Played
    # here step by step on a watcher without a thread, with a request arriving while the
    # report is handled: it must ride the idle connection, not dial another one.
    private = IdleWatcher()
    private._epoll = select.epoll()  # no thread: the test plays it
    monkeypatch.setattr(tether.sync.pool, "watcher", private)
    try:
        with ConnectionPool("127.0.0.1", test_server.port) as pool:
            first = pool.request("GET", "/echo")
            conn = pool._state.idle[0]
            meanwhile: list[tether.Response] = []
            check = conn.check_idle

            def check_while_a_request_arrives() -> Any:
                meanwhile.append(pool.request("GET", "/echo"))
                return check()

            conn.check_idle = check_while_a_request_arrives  # type: ignore[method-assign]
            private._dispatch([(conn.fd, select.EPOLLRDHUP)])  # the earlier socket's hang-up
            del conn.check_idle
            later = pool.request("GET", "/echo")
            assert later.connection_info.connection_id == first.connection_info.connection_id
            assert later.connection_info.request_number == 2
            assert test_server.connections_accepted == 1
            # A real hang-up of that socket is still reported and closes it at once.
            assert test_server.close_idle_connections() == 1
            private._dispatch(private._epoll.poll(2.0))
            assert pool.stats().closes == {"SERVER_CLOSED_IDLE": 1}
            assert close_wait_count(test_server.port) == 0
    finally:
        private._epoll.close()


# -- PoolManager and closing ----------------------------------------------------------------------


def test_pool_manager_closes_least_recently_used_pool() -> None:
    with serve() as a, serve() as b, serve() as c, PoolManager(num_pools=2) as manager:
        manager.request("GET", a.url + "/echo")
        manager.request("GET", b.url + "/echo")
        manager.request("GET", c.url + "/echo")  # evicts a's pool
        assert [p.origin.port for p in manager.pools()] == [b.port, c.port]
        assert a.wait_open_connections(0)
        assert b.open_connections == c.open_connections == 1
        r = manager.request("GET", b.url + "/echo")  # b is now the most recently used
        assert r.connection_info.reused
        manager.request("GET", a.url + "/echo")  # a comes back on a new pool, c goes
        assert a.connections_accepted == 2
        assert c.wait_open_connections(0)
        assert b.connections_accepted == 1 and b.open_connections == 1
        stats = manager.stats()
        assert stats.requests == 5
        assert stats.closes == {"POOL_CLOSED": 2}


def test_closed_pool_refuses_requests(test_server: TestServer) -> None:
    pool = ConnectionPool("127.0.0.1", test_server.port)
    pool.request("GET", "/echo")
    pool.close()
    assert pool.closed
    assert pool.stats().closes == {"POOL_CLOSED": 1}
    assert test_server.wait_open_connections(0)
    with pytest.raises(tether.PoolClosed):
        pool.request("GET", "/echo")
    assert test_server.requests_served == 1
    pool.close()  # idempotent


def test_pool_closed_while_streaming_closes_the_connection_at_the_end(
    test_server: TestServer,
) -> None:
    pool = ConnectionPool("127.0.0.1", test_server.port)
    r = pool.request("GET", "/bytes/5000", stream=True)
    pool.close()
    assert r.read() == pattern_bytes(5000)
    assert pool.stats().closes == {"POOL_CLOSED": 1}
    assert test_server.wait_open_connections(0)


def test_session_used_after_close_raises_pool_closed(test_server: TestServer) -> None:
    with serve() as other:
        session = tether.Session()
        session.get(test_server.url + "/echo")
        session.close()
        with pytest.raises(tether.PoolClosed):
            session.get(test_server.url + "/echo")
        with pytest.raises(tether.PoolClosed):
            session.get(other.url + "/echo")  # an origin it never talked to
        assert test_server.wait_open_connections(0)
        assert other.connections_accepted == 0
        assert test_server.requests_served == 1


# -- the keep-alive race (headline) ----------------------------------------------------------------


def test_idle_timeout_race_no_errors_no_retries() -> None:
    """A server closing idle connections after 0.5 s, 20 ms away: once the first close has been
    seen, no request (not even a POST) is sent on a connection the server is about to close."""
    with (
        serve(idle_close_after=0.5) as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.02) as proxy,
        ConnectionPool("127.0.0.1", proxy.port, maxsize=1) as pool,
    ):
        pool.request("GET", "/echo")
        assert wait_for(lambda: closes(pool, "SERVER_CLOSED_IDLE") >= 1, timeout=2)
        learned = pool.learned_idle_timeout
        assert learned is not None and 0.45 <= learned <= 0.6
        errors: list[Exception] = []
        for i, gap in enumerate([0.35, 0.45, 0.48, 0.5, 0.52, 0.55, 0.65] * 2):
            time.sleep(gap)
            method = "POST" if i % 2 else "GET"
            try:
                r = pool.request(method, "/echo", body=b"x" * 100 if i % 2 else None)
            except tether.RequestError as exc:
                errors.append(exc)
                continue
            assert r.status == 200
            assert r.connection_info.retries == 0, (method, gap)
        assert errors == []
        stats = pool.stats()
        assert stats.retries == 0
        assert set(stats.closes) <= {"SERVER_CLOSED_IDLE", "LEARNED_IDLE_TIMEOUT"}
        assert pool.learned_idle_timeout == pytest.approx(0.5, abs=0.1)


# -- leaks ----------------------------------------------------------------------------------------


def test_many_requests_do_not_leak_descriptors(test_server: TestServer) -> None:
    with tether.Session() as session:
        for _ in range(20):
            session.get(test_server.url + "/echo")
        baseline = fd_count()
        for i in range(3000):
            r = session.get(test_server.url + "/echo")
            if i % 500 == 0:
                assert fd_count() == baseline
        assert r.connection_info.request_number == 3020
        assert fd_count() == baseline
        stats = session.stats()
        assert (stats.connections_opened, stats.requests, stats.reuses) == (1, 3020, 3019)
    assert test_server.connections_accepted == 1


def test_pool_context_manager_closes_everything(test_server: TestServer) -> None:
    with ConnectionPool("127.0.0.1", test_server.port) as warm:
        warm.request("GET", "/echo")  # start the idle watcher before counting descriptors
    assert test_server.wait_open_connections(0)
    baseline = fd_count()
    with ConnectionPool("127.0.0.1", test_server.port, maxsize=4) as pool:
        held = [pool.request("GET", "/bytes/1000", stream=True) for _ in range(4)]
        for r in held:
            r.read()
        assert fd_count() >= baseline + 4
        assert pool.stats().idle == 4
    assert pool.stats().open == 0
    assert test_server.wait_open_connections(0)
    assert fd_count() == baseline
