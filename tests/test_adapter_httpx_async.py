"""AsyncTetherTransport under httpx.AsyncClient: the same assertions with httpx's stock
AsyncHTTPTransport and tether's, over real sockets (TestServer, nginx).

Each test runs its coroutine with ``aio_helpers.run`` (a fresh loop; fails if a task was left
pending). Where tether is deliberately different, the test says so.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import httpx
import pytest
from adapter_routes import GZIP_PLAIN, adapter_server, clean_environment, closed_port, tether_cause
from aio_helpers import run
from servers.nginx import Nginx

import tether
from tether.adapters.httpx import AsyncTetherTransport
from tether.testing import TestServer, pattern_bytes

KINDS = ["stock", "tether"]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with adapter_server() as srv:
        yield srv


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_client(kind: str, **kwargs: object) -> httpx.AsyncClient:
    verify = kwargs.pop("verify", True)
    http2 = kwargs.pop("http2", False)
    transport: httpx.AsyncBaseTransport
    if kind == "stock":
        transport = httpx.AsyncHTTPTransport(verify=verify, http2=http2)  # type: ignore[arg-type]
    else:
        transport = AsyncTetherTransport(verify=verify, http2=http2)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, **kwargs)  # type: ignore[arg-type]


# -- everyday behaviour, both transports --------------------------------------------------------


def test_get_and_redirects(kind: str, server: TestServer) -> None:
    async def main() -> None:
        async with make_client(kind) as c:
            r = await c.get(server.url + "/redirect/3", follow_redirects=True)
            assert r.status_code == 200
            assert [h.status_code for h in r.history] == [302, 302, 302]
            assert str(r.url) == server.url + "/redirect/0"
            r = await c.get(server.url + "/redirect/1")
            assert (r.status_code, r.headers["location"], r.reason_phrase) == (
                302,
                "/redirect/0",
                "Found",
            )
            assert r.http_version == "HTTP/1.1"
            assert (await c.get(server.url + "/gzip")).content == GZIP_PLAIN

    run(main())
    assert server.connections_accepted == 1


def test_post_bodies(kind: str, server: TestServer) -> None:
    big = pattern_bytes(4 * 1024 * 1024)

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"alpha ", b"beta"):
            await asyncio.sleep(0)
            yield piece

    async def main() -> None:
        async with make_client(kind) as c:
            echoed = (await c.post(server.url + "/echo", content=big)).json()
            assert echoed["body_sha256"] == hashlib.sha256(big).hexdigest()
            echoed = (await c.post(server.url + "/echo", content=pieces())).json()
            assert echoed["body"] == "alpha beta"
            assert ["Transfer-Encoding", "chunked"] in echoed["headers"]
            echoed = (await c.post(server.url + "/echo", data={"a": "1", "b": "2"})).json()
            assert echoed["body"] == "a=1&b=2"
            assert (await c.get(server.url + f"/bytes/{len(big)}")).content == big

    run(main())
    assert server.connections_accepted == 1


def test_streaming(kind: str, server: TestServer) -> None:
    async def main() -> None:
        async with make_client(kind) as c:
            async with c.stream("GET", server.url + "/chunked/100000?chunk=1000") as r:
                pieces = [piece async for piece in r.aiter_bytes(4096)]
            assert b"".join(pieces) == pattern_bytes(100_000)
            async with c.stream("GET", server.url + "/bytes/200000") as r:
                # closed here, so no generator finalizer task is left for run() to find
                async with aclosing(r.aiter_bytes(1000)) as body:  # type: ignore[type-var]
                    first = await anext(body)
                assert len(first) == 1000  # closed half-read: the connection must not be reused
            assert (await c.get(server.url + "/echo")).status_code == 200

    run(main())


def test_timeouts(kind: str, server: TestServer) -> None:
    async def main() -> None:
        async with make_client(kind) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.get(server.url + "/slow/2", timeout=0.3)
            with pytest.raises(httpx.ReadTimeout):
                await c.get(server.url + "/slow/2", timeout=httpx.Timeout(5.0, read=0.3))
            with pytest.raises(httpx.ReadTimeout):
                await c.get(server.url + "/slow-body/2", timeout=0.3)
            assert (await c.get(server.url + "/slow/0.1", timeout=None)).status_code == 200

    run(main())


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/truncate", httpx.RemoteProtocolError),
        ("/reset-mid-body", httpx.ReadError),
        ("/garbage", httpx.RemoteProtocolError),
        # stock: RemoteProtocolError ("Server disconnected"); tether: ReadError (see README)
        ("/drop-after-request", httpx.TransportError),
    ],
)
def test_errors(kind: str, server: TestServer, path: str, error: type[Exception]) -> None:
    async def main() -> None:
        async with make_client(kind) as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"http://127.0.0.1:{closed_port()}/")
            with pytest.raises(error) as caught:
                await c.get(server.url + path)
        if kind == "tether":
            assert isinstance(tether_cause(caught.value), tether.TransportError)
            assert caught.value.request.url == server.url + path  # type: ignore[attr-defined]

    run(main())
    server.errors.clear()


def test_verify(kind: str, nginx_tls: Nginx) -> None:
    async def main() -> None:
        async with make_client(kind, verify=nginx_tls.ssl_context()) as c:
            r = await c.get(nginx_tls.url + "/")
            assert (r.status_code, r.text) == (200, "Hello, world!")
        async with make_client(kind) as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(nginx_tls.url + "/")  # certifi's bundle does not know the test CA
        async with make_client(kind, verify=False) as c:
            assert (await c.get(nginx_tls.url + "/")).status_code == 200

    run(main())


# -- tether's own ------------------------------------------------------------------------------


def test_extensions_and_sync_body_refused(server: TestServer) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=AsyncTetherTransport()) as c:
            first = await c.get(server.url + "/echo")
            second = await c.get(server.url + "/echo")
            assert first.extensions["connection_info"].reused is False
            assert second.extensions["connection_info"].reused is True
            assert second.extensions["reason_phrase"] == b"OK"
            # httpx.AsyncClient refuses this itself; the transport, used directly, too
            sync_only = httpx.Request("POST", server.url + "/echo", content=iter([b"a"]))
            with pytest.raises(TypeError, match="sync-only request body"):
                await c._transport.handle_async_request(sync_only)
            assert (await c.get(server.url + "/echo")).status_code == 200

    run(main())
    assert server.connections_accepted == 1


def test_http2_sixteen_tasks_one_connection(nginx_h2: Nginx) -> None:
    before = len(nginx_h2.access_log())
    transport = AsyncTetherTransport(verify=str(nginx_h2.ca_file), http2=True)

    async def work(c: httpx.AsyncClient) -> set[str]:
        versions = set()
        for i in range(10):
            r = await c.get(nginx_h2.url + ("/slow" if i % 5 == 0 else "/"))
            assert r.status_code == 200
            versions.add(r.http_version)
        return versions

    async def main() -> list[set[str] | BaseException]:
        async with httpx.AsyncClient(transport=transport) as c:
            tasks = [work(c) for _ in range(16)]
            return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)

    results = run(main())
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert set().union(*results) == {"HTTP/2"}  # type: ignore[arg-type]
    entries = nginx_h2.wait_for_requests(before + 160)[before:]
    assert len(entries) == 160
    assert {e.protocol for e in entries} == {"HTTP/2"}
    assert len({e.connection for e in entries}) == 1  # server-counted
    stats = transport.stats()
    assert stats.connections_opened == 1
    assert stats.peak_streams > 1  # the tasks really shared it at once
