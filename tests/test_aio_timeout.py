"""``Timeout(total=...)``: one deadline for the whole request, kept by both bodies.

A server that trickles its response never lets a per-read timeout fire; only the total does.
Each behaviour is checked on the sync `Session`/`ConnectionPool` and on the asyncio ones, and
afterwards the pool is whole: no slot held, the next request served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aio_helpers import run

import tether
from tether import (
    AsyncConnectionPool,
    AsyncSession,
    ConnectionPool,
    Session,
    Timeout,
    TotalTimeout,
)
from tether.testing import Exchange, TestServer

TRICKLE = Timeout(read=1.0, total=0.4)  # each byte comes within the read timeout


@pytest.fixture
def server() -> Iterator[TestServer]:
    """/trickle: a 40-byte body, one byte every 50 ms (2 s in all); /held: a fast echo."""

    def trickle(ex: Exchange) -> None:
        ex.send_head(200, [("Content-Length", "40")])
        for _ in range(40):
            if not ex.wait(0.05):
                return
            ex.send_raw(b"x")

    def trickle_head(ex: Exchange) -> None:
        for piece in (b"HTTP/1.1 200 OK\r\n", *[b"X-A: b\r\n"] * 40):
            if not ex.wait(0.05):
                return
            ex.send_raw(piece)
        ex.send_raw(b"Content-Length: 0\r\n\r\n")

    with TestServer() as srv:
        srv.route("/trickle", trickle)
        srv.route("/trickle-head", trickle_head)
        yield srv
    assert not srv.errors, srv.errors


def test_total_is_validated_and_off_by_default() -> None:
    assert Timeout().total is None and Timeout.of(5).total is None
    assert Timeout(total=2).deadline(10.0) is not None
    with pytest.raises(ValueError, match="negative"):
        Timeout(total=-1)
    with pytest.raises(TypeError, match="seconds"):
        Timeout(total="1")  # type: ignore[arg-type]
    assert issubclass(TotalTimeout, tether.TimeoutException)


@pytest.mark.parametrize("path", ["/trickle", "/trickle-head"])
def test_a_trickling_response_ends_at_the_total_sync(server: TestServer, path: str) -> None:
    with ConnectionPool("127.0.0.1", server.port) as pool:
        with pytest.raises(TotalTimeout, match=r"total timeout of 0\.4s") as caught:
            pool.request("GET", path, timeout=TRICKLE)
        assert caught.value.request is not None and caught.value.may_have_reached_server
        stats = pool.stats()
        assert stats.in_use == 0 and stats.closes == {"TIMEOUT": 1}
        assert pool.request("GET", "/echo", timeout=TRICKLE).status == 200


@pytest.mark.parametrize("path", ["/trickle", "/trickle-head"])
def test_a_trickling_response_ends_at_the_total_async(server: TestServer, path: str) -> None:
    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", server.port) as pool:
            with pytest.raises(TotalTimeout, match=r"total timeout of 0\.4s") as caught:
                await pool.request("GET", path, timeout=TRICKLE)
            assert caught.value.request is not None and caught.value.may_have_reached_server
            stats = pool.stats()
            assert stats.in_use == 0 and set(stats.closes) == {"ABANDONED"}
            r = await pool.request("GET", "/echo", timeout=TRICKLE)
            assert r.status == 200

    run(main())


def test_without_a_total_the_trickle_is_read_to_the_end(server: TestServer) -> None:
    """The same exchange with only per-read timeouts completes: it is the total that cuts."""
    with Session(timeout=Timeout(read=1.0)) as s:
        assert s.get(server.url + "/trickle").content == b"x" * 40

    async def main() -> bytes:
        async with AsyncSession(timeout=Timeout(read=1.0)) as s:
            return (await s.get(server.url + "/trickle")).content

    assert run(main()) == b"x" * 40


def test_the_total_counts_the_wait_for_a_pooled_connection(server: TestServer) -> None:
    wait = Timeout(pool=5.0, total=0.3)
    with ConnectionPool("127.0.0.1", server.port, maxsize=1, block=True) as pool:
        held = pool.request("GET", "/echo", stream=True)
        with pytest.raises(TotalTimeout) as caught:
            pool.request("GET", "/echo", timeout=wait)
        assert not caught.value.may_have_reached_server
        held.close()
        assert pool.request("GET", "/echo", timeout=wait).status == 200

    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", server.port, maxsize=1, block=True) as pool:
            held = await pool.request("GET", "/echo", stream=True)
            with pytest.raises(TotalTimeout) as caught:
                await pool.request("GET", "/echo", timeout=wait)
            assert not caught.value.may_have_reached_server
            assert not pool._state.waiters
            await held.aclose()
            assert (await pool.request("GET", "/echo", timeout=wait)).status == 200

    run(main())


def test_the_total_covers_reading_a_streamed_body(server: TestServer) -> None:
    with Session() as s:
        r = s.get(server.url + "/trickle", stream=True, timeout=TRICKLE)
        with pytest.raises(TotalTimeout):
            b"".join(r.iter_bytes())
        assert s.stats().in_use == 0

    async def main() -> None:
        async with AsyncSession() as s:
            r = await s.get(server.url + "/trickle", stream=True, timeout=TRICKLE)
            with pytest.raises(TotalTimeout):
                async for _ in r.aiter_bytes():
                    pass
            assert s.stats().in_use == 0
            assert (await s.get(server.url + "/echo", timeout=TRICKLE)).status == 200

    run(main())


def test_a_user_deadline_is_not_reported_as_the_total(server: TestServer) -> None:
    """asyncio.timeout around a request with a longer total: the user's TimeoutError, not
    TotalTimeout (the two deadlines are told apart)."""

    async def main() -> None:
        async with AsyncConnectionPool("127.0.0.1", server.port) as pool:
            with pytest.raises(TimeoutError) as caught:
                async with asyncio.timeout(0.2):
                    await pool.request("GET", "/trickle", timeout=Timeout(total=5))
            assert not isinstance(caught.value, TotalTimeout)
            assert pool.stats().in_use == 0

    run(main())
