"""Async request bodies: an async iterable is streamed by AsyncSession and the asyncio pools
as it comes (HTTP/1.1 chunked or with the caller's Content-Length; HTTP/2 DATA frames),
never buffered; its generator is closed when the upload stops early; a threaded client
refuses it before taking a connection."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator

import pytest
from aio_helpers import LOOPS, run

import tether
from tether import AsyncConnectionPool, AsyncSession, Request, Session, WriteError
from tether.testing import H2TestServer, TestServer

PIECES = [b"alpha-" * 1000, b"", b"beta-" * 5000, b"gamma"]
WHOLE = b"".join(PIECES)


async def agen(pieces: list[bytes], closed: list[bool] | None = None) -> AsyncIterator[bytes]:
    try:
        for piece in pieces:
            await asyncio.sleep(0)  # a real async source: the loop runs between pieces
            yield piece
    finally:
        if closed is not None:
            closed.append(True)


@pytest.fixture
def h2() -> Iterator[H2TestServer]:
    with H2TestServer() as server:
        yield server
    assert server.errors == []


@pytest.mark.parametrize("loop", LOOPS)
def test_an_async_generator_body_arrives_whole_over_http11(
    test_server: TestServer, loop: str
) -> None:
    async def main() -> list[dict[str, object]]:
        async with AsyncSession() as s:
            chunked = (await s.post(test_server.url + "/echo", data=agen(PIECES))).json()
            sized = await s.put(
                test_server.url + "/echo",
                data=agen(PIECES),
                headers={"Content-Length": str(len(WHOLE))},
            )
            return [chunked, sized.json()]

    chunked, sized = run(main(), loop)
    for echo in (chunked, sized):
        assert echo["body_length"] == len(WHOLE)
        assert echo["body_sha256"] == hashlib.sha256(WHOLE).hexdigest()
    assert ["Transfer-Encoding", "chunked"] in chunked["headers"]  # type: ignore[operator]
    assert ["Content-Length", str(len(WHOLE))] in sized["headers"]  # type: ignore[operator]
    assert test_server.connections_accepted == 1


def test_an_async_generator_body_arrives_whole_over_http2(h2: H2TestServer) -> None:
    async def main() -> dict[str, object]:
        async with AsyncConnectionPool("127.0.0.1", h2.port, http2="prior-knowledge") as pool:
            r = await pool.request("POST", "/echo", body=agen(PIECES * 10))
            assert pool.stats().in_use == 0
            return r.json()  # type: ignore[no-any-return]

    echo = run(main())
    assert echo["body_length"] == len(WHOLE) * 10
    assert echo["body_sha256"] == hashlib.sha256(WHOLE * 10).hexdigest()


def test_the_body_is_streamed_as_it_comes_not_buffered() -> None:
    """The generator's second piece waits until the server has read the first one: a client
    that collected the body before sending would wait for ever (here: fail its deadline)."""

    async def main() -> bytes:
        first_seen = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = b""
            while b"first" not in data:
                data += await reader.read(65536)
            first_seen.set()
            while not data.endswith(b"0\r\n\r\n"):
                data += await reader.read(65536)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        async def body() -> AsyncIterator[bytes]:
            yield b"first"
            await first_seen.wait()
            yield b"second"

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with AsyncSession() as s, asyncio.timeout(5):
                r = await s.post(f"http://127.0.0.1:{port}/", data=body())
                return r.content
        finally:
            server.close()
            await server.wait_closed()

    assert run(main()) == b"ok"


def test_a_body_longer_than_its_content_length_stops_and_its_generator_is_closed(
    test_server: TestServer,
) -> None:
    async def main() -> None:
        closed: list[bool] = []
        async with AsyncConnectionPool("127.0.0.1", test_server.port) as pool:
            with pytest.raises(WriteError, match="Content-Length says 6"):
                await pool.request(
                    "POST", "/echo", body=agen(PIECES, closed), headers={"Content-Length": "6"}
                )
            assert closed == [True]  # closed by the client, in this task: no finalizer task
            assert pool.stats().in_use == 0
            assert (await pool.request("GET", "/echo")).status == 200

    run(main())


def test_a_failing_async_body_raises_its_own_error_and_the_pool_stays_whole(
    test_server: TestServer, h2: H2TestServer
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"part"
        raise OSError("disk gone")

    async def main() -> None:
        pools = [
            AsyncConnectionPool("127.0.0.1", test_server.port),
            AsyncConnectionPool("127.0.0.1", h2.port, http2="prior-knowledge"),
        ]
        for pool in pools:
            async with pool:
                with pytest.raises(OSError, match="disk gone"):
                    await pool.request("POST", "/echo", body=broken())
                assert pool.stats().in_use == 0
                assert (await pool.request("GET", "/echo")).status == 200

    run(main())


def test_a_threaded_session_refuses_an_async_body_before_connecting(
    test_server: TestServer,
) -> None:
    async def main() -> None:
        source = agen([b"x"])
        with Session() as s, pytest.raises(TypeError, match="async iterable request body"):
            s.post(test_server.url + "/echo", data=source)
        await source.aclose()

    run(main())
    assert test_server.connections_accepted == 0


def test_a_piece_that_is_not_bytes_is_a_clear_error(test_server: TestServer) -> None:
    async def text() -> AsyncIterator[str]:
        yield "not bytes"

    async def main() -> None:
        async with AsyncSession() as s:
            with pytest.raises(TypeError, match="must be bytes, not str"):
                await s.post(test_server.url + "/echo", data=text())  # type: ignore[arg-type]
            assert s.stats().in_use == 0

    run(main())


@pytest.mark.parametrize(
    ("name", "value"),
    [("Content-Length", "1"), ("Content-Length", "0"), ("Transfer-Encoding", "chunked")],
)
def test_framing_set_after_construction_never_reaches_the_wire(
    test_server: TestServer, name: str, value: str
) -> None:
    """The sync pool's smuggling guard, on the asyncio pool: checked where the bytes are made."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

    async def main() -> str:
        async with AsyncConnectionPool("127.0.0.1", test_server.port) as pool:
            req = Request("POST", f"{test_server.url}/echo", body=smuggled)
            req.headers[name] = value  # after the constructor's check
            with pytest.raises(tether.InvalidHeader, match=name):
                await pool.send(req)
            return (await pool.request("GET", "/after")).json()["path"]  # type: ignore[no-any-return]

    assert run(main()) == "/after"
    assert [ex.path for ex in test_server.exchanges] == ["/after"]


def test_a_cancelled_upload_whose_response_came_early_does_not_reuse_the_connection() -> None:
    """A server may answer before an upload ends. Cancelled then, the response is complete
    but the request is not: the rest of its body would be read as the next request, so the
    connection is closed, not pooled."""

    async def main() -> None:
        answered = asyncio.Event()
        requests_seen: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            requests_seen.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            answered.set()
            try:
                while await reader.read(65536):
                    pass  # the unfinished upload, then whatever follows it
            except ConnectionError:
                pass
            writer.close()

        async def body() -> AsyncIterator[bytes]:
            yield b"first piece"
            await asyncio.Event().wait()  # the rest never comes: the task is cancelled here
            yield b"never"

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with AsyncConnectionPool("127.0.0.1", port) as pool:
                task = asyncio.ensure_future(pool.request("POST", "/up", body=body()))
                await answered.wait()
                await asyncio.sleep(0.05)  # the response has been read by the loop
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert pool.stats().closes == {"ABANDONED": 1}
                r = await pool.request("GET", "/next")
                assert (r.status, r.connection_info.reused) == (200, False)
        finally:
            server.close()
            await server.wait_closed()
        assert len(requests_seen) == 2

    run(main())
