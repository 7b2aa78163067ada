"""The asyncio body over HTTP/2: multiplexing across tasks, GOAWAY and REFUSED_STREAM,
cancellation resetting a stream while its connection carries on, nginx over TLS (ALPN).

What the server counted (``connections_accepted``, ``requests``, nginx's access log) proves
how many connections and streams really went over the wire.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aio_helpers import LOOPS, eventually, run, socket_count
from servers.nginx import SMALL_BODY, Nginx

import tether
from tether import AsyncConnectionPool, AsyncSession, Timeout
from tether.lifecycle.rules import PING_AFTER_IDLE, PING_TIMEOUT
from tether.testing import DelayProxy, H2TestServer, pattern_bytes


@pytest.fixture
def h2() -> Iterator[H2TestServer]:
    with H2TestServer() as server:
        yield server
    assert server.errors == []


def h2c_pool(server: H2TestServer, **options: Any) -> AsyncConnectionPool:
    return AsyncConnectionPool("127.0.0.1", server.port, http2="prior-knowledge", **options)


@pytest.mark.parametrize("loop", LOOPS)
def test_16_tasks_share_one_connection(h2: H2TestServer, loop: str) -> None:
    async def main() -> list[tether.AsyncResponse]:
        async with h2c_pool(h2, maxsize=4) as pool:
            out = await asyncio.gather(*(pool.request("GET", "/slow?ms=100") for _ in range(16)))
            assert pool.stats().peak_streams == 16
            return list(out)

    responses = run(main(), loop)
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert {r.connection_info.connection_id for r in responses} == {
        responses[0].connection_info.connection_id
    }
    assert sorted(r.connection_info.stream_id for r in responses) == list(range(1, 33, 2))
    assert h2.connections_accepted == 1
    assert len(h2.requests) == 16


def test_bodies_uploads_and_trailers(h2: H2TestServer) -> None:
    async def main() -> None:
        async with h2c_pool(h2) as pool:
            r = await pool.request("POST", "/echo", body=b"u" * 300_000)
            assert r.json()["body_length"] == 300_000
            r = await pool.request("GET", "/bytes/1000000")
            assert r.content == pattern_bytes(1_000_000)
            r = await pool.request("GET", "/trailers?n=1000")
            assert len(r.content) == 1000 and "x-checksum" in r.trailers
            async with await pool.request("GET", "/bytes/500000", stream=True) as s:
                assert b"".join([p async for p in s.aiter_bytes()]) == pattern_bytes(500_000)

    run(main())
    assert h2.connections_accepted == 1


def test_a_server_stream_limit_is_respected() -> None:
    async def main(server: H2TestServer) -> None:
        async with h2c_pool(server, block=True) as pool:  # wait for a stream, don't dial
            rs = await asyncio.gather(*(pool.request("GET", "/slow?ms=50") for _ in range(12)))
            assert {r.status for r in rs} == {200}
            stats = pool.stats()
            assert (stats.peak_streams, stats.goaways, stats.connections_opened) == (2, 0, 1)

    with H2TestServer(max_concurrent_streams=2) as server:
        run(main(server))
        assert server.goaways_sent == 0
    assert server.errors == []


def test_goaway_while_tasks_are_in_flight_loses_no_request() -> None:
    async def main(server: H2TestServer) -> tether.PoolStats:
        async with h2c_pool(server, maxsize=4) as pool:
            rs = await asyncio.gather(
                *(pool.request("POST", "/echo", body=b"p%d" % i) for i in range(20))
            )
            assert {r.status for r in rs} == {200}
            return pool.stats()

    with H2TestServer(goaway_after=5) as server:
        stats = run(main(server))
        bodies = [r[4] for r in server.requests]
        assert len(server.requests) >= 20
    assert server.errors == []
    assert stats.goaways >= 1
    assert stats.unprocessed_retries == stats.retries >= 1
    assert stats.connections_opened >= 4
    assert len(bodies) >= 20


def test_refused_stream_is_sent_again(h2: H2TestServer) -> None:
    async def main() -> None:
        async with h2c_pool(h2) as pool:
            r = await pool.request("POST", "/refuse-once", body=b"once processed")
            assert (r.status, r.connection_info.retries) == (200, 1)
            assert pool.stats().unprocessed_retries == 1
            with pytest.raises(tether.StreamReset):
                await pool.request("GET", "/rst-mid-body")
            assert (await pool.request("GET", "/")).connection_info.reused

    run(main())
    assert h2.connections_accepted == 1


def test_cancelled_tasks_reset_their_streams_and_the_connection_stays(h2: H2TestServer) -> None:
    async def main() -> None:
        async with h2c_pool(h2) as pool:
            await pool.request("GET", "/")
            tasks = [asyncio.ensure_future(pool.request("GET", "/slow?ms=5000")) for _ in range(8)]
            await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stats = pool.stats()
            assert (stats.streams_in_flight, stats.open, stats.closes) == (0, 1, {})
            r = await pool.request("GET", "/", timeout=Timeout(pool=0.5, read=2))
            assert r.connection_info.reused and r.connection_info.stream_id == 19

    run(main())
    assert h2.connections_accepted == 1


def test_random_cancellations_on_one_http2_connection(nginx_h2c: Nginx) -> None:
    """800 calls cut at random moments share one connection with the ones that finish.

    Against nginx: a RST_STREAM(CANCEL) may cross the server's END_STREAM on the wire, which
    RFC 9113 (5.1, "closed") allows and nginx ignores; h2's server side (H2TestServer) treats
    some of those as a connection error, so it cannot judge this test.
    """
    before_accepts = nginx_h2c.stats().accepts

    async def main() -> int:
        before = socket_count()
        pool = AsyncConnectionPool("127.0.0.1", nginx_h2c.port, http2="prior-knowledge")
        async with pool:

            async def worker(seed: int) -> int:
                rng = random.Random(seed)
                cut = 0
                for _ in range(80):  # below nginx's 1,000 requests per connection
                    path = rng.choice(["/slow/0.01", "/64k.bin", "/", "/echo"])
                    try:
                        async with asyncio.timeout(rng.uniform(0, 0.02)):
                            await pool.request("POST" if path == "/echo" else "GET", path)
                    except TimeoutError:
                        cut += 1
                return cut

            cut = sum(await asyncio.gather(*(worker(k) for k in range(10))))
            stats = pool.stats()
            assert (stats.streams_in_flight, stats.in_use, stats.open) == (0, 0, 1)
            assert (stats.connections_opened, stats.closes) == (1, {})
            r = await pool.request("GET", "/", timeout=Timeout(pool=0.5, read=2))
            assert r.connection_info.reused and r.content == SMALL_BODY
        assert await eventually(lambda: socket_count() == before, 3.0)
        return cut

    assert run(main()) > 100
    assert nginx_h2c.stats().accepts - before_accepts - 1 == 1


def test_server_closing_an_idle_http2_connection_is_noticed(h2: H2TestServer) -> None:
    async def main() -> None:
        async with h2c_pool(h2) as pool:
            await pool.request("GET", "/goaway?last=0")  # answered, then GOAWAY and close
            assert await eventually(lambda: pool.stats().open == 0)
            assert pool.stats().goaways == 1
            r = await pool.request("GET", "/")
            assert (r.status, r.connection_info.reused, r.connection_info.retries) == (
                200,
                False,
                0,
            )

    run(main())
    assert h2.connections_accepted == 2


def test_nginx_h2_over_tls_16_tasks(nginx_h2: Nginx) -> None:
    async def main() -> tether.PoolStats:
        async with AsyncSession(http2=True, verify=str(nginx_h2.ca_file)) as s:

            async def worker() -> None:
                for _ in range(20):
                    r = await s.get(nginx_h2.url + "/")
                    assert (r.http_version, r.content) == ("HTTP/2", SMALL_BODY)
                    assert r.connection_info.alpn_protocol == "h2"

            await asyncio.gather(*(worker() for _ in range(16)))
            return s.stats()

    before = len(nginx_h2.access_log())
    stats = run(main())
    assert (stats.connections_opened, stats.requests) == (1, 320)
    entries = nginx_h2.wait_for_requests(before + 320)[before:]
    assert len({e.connection for e in entries}) == 1


# -- PING before reusing a silent connection (the rule is lifecycle.rules.ping_due) ------------


def _silent_pool(port: int, now: list[float]) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        "127.0.0.1", port, http2="prior-knowledge", clock=lambda: now[0], maxsize=2
    )


def test_unanswered_ping_retires_a_silent_connection_and_the_request_goes_on() -> None:
    now = [time.monotonic()]

    async def main(proxy: DelayProxy) -> None:
        async with _silent_pool(proxy.port, now) as pool:
            assert (await pool.request("GET", "/")).status == 200
            proxy.delay = PING_TIMEOUT + 0.5  # the answer arrives after the PING's deadline
            now[0] += PING_AFTER_IDLE + 0.5  # silent long enough for a PING, not idle-expired
            r = await pool.request("GET", "/")
            assert (r.status, r.connection_info.reused) == (200, False)
            assert pool.stats().closes == {"PING_TIMEOUT": 1}

    with H2TestServer() as server, DelayProxy(("127.0.0.1", server.port), delay=0.0) as proxy:
        run(main(proxy))
        assert server.connections_accepted == 2


def test_answered_ping_keeps_the_connection_and_a_cancelled_one_frees_its_slot() -> None:
    now = [time.monotonic()]

    async def main(proxy: DelayProxy) -> None:
        async with _silent_pool(proxy.port, now) as pool:
            assert (await pool.request("GET", "/")).status == 200
            proxy.delay = 0.2  # answered within PING_TIMEOUT
            now[0] += PING_AFTER_IDLE + 0.5
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):  # cancelled while the PING is out
                    await pool.request("GET", "/")
            assert pool.stats().in_use == 0 and pool.stats().closes == {}
            r = await pool.request("GET", "/")
            assert (r.status, r.connection_info.reused) == (200, True)
            assert pool.stats().closes == {}

    with H2TestServer() as server, DelayProxy(("127.0.0.1", server.port), delay=0.0) as proxy:
        run(main(proxy))
        assert server.connections_accepted == 1
