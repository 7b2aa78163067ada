"""Regression tests for issue 8's pool items, which the pool redesign fixed by design.

Each fails on the pool before the redesign (checked against commit fe8b89a): a waiter never
woken after a streamed response was garbage-collected (8.3), a slot lost when close() was
interrupted (8.4), a complete streamed HEAD/204/304 losing its connection (8.5), an evicted pool
surfacing as PoolClosed on an open manager (8.7).
"""

from __future__ import annotations

import gc
import threading
import time

import pytest

from tether import ConnectionPool, PoolManager, Timeout
from tether.testing import TestServer


def test_waiter_is_woken_when_a_dropped_streamed_response_is_collected(
    test_server: TestServer,
) -> None:
    pool = ConnectionPool("127.0.0.1", test_server.port, maxsize=1, block=True)
    with pool:
        held = [pool.request("GET", "/bytes/100000", stream=True)]
        result: list[object] = []

        def waiter() -> None:
            started = time.monotonic()
            r = pool.request("GET", "/", timeout=Timeout(pool=5.0))
            result.append((r.status, time.monotonic() - started))

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.1)  # the waiter is queued for the only slot
        held.clear()  # the unread streamed response is dropped ...
        gc.collect()  # ... and collected: its finalizer must free the slot and wake the waiter
        t.join(5.0)
        assert result, "the waiter never got the connection"
        status, waited = result[0]  # type: ignore[misc]
        assert status == 200
        assert waited < 2.0  # woken, not timed out at pool=5 s
        assert pool.stats().closes.get("BODY_NOT_CONSUMED") == 1


def test_interrupted_close_does_not_leak_the_slot(
    test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = ConnectionPool("127.0.0.1", test_server.port, maxsize=1, block=True)
    with pool:
        r = pool.request("GET", "/slow-body/0.3", stream=True)  # half the body comes later
        conn = r.connection_info._conn

        def interrupted(*args: object, **kwargs: object) -> bytes:
            raise KeyboardInterrupt

        monkeypatch.setattr(conn, "read_body", interrupted)
        with pytest.raises(KeyboardInterrupt):
            r.close()  # the drain is interrupted
        monkeypatch.undo()
        stats = pool.stats()
        assert stats.in_use == 0 and stats.open == 0  # the connection was closed, not leaked
        assert stats.closes.get("ABANDONED") == 1
        r2 = pool.request("GET", "/", timeout=Timeout(pool=1.0))  # the slot is free at once
        assert r2.status == 200
    assert pool.stats().open == 0


@pytest.mark.parametrize(
    ("method", "path"), [("HEAD", "/"), ("GET", "/status/204"), ("GET", "/status/304")]
)
def test_complete_streamed_response_without_body_keeps_its_connection(
    test_server: TestServer, method: str, path: str
) -> None:
    with ConnectionPool("127.0.0.1", test_server.port) as pool:
        for _ in range(4):
            r = pool.request(method, path, stream=True)
            r.close()  # closed unread, but there was nothing to read
        assert test_server.connections_accepted == 1
        assert pool.stats().closes.get("BODY_NOT_CONSUMED", 0) == 0


def test_evicted_pool_never_surfaces_as_pool_closed(test_server: TestServer) -> None:
    other = TestServer()
    third = TestServer()
    with other, third, PoolManager(num_pools=2) as manager:
        urls = [f"http://127.0.0.1:{s.port}/" for s in (test_server, other, third)]
        errors: list[BaseException] = []

        def work(offset: int) -> None:
            try:
                for i in range(80):
                    manager.request("GET", urls[(i + offset) % 3])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
