"""PING before reusing a silent HTTP/2 connection: an unanswered PING retires it in bounded time."""

from __future__ import annotations

import time

import pytest

from tether import ConnectionPool
from tether.sync.http2 import PING_AFTER_IDLE, PING_TIMEOUT
from tether.testing import DelayProxy, H2TestServer


@pytest.mark.timeout(30)  # before the fix the PING wait blocked in recv() with no timeout
def test_unanswered_ping_closes_the_connection_and_the_request_goes_on_a_new_one() -> None:
    now = [time.monotonic()]
    delay = PING_TIMEOUT + 0.5  # the answer can only arrive after the PING's deadline
    with (
        H2TestServer() as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.0) as proxy,
        ConnectionPool(
            "127.0.0.1", proxy.port, http2="prior-knowledge", clock=lambda: now[0]
        ) as pool,
    ):
        assert pool.request("GET", "/").status == 200
        proxy.delay = delay
        now[0] += PING_AFTER_IDLE + 0.5  # silent long enough for a PING, not idle-expired
        r = pool.request("GET", "/")
        assert r.status == 200
        assert not r.connection_info.reused
        assert pool.stats().closes == {"PING_TIMEOUT": 1}
        assert server.connections_accepted == 2
