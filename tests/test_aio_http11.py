"""The asyncio body over HTTP/1.1: the sync suite's behaviours, against the same servers.

Reuse is proven by what the server counted; lifecycle facts by ``stats()`` and
``connection_info``. Each test runs its coroutine with ``aio_helpers.run``, which also fails
if a task was left pending; pytest's ``filterwarnings = error`` turns an unclosed transport
or socket into a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aio_helpers import LOOPS, eventually, run, socket_count
from helpers import close_wait_count
from servers.nginx import SMALL_BODY, Nginx

import tether
from tether import AsyncConnectionPool, AsyncSession, Timeout
from tether.testing import DelayProxy, Exchange, TestServer, pattern_bytes


@contextmanager
def serve(**options: Any) -> Iterator[TestServer]:
    with TestServer(**options) as server:
        yield server
    assert not server.errors, server.errors


def flaky(server: TestServer) -> list[tuple[str, int, int]]:
    """/flaky answers the first request on a connection and drops the second unanswered."""
    seen: list[tuple[str, int, int]] = []

    def handler(ex: Exchange) -> None:
        seen.append((ex.method, ex.connection_id, ex.index))
        if ex.index == 1:
            ex.respond(200, [("Content-Type", "text/plain")], b"ok")
        else:
            ex.close()

    server.route("/flaky", handler)
    return seen


# -- reuse and the Keep-Alive rules ---------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_sequential_requests_ride_one_connection(test_server: TestServer, loop: str) -> None:
    async def main() -> list[tether.AsyncResponse]:
        async with AsyncSession() as s:
            out = [await s.get(test_server.url + "/echo", params={"i": i}) for i in range(20)]
            assert s.stats().reuses == 19
            return out

    responses = run(main(), loop)
    assert [r.json()["request_index"] for r in responses] == list(range(1, 21))
    assert [r.json()["args"]["i"] for r in responses] == [[str(i)] for i in range(20)]
    assert [r.connection_info.reused for r in responses] == [False] + [True] * 19
    assert test_server.connections_accepted == 1


def test_post_json_form_and_headers_arrive_as_built(test_server: TestServer) -> None:
    async def main() -> list[Any]:
        async with AsyncSession(headers={"X-Session": "1"}) as s:
            a = await s.post(test_server.url + "/echo", json={"k": [1, 2]})
            b = await s.put(test_server.url + "/echo", data={"f": "v"}, headers={"X-Req": "2"})
            c = await s.head(test_server.url + "/echo")
            return [a.json(), b.json(), c.content]

    a, b, head_body = run(main())
    assert (a["method"], a["body"]) == ("POST", '{"k":[1,2]}')
    assert ["Content-Type", "application/json"] in a["headers"]
    assert (b["method"], b["body"]) == ("PUT", "f=v")
    assert ["X-Req", "2"] in b["headers"] and ["X-Session", "1"] in b["headers"]
    assert head_body == b""
    assert test_server.connections_accepted == 1


def test_keep_alive_max_is_honoured() -> None:
    async def main(url: str) -> tether.PoolStats:
        async with AsyncSession() as s:
            for _ in range(9):
                assert (await s.get(url + "/echo")).status == 200
            return s.stats()

    with serve(keep_alive_header="timeout=5, max=3") as server:
        stats = run(main(server.url))
        assert server.connections_accepted == 3
        assert server.connection_request_counts == [3, 3, 3]
    assert stats.retries == 0
    assert stats.closes.get("KEEP_ALIVE_MAX", 0) + stats.closes.get("NOT_PERSISTENT", 0) >= 2


@pytest.mark.parametrize("loop", LOOPS)
def test_server_closing_an_idle_connection_is_noticed_at_once(
    test_server: TestServer, loop: str
) -> None:
    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", test_server.port) as pool:
            await pool.request("GET", "/echo")
            assert pool.stats().open == 1
            assert test_server.close_idle_connections() == 1
            # No request: the loop reads the idle socket and sees the FIN.
            assert await eventually(lambda: pool.stats().closes == {"SERVER_CLOSED_IDLE": 1})
            assert pool.stats().open == 0
            await asyncio.sleep(0.05)
            assert close_wait_count(test_server.port) == 0
            r = await pool.request("POST", "/echo", body=b"once")
            info = r.connection_info
            assert (r.status, info.reused, info.retries) == (200, False, 0)

    run(main(), loop)
    assert test_server.connections_accepted == 2


def test_idle_timeout_race_behind_a_delaying_proxy_get_and_post() -> None:
    """A server closing idle connections after 0.5 s, 20 ms away: once its first close has been
    seen, no request (not even a POST) goes out on a connection it is about to close."""

    async def main(port: int) -> None:
        async with AsyncConnectionPool("127.0.0.1", port, maxsize=1) as pool:
            await pool.request("GET", "/echo")
            assert await eventually(lambda: "SERVER_CLOSED_IDLE" in pool.stats().closes, 2.0)
            learned = pool.learned_idle_timeout
            assert learned is not None and 0.45 <= learned <= 0.6
            for i, gap in enumerate([0.35, 0.45, 0.48, 0.5, 0.52, 0.55, 0.65] * 2):
                await asyncio.sleep(gap)
                method = "POST" if i % 2 else "GET"
                r = await pool.request(method, "/echo", body=b"x" * 100 if i % 2 else None)
                assert (r.status, r.connection_info.retries) == (200, 0), (method, gap)
            stats = pool.stats()
            assert stats.retries == 0
            assert set(stats.closes) <= {"SERVER_CLOSED_IDLE", "LEARNED_IDLE_TIMEOUT"}

    with (
        serve(idle_close_after=0.5) as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.02) as proxy,
    ):
        run(main(proxy.port))


# -- retry rules ----------------------------------------------------------------------------------


def test_get_on_a_dead_reused_connection_is_retried_and_post_never(
    test_server: TestServer,
) -> None:
    seen = flaky(test_server)

    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", test_server.port) as pool:
            await pool.request("GET", "/flaky")
            r = await pool.request("GET", "/flaky")
            assert (r.status, r.content, r.connection_info.retries) == (200, b"ok", 1)
            assert pool.stats().closes == {"NETWORK_ERROR": 1}
            with pytest.raises(tether.ReadError) as info:
                await pool.request("POST", "/flaky", body=b"charge the card")
            assert info.value.may_have_reached_server is True
            assert info.value.request is not None and info.value.request.method == "POST"
            assert pool.stats().retries == 1
            assert (await pool.request("GET", "/echo")).status == 200

    run(main())
    assert [m for m, _, _ in seen].count("POST") == 1  # it arrived exactly once
    assert seen[:3] == [("GET", 1, 1), ("GET", 1, 2), ("GET", 2, 1)]


def test_failure_on_a_new_connection_is_not_retried(test_server: TestServer) -> None:
    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", test_server.port) as pool:
            with pytest.raises(tether.ReadError):
                await pool.request("GET", "/drop-after-request")
            assert pool.stats().retries == 0

    run(main())
    assert test_server.connections_accepted == 1


# -- streaming ------------------------------------------------------------------------------------


def test_streaming_holds_the_connection_until_read_or_closed(test_server: TestServer) -> None:
    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", test_server.port, maxsize=2) as pool:
            r1 = await pool.request("GET", "/bytes/200000", stream=True)
            assert pool.stats().in_use == 1
            with pytest.raises(tether.StreamError):
                r1.read()  # a streamed async body is never read by a blocking call
            pieces = [p async for p in r1.aiter_bytes(4096)]
            assert {len(p) for p in pieces[:-1]} == {4096}
            assert b"".join(pieces) == pattern_bytes(200000)
            assert pool.stats().in_use == 0
            async with await pool.request("GET", "/bytes/1000", stream=True) as r2:
                assert await r2.aread() == pattern_bytes(1000)
            r3 = await pool.request("GET", "/bytes/100", stream=True)
            await r3.aclose()  # small rest: drained, connection kept
            r4 = await pool.request("GET", "/bytes/5000000", stream=True)
            await r4.aclose()  # large rest: closed
            stats = pool.stats()
            assert stats.closes == {"BODY_NOT_CONSUMED": 1}
            assert stats.reuses == 3  # r2, r3 and r4 rode r1's connection

    run(main())
    assert test_server.connections_accepted == 1


def test_truncated_streamed_body_is_a_typed_error(test_server: TestServer) -> None:
    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", test_server.port) as pool:
            r = await pool.request("GET", "/truncate", stream=True)
            with pytest.raises(tether.RemoteProtocolError, match="shorter than announced"):
                await r.aread()
            assert (await pool.request("GET", "/echo")).status == 200

    run(main())


# -- timeouts and the blocking pool ---------------------------------------------------------------


def test_read_timeout_and_pool_timeout_are_typed(test_server: TestServer) -> None:
    async def main() -> None:
        pool = AsyncConnectionPool("127.0.0.1", test_server.port, maxsize=1, block=True)
        async with pool:
            with pytest.raises(tether.ReadTimeout):
                await pool.request("GET", "/slow/2", timeout=Timeout(read=0.1))
            assert pool.stats().closes == {"TIMEOUT": 1}
            held = await pool.request("GET", "/bytes/10", stream=True)
            with pytest.raises(tether.PoolTimeout):
                await pool.request("GET", "/echo", timeout=Timeout(pool=0.1))
            await held.aclose()
            assert (await pool.request("GET", "/echo")).status == 200

    run(main())


@pytest.mark.parametrize("loop", LOOPS)
def test_many_tasks_race_for_a_blocking_pool_of_two(test_server: TestServer, loop: str) -> None:
    async def main() -> tether.PoolStats:
        async with AsyncConnectionPool(
            "127.0.0.1", test_server.port, maxsize=2, block=True
        ) as pool:

            async def worker(k: int) -> list[int]:
                return [(await pool.request("GET", "/echo")).status for _ in range(10)]

            results = await asyncio.gather(*(worker(k) for k in range(50)))
            assert all(s == 200 for statuses in results for s in statuses)
            return pool.stats()

    stats = run(main(), loop)
    assert (stats.connections_opened, stats.requests, stats.open) == (2, 500, 2)
    assert test_server.connections_accepted == 2


# -- nginx ----------------------------------------------------------------------------------------


def test_nginx_200_gets_and_16_tasks(nginx: Nginx) -> None:
    before = nginx.stats().accepts

    async def main() -> tether.PoolStats:
        async with AsyncSession(pool_maxsize=16) as s:
            for _ in range(100):
                r = await s.get(nginx.url + "/")
                assert (r.status, r.content) == (200, SMALL_BODY)
            assert s.stats().connections_opened == 1

            async def worker() -> None:
                for _ in range(20):
                    assert (await s.get(nginx.url + "/")).content == SMALL_BODY

            await asyncio.gather(*(worker() for _ in range(16)))
            return s.stats()

    stats = run(main())
    assert stats.requests == 420
    assert stats.connections_opened <= 16
    assert nginx.stats().accepts - before - 1 == stats.connections_opened


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_16_connections_reading_at_once_each_get_their_own_bytes(
    nginx: Nginx, nginx_tls: Nginx, loop: str, tls: bool
) -> None:
    # The loop reads every connection into one shared buffer (aio.transport.BufferedReads):
    # streamed 64 KiB bodies on 16 connections, their pieces interleaved, must each arrive whole
    # and in order.
    big = bytes(range(256)) * (64 * 1024 // 256)
    server = nginx_tls if tls else nginx

    async def one(s: AsyncSession) -> bytes:
        async with await s.get(server.url + "/64k.bin", stream=True) as r:
            return b"".join([piece async for piece in r.aiter_bytes(1000)])

    async def main() -> list[bytes]:
        async with AsyncSession(pool_maxsize=16, verify=str(nginx_tls.ca_file)) as s:
            bodies = []
            for _ in range(3):
                bodies += await asyncio.gather(*(one(s) for _ in range(16)))
            return bodies

    bodies = run(main(), loop)
    assert len(bodies) == 48
    assert all(body == big for body in bodies)


def test_nginx_short_keepalive(nginx_short_keepalive: Nginx) -> None:
    async def main() -> tether.PoolStats:
        async with AsyncSession() as s:
            for _ in range(9):
                assert (await s.get(nginx_short_keepalive.url + "/")).status == 200
            return s.stats()

    stats = run(main())
    assert stats.connections_opened == 3
    assert stats.retries == 0


# -- leaks ----------------------------------------------------------------------------------------


def test_thousand_requests_and_aclose_leave_no_descriptor(test_server: TestServer) -> None:
    async def main() -> None:
        before = socket_count()
        async with AsyncSession(pool_maxsize=4) as s:

            async def worker() -> None:
                for _ in range(250):
                    assert (await s.get(test_server.url + "/echo")).status == 200

            await asyncio.gather(*(worker() for _ in range(4)))
            assert s.stats().connections_opened == 4
        assert test_server.wait_open_connections(0)  # the server side of them, too
        assert await eventually(lambda: socket_count() == before, 3.0), (socket_count(), before)

    run(main())
