"""tether against a real nginx: reuse proven by tether's counters and by nginx's own accepts.

``Nginx.stats()`` opens a connection of its own, so a delta between two ``stats()`` calls is
tether's accepts plus one; ``accepts_since`` subtracts it.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from helpers import fd_count
from servers.nginx import BIG_SIZE, SMALL_BODY, Nginx

import tether
from tether import CloseReason

BIG_BODY = bytes(range(256)) * (BIG_SIZE // 256)


def accepts_since(server: Nginx, before: int) -> int:
    """TCP connections nginx accepted since ``before`` (a ``stats().accepts``), minus our own."""
    return server.stats().accepts - before - 1


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``condition`` (a server-side fact that lags a little) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def _watcher_started(nginx: Nginx) -> None:
    """Start the process-wide idle watcher (it owns one epoll fd) before fds are counted."""
    with tether.Session() as s:
        s.get(nginx.url + "/")


@pytest.fixture
def session() -> Iterator[tether.Session]:
    with tether.Session() as s:
        yield s


# -- ConnectionPool: the README's example -------------------------------------------------------


def test_pool_readme_example_reuses_one_connection(nginx: Nginx) -> None:
    before = nginx.stats().accepts
    with tether.ConnectionPool("127.0.0.1", nginx.port, maxsize=1) as pool:
        r1 = pool.request("GET", "/search", fields={"q": "python", "v": "1.0"})
        r2 = pool.request("GET", "/search", fields={"q": "php", "v": "1.0"})
        assert (pool.num_connections, pool.num_requests) == (1, 2)
        assert (r1.status, r2.status) == (200, 200)
        assert r1.content == b"q=python&v=1.0\n"  # nginx echoes $args: the fields arrived
        assert r2.content == b"q=php&v=1.0\n"
        assert (r1.connection_info.reused, r2.connection_info.reused) == (False, True)
        assert r1.connection_info.connection_id == r2.connection_info.connection_id
        assert pool.stats().reuses == 1
        assert accepts_since(nginx, before) == 1


# -- Session: sequential reuse ------------------------------------------------------------------


def test_session_200_gets_ride_one_connection(nginx: Nginx, session: tether.Session) -> None:
    before = nginx.stats().accepts
    responses = [session.get(nginx.url + "/") for _ in range(200)]
    assert all(r.status == 200 and r.content == SMALL_BODY for r in responses)
    stats = session.stats()
    assert (stats.connections_opened, stats.requests, stats.reuses) == (1, 200, 199)
    assert (stats.open, stats.idle, stats.in_use, stats.closes) == (1, 1, 0, {})
    assert [r.connection_info.request_number for r in responses] == list(range(1, 201))
    assert len({r.connection_info.connection_id for r in responses}) == 1
    assert [r.connection_info.reused for r in responses] == [False] + [True] * 199
    assert accepts_since(nginx, before) == 1


def test_session_big_body_post_head_and_404_all_reuse(
    nginx: Nginx, session: tether.Session
) -> None:
    before = nginx.stats().accepts
    url = nginx.url
    big = session.get(url + "/64k.bin")
    assert big.status == 200
    assert len(big.content) == 65536 and big.content == BIG_BODY
    assert big.headers["Content-Type"] == "application/octet-stream"

    posted = [
        session.post(url + "/echo", data=b"x" * 100_000),
        session.post(url + "/echo", data={"a": "1", "b": "two words"}),
        session.post(url + "/echo", json={"key": [1, 2, 3]}),
        session.post(url + "/echo", data=iter([b"chunked ", b"body"])),  # Transfer-Encoding
    ]
    assert [(r.status, r.content) for r in posted] == [(200, b"ok\n")] * 4
    assert all(r.connection_info.reused for r in posted)

    head = session.head(url + "/64k.bin")
    assert head.status == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == "65536"
    after_head = session.get(url + "/")
    assert after_head.content == SMALL_BODY
    assert after_head.connection_info.reused
    assert after_head.connection_info.connection_id == head.connection_info.connection_id

    missing = session.get(url + "/status/404")
    assert missing.status == 404 and not missing.ok
    assert missing.connection_info.reused
    with pytest.raises(tether.HTTPStatusError, match="404") as excinfo:
        missing.raise_for_status()
    assert excinfo.value.response is missing
    assert session.get(url + "/").connection_info.reused  # a 404 does not cost the connection

    stats = session.stats()
    assert (stats.connections_opened, stats.requests, stats.reuses) == (1, 9, 8)
    assert stats.closes == {}
    assert accepts_since(nginx, before) == 1


# -- nginx closing connections: keepalive_requests 3, keepalive_timeout 1 s ---------------------


def test_short_keepalive_requests_and_idle_timeout(nginx_short_keepalive: Nginx) -> None:
    server = nginx_short_keepalive
    before = server.stats().accepts
    with tether.Session() as s:
        responses = [s.get(server.url + "/") for _ in range(10)]
        assert all(r.content == SMALL_BODY for r in responses)
        # nginx says "Connection: close" on every 3rd response of a connection.
        assert [r.headers.get("Connection") for r in responses[:3]] == [
            "keep-alive",
            "keep-alive",
            "close",
        ]
        assert [r.connection_info.request_number for r in responses] == [1, 2, 3] * 3 + [1]
        stats = s.stats()
        assert stats.connections_opened == math.ceil(10 / 3) == 4
        assert (stats.requests, stats.reuses, stats.retries) == (10, 6, 0)
        assert stats.closes == {CloseReason.NOT_PERSISTENT.name: 3}
        assert stats.open == 1
        assert accepts_since(server, before) == 4

        # nginx closes an idle connection after 1 s without saying so: the watcher closes
        # our end as soon as it does, and the pool learns the timeout.
        time.sleep(1.3)
        stats = s.stats()
        assert stats.open == 0
        assert stats.closes == {"NOT_PERSISTENT": 3, "SERVER_CLOSED_IDLE": 1}
        (pool,) = s.pool_manager.pools()
        learned = pool.learned_idle_timeout
        assert learned is not None and 0.8 < learned < 1.6

        got = s.get(server.url + "/")
        assert got.content == SMALL_BODY
        assert (got.connection_info.reused, got.connection_info.retries) == (False, 0)

        # Idle again past nginx's timeout: a POST must not be sent on the stale connection.
        time.sleep(1.3)
        posted = s.post(server.url + "/echo", data=b"payload")
        assert (posted.status, posted.content) == (200, b"ok\n")
        assert (posted.connection_info.reused, posted.connection_info.retries) == (False, 0)
        stats = s.stats()
        assert stats.retries == 0
        assert stats.connections_opened == 6
        assert stats.closes["NOT_PERSISTENT"] == 3
        # The GET's connection was closed by the watcher (nginx closed it) or retired early
        # by the learned timeout; either way never used after nginx dropped it.
        idle_closes = stats.closes.get("SERVER_CLOSED_IDLE", 0)
        assert idle_closes + stats.closes.get("LEARNED_IDLE_TIMEOUT", 0) == 2


# -- threads --------------------------------------------------------------------------------------


def test_session_shared_by_16_threads(nginx: Nginx) -> None:
    fds_before = fd_count()
    before = nginx.stats().accepts
    session = tether.Session(pool_maxsize=16)
    start = threading.Barrier(16)
    errors: list[BaseException] = []
    bad: list[tether.Response] = []

    def worker() -> None:
        try:
            start.wait()
            for _ in range(50):
                r = session.get(nginx.url + "/")
                if r.status != 200 or r.content != SMALL_BODY:
                    bad.append(r)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and bad == []
    stats = session.stats()
    assert stats.requests == 800 and stats.retries == 0
    assert stats.reuses == 800 - stats.connections_opened
    # block=False may open extras under load; each is closed as POOL_FULL on release.
    extras = stats.closes.get("POOL_FULL", 0)
    assert set(stats.closes) <= {"POOL_FULL"}
    assert stats.connections_opened == extras + stats.open
    assert stats.open == stats.idle <= 16 and stats.in_use == 0
    assert accepts_since(nginx, before) == stats.connections_opened

    kept = stats.open
    session.close()
    stats = session.stats()
    assert (stats.open, stats.idle, stats.in_use) == (0, 0, 0)
    assert stats.closes.get("POOL_CLOSED", 0) == kept
    assert fd_count() == fds_before
    with pytest.raises(tether.PoolClosed):
        session.get(nginx.url + "/")


# -- PoolManager --------------------------------------------------------------------------------


def test_pool_manager_one_pool_per_origin_and_lru_eviction(
    nginx_factory: Callable[..., Nginx],
) -> None:
    a, b = nginx_factory(), nginx_factory()
    with tether.PoolManager(num_pools=2) as manager:
        ra = manager.request("GET", a.url + "/")
        rb = manager.request("GET", b.url + "/")
        assert ra.content == rb.content == SMALL_BODY
        pools = manager.pools()
        assert len(pools) == 2
        assert [p.num_connections for p in pools] == [1, 1]
        assert manager.request("GET", a.url + "/").connection_info.reused

    with tether.PoolManager(num_pools=1) as manager:
        before_a = a.stats().accepts
        manager.request("GET", a.url + "/")
        (pool_a,) = manager.pools()
        assert pool_a.stats().open == 1
        manager.request("GET", b.url + "/")  # a is now the least recently used: evicted
        (pool_b,) = manager.pools()
        assert pool_b is not pool_a and pool_a.closed
        assert pool_a.stats().open == 0
        assert pool_a.stats().closes == {"POOL_CLOSED": 1}
        stats = manager.stats()  # the evicted pool's counters are kept
        assert (stats.connections_opened, stats.open) == (2, 1)
        assert stats.closes == {"POOL_CLOSED": 1}
        assert accepts_since(a, before_a) == 1
        # nginx sees the connection go: only stats()'s own connection stays active.
        assert wait_until(lambda: a.stats().active == 1)
        before_a = a.stats().accepts
        again = manager.request("GET", a.url + "/")  # a new pool, a new connection
        assert not again.connection_info.reused
        assert manager.stats().connections_opened == 3
        assert accepts_since(a, before_a) == 1


# -- leaks --------------------------------------------------------------------------------------


def test_2000_requests_leak_nothing(nginx_factory: Callable[..., Nginx]) -> None:
    server = nginx_factory(keepalive_requests=100_000)  # the shared one ends each at 1000
    fds_before = fd_count()
    before = server.stats().accepts
    with tether.Session() as session:
        assert session.get(server.url + "/").content == SMALL_BODY
        fds_one_connection = fd_count()
        assert fds_one_connection == fds_before + 1  # the pooled socket, nothing else
        for _ in range(2000):
            r = session.get(server.url + "/")
            assert r.content == SMALL_BODY
        assert fd_count() == fds_one_connection
        stats = session.stats()
        assert (stats.connections_opened, stats.requests, stats.reuses) == (1, 2001, 2000)
        assert (stats.open, stats.closes, stats.retries) == (1, {}, 0)
        assert r.connection_info.request_number == 2001
        assert accepts_since(server, before) == 1
    assert session.stats().open == 0
    assert session.stats().closes == {"POOL_CLOSED": 1}
    assert fd_count() == fds_before


def test_connection_turnover_never_closes_a_healthy_connection(
    nginx_factory: Callable[..., Nginx],
) -> None:
    # nginx ends every connection after 5 requests ("Connection: close" on the 5th): 1000
    # requests are 200 connections, each carrying exactly 5 and each closed for that reason.
    server = nginx_factory(keepalive_requests=5)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # thread switches are frequent: the watcher often runs late
    try:
        for _ in range(30):  # the race is likely, not certain, in a round
            before = server.stats().accepts
            with tether.Session() as session:
                numbers = [
                    session.get(server.url + "/").connection_info.request_number
                    for _ in range(1000)
                ]
                stats = session.stats()
            assert stats.closes == {"NOT_PERSISTENT": 200}
            assert stats.connections_opened == 200
            assert numbers == [1, 2, 3, 4, 5] * 200
            assert accepts_since(server, before) == 200
    finally:
        sys.setswitchinterval(interval)


def test_one_shot_get_leaves_no_fd(nginx: Nginx) -> None:
    fds_before = fd_count()
    before = nginx.stats().accepts
    r = tether.get(nginx.url + "/")
    assert (r.status, r.content) == (200, SMALL_BODY)
    assert fd_count() == fds_before
    assert accepts_since(nginx, before) == 1
    assert wait_until(lambda: nginx.stats().active == 1)  # nginx saw it closed too


# -- streaming ----------------------------------------------------------------------------------


def test_stream_read_to_end_returns_connection(nginx: Nginx, session: tether.Session) -> None:
    r = session.get(nginx.url + "/64k.bin", stream=True)
    assert session.stats().in_use == 1
    body = b"".join(r.iter_bytes())
    assert body == BIG_BODY
    stats = session.stats()
    assert (stats.in_use, stats.idle) == (0, 1)
    nxt = session.get(nginx.url + "/")
    assert nxt.connection_info.connection_id == r.connection_info.connection_id
    assert nxt.connection_info.request_number == r.connection_info.request_number + 1
    assert session.stats().connections_opened == 1


def test_stream_closed_early_is_drained_and_reused(nginx: Nginx, session: tether.Session) -> None:
    before = nginx.stats().accepts
    r = session.get(nginx.url + "/64k.bin", stream=True)
    first = next(r.iter_bytes(1024))
    assert first == BIG_BODY[:1024]
    r.close()  # under 64 KiB left: drained, not closed
    stats = session.stats()
    assert (stats.in_use, stats.idle, stats.closes) == (0, 1, {})
    nxt = session.get(nginx.url + "/")
    assert nxt.content == SMALL_BODY
    assert nxt.connection_info.reused
    assert nxt.connection_info.connection_id == r.connection_info.connection_id
    assert session.stats().connections_opened == 1
    assert accepts_since(nginx, before) == 1


def test_stream_with_block_closes_on_exit(nginx: Nginx, session: tether.Session) -> None:
    with session.get(nginx.url + "/64k.bin", stream=True) as r:
        assert r.status == 200
    assert session.stats().in_use == 0
    with pytest.raises(tether.StreamClosed):
        r.read()
    assert session.get(nginx.url + "/").connection_info.reused
