"""Proxies, against real ones on loopback: squid (forward, CONNECT, Basic auth), tinyproxy
(closes after every request), microsocks (SOCKS5, socks5h, auth), dante (SOCKS4, SOCKS5);
nginx as the origin.

Reuse is proven from the proxy's side (squid's access log names the client connection of
every forwarded request and logs one line per tunnel; microsocks prints one line per tunnel;
tinyproxy one per client connection) and from the origin's (nginx's connection serials).
Sync and async run the same scenarios.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trustme
from adapter_routes import closed_port
from aio_helpers import LOOPS, run
from helpers import fd_count
from servers.fakeproxy import FakeConnectProxy
from servers.nginx import SMALL_BODY, Nginx
from servers.proxies import PASSWORD, USER, Dante, Microsocks, Squid, Tinyproxy, find

import tether
from tether.testing import Exchange, TestServer

N = 5


def aio(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on each loop of ``LOOPS`` (with aio_helpers' leak check)."""

    def wrapper(*args: Any, loop: str, **kwargs: Any) -> None:
        run(test(*args, **kwargs), loop)

    signature = inspect.signature(test)
    loop_param = inspect.Parameter("loop", inspect.Parameter.KEYWORD_ONLY)
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), loop_param]
    )
    wrapper.__name__ = test.__name__
    wrapper.__doc__ = test.__doc__
    return pytest.mark.parametrize("loop", LOOPS)(wrapper)  # type: ignore[no-any-return]


def _binary(name: str, package: str) -> str:
    path = find(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not found, but CI is set: apt-get install {package}")
        pytest.skip(f"{name} not installed")
    return path


@pytest.fixture
def squid(ca: trustme.CA) -> Iterator[Squid]:
    with Squid(ca, _binary("squid", "squid")) as server:
        yield server


@pytest.fixture
def tinyproxy(ca: trustme.CA) -> Iterator[Tinyproxy]:
    with Tinyproxy(ca, _binary("tinyproxy", "tinyproxy")) as server:
        yield server


@pytest.fixture
def microsocks(tmp_path: Path, ca: trustme.CA) -> Iterator[Microsocks]:
    with Microsocks(tmp_path, ca, _binary("microsocks", "microsocks")) as server:
        yield server


@pytest.fixture
def microsocks_auth(tmp_path: Path, ca: trustme.CA) -> Iterator[Microsocks]:
    with Microsocks(tmp_path, ca, _binary("microsocks", "microsocks"), auth=True) as server:
        yield server


def _new_connections(origin: Nginx, before: int) -> Counter[str]:
    """Requests per nginx connection logged since ``before`` entries."""
    return Counter(e.connection for e in origin.access_log()[before:])


# -- http:// through squid: absolute-form on one pooled connection to the proxy -------------


def test_http_forwarded_on_one_proxy_connection(squid: Squid, nginx: Nginx) -> None:
    other = TestServer().start()
    try:
        with tether.Session(proxy=squid.proxy_url()) as session:
            for _ in range(N):
                r = session.get(nginx.url + "/")
                assert r.content == SMALL_BODY
                assert r.connection_info.proxy == squid.proxy_url()
                assert not r.connection_info.tunneled
            echo = session.get(f"http://127.0.0.1:{other.port}/echo").json()
            stats = session.stats()
            pools = session.pool_manager.pools()
        assert echo["path"] == "/echo"  # the origin got origin-form from squid
        assert stats.connections_opened == 1 and stats.tunnels_opened == 0
        assert len(pools) == 1  # one pool per proxy, not per origin
        entries = squid.wait_for("GET", N + 1)
        assert len(entries) == N + 1
        assert len({e.client for e in entries}) == 1  # one client connection carried them all
        assert {e.url for e in entries} == {nginx.url + "/", f"http://127.0.0.1:{other.port}/echo"}
    finally:
        other.stop()


def test_forward_credentials_reach_the_proxy_only(squid: Squid) -> None:
    with TestServer() as origin, tether.Session(proxy=squid.proxy_url(1, auth=True)) as session:
        echo = session.get(f"http://127.0.0.1:{origin.port}/echo").json()
        with tether.Session(proxy=squid.proxy_url(1)) as anonymous:
            refused = anonymous.get(f"http://127.0.0.1:{origin.port}/")
    names = {name.lower() for name, _ in echo["headers"]}
    assert "proxy-authorization" not in names
    squid.wait_for("GET", 2)
    assert [e.user for e in squid.entries() if e.result.endswith("/200")] == [USER]
    assert refused.status_code == 407  # forwarded: the proxy's answer is the response


@aio
async def test_async_http_forwarded_on_one_proxy_connection(squid: Squid, nginx: Nginx) -> None:
    async with tether.AsyncSession(proxy=squid.proxy_url()) as session:
        for _ in range(N):
            r = await session.get(nginx.url + "/")
            assert r.content == SMALL_BODY and r.connection_info.proxy == squid.proxy_url()
        stats = session.stats()
    assert stats.connections_opened == 1
    entries = squid.wait_for("GET", N)
    assert len(entries) == N and len({e.client for e in entries}) == 1


# -- https:// through squid: one CONNECT tunnel, kept and reused -----------------------------


def _eventually(probe: Callable[[], list[str]], timeout: float = 3.0) -> list[str]:
    """``probe()`` once it is non-empty (proxies log a moment after the fact)."""
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def _tunnel_lines(squid: Squid) -> list[str]:
    return [e.result for e in squid.entries() if e.method == "CONNECT"]


def test_https_tunnel_reused(squid: Squid, nginx_tls: Nginx) -> None:
    before = len(nginx_tls.access_log())
    with tether.Session(proxy=squid.proxy_url(), verify=str(nginx_tls.ca_file)) as session:
        infos = []
        for _ in range(N):
            r = session.get(nginx_tls.url + "/")
            assert r.content == SMALL_BODY
            infos.append(r.connection_info)
        stats = session.stats()
    assert [i.tunnel_reused for i in infos] == [False] + [True] * (N - 1)
    assert all(i.tunneled and i.proxy == squid.proxy_url() for i in infos)
    assert stats.tunnels_opened == 1 and stats.connections_opened == 1
    nginx_tls.wait_for_requests(before + N)
    assert list(_new_connections(nginx_tls, before).values()) == [N]  # the origin saw one
    assert _eventually(lambda: _tunnel_lines(squid)) == ["TCP_TUNNEL/200"]  # once, at close


@aio
async def test_async_https_tunnel_reused(squid: Squid, nginx_tls: Nginx) -> None:
    before = len(nginx_tls.access_log())
    async with tether.AsyncSession(
        proxy=squid.proxy_url(), verify=str(nginx_tls.ca_file)
    ) as session:
        reused = []
        for _ in range(N):
            r = await session.get(nginx_tls.url + "/")
            assert r.content == SMALL_BODY
            reused.append(r.connection_info.tunnel_reused)
        stats = session.stats()
    assert reused == [False] + [True] * (N - 1)
    assert stats.tunnels_opened == 1
    nginx_tls.wait_for_requests(before + N)
    assert list(_new_connections(nginx_tls, before).values()) == [N]


def test_http2_inside_the_tunnel(squid: Squid, nginx_h2: Nginx) -> None:
    with tether.Session(
        proxy=squid.proxy_url(), verify=str(nginx_h2.ca_file), http2=True
    ) as session:
        protocols = [session.get(nginx_h2.url + "/").connection_info.protocol for _ in range(3)]
        assert session.stats().tunnels_opened == 1
    assert protocols == ["h2"] * 3


@aio
async def test_async_http2_inside_the_tunnel(squid: Squid, nginx_h2: Nginx) -> None:
    async with tether.AsyncSession(
        proxy=squid.proxy_url(), verify=str(nginx_h2.ca_file), http2=True
    ) as session:
        rs = await asyncio.gather(*(session.get(nginx_h2.url + "/") for _ in range(4)))
        assert session.stats().tunnels_opened == 1
    assert {r.connection_info.protocol for r in rs} == {"h2"}


def test_origin_certificate_checked_inside_the_tunnel(squid: Squid, nginx_tls: Nginx) -> None:
    # certifi does not know the test CA: the origin's certificate, not the proxy, is checked.
    with tether.Session(proxy=squid.proxy_url()) as session:
        with pytest.raises(tether.TLSError, match="certificate"):
            session.get(nginx_tls.url + "/")
        assert session.stats().open == 0


def test_connect_with_credentials(squid: Squid, nginx_tls: Nginx) -> None:
    verify = str(nginx_tls.ca_file)
    with tether.Session(proxy=squid.proxy_url(1, auth=True), verify=verify) as session:
        assert session.get(nginx_tls.url + "/").content == SMALL_BODY
    session = tether.Session(proxy=squid.proxy_url(1), verify=verify)
    with session, pytest.raises(tether.ProxyError) as caught:
        session.get(nginx_tls.url + "/")
    assert caught.value.status == 407
    assert caught.value.proxy == squid.proxy_url(1)
    assert "407" in str(caught.value)


def test_407_loop_leaves_nothing_open(squid: Squid, nginx_tls: Nginx) -> None:
    wrong = squid.proxy_url(1).replace("http://", f"http://{USER}:wrong@")
    with tether.Session(proxy=wrong, verify=str(nginx_tls.ca_file)) as session:
        before = fd_count()
        for _ in range(N):
            with pytest.raises(tether.ProxyError) as caught:
                session.get(nginx_tls.url + "/")
            assert caught.value.status == 407
            assert "wrong" not in str(caught.value) and USER not in str(caught.value)
        assert fd_count() == before
        stats = session.stats()
    assert stats.open == 0 and stats.tunnels_opened == 0


@aio
async def test_async_407_is_a_proxy_error(squid: Squid, nginx_tls: Nginx) -> None:
    async with tether.AsyncSession(
        proxy=squid.proxy_url(1), verify=str(nginx_tls.ca_file)
    ) as session:
        with pytest.raises(tether.ProxyError) as caught:
            await session.get(nginx_tls.url + "/")
        assert session.stats().open == 0
    assert caught.value.status == 407


def test_direct_and_proxied_pools_apart(squid: Squid, nginx_tls: Nginx) -> None:
    verify = str(nginx_tls.ca_file)
    with tether.Session(verify=verify) as session:
        direct = session.get(nginx_tls.url + "/").connection_info
        proxied = session.get(nginx_tls.url + "/", proxies={"https": squid.proxy_url()})
        again = session.get(nginx_tls.url + "/").connection_info
        assert len(session.pool_manager.pools()) == 2
    assert direct.proxy is None and proxied.connection_info.proxy == squid.proxy_url()
    assert proxied.connection_info.connection_id != direct.connection_id
    assert again.connection_id == direct.connection_id and again.proxy is None


def test_credentials_are_part_of_the_pool_key(squid: Squid, nginx_tls: Nginx) -> None:
    verify = str(nginx_tls.ca_file)
    with tether.Session(verify=verify) as session:
        a = session.get(nginx_tls.url + "/", proxies={"all": squid.proxy_url(1, auth=True)})
        with pytest.raises(tether.ProxyError):  # not lent alice's tunnel
            session.get(nginx_tls.url + "/", proxies={"all": squid.proxy_url(1)})
    assert a.status_code == 200


def test_origin_closing_the_tunnel_is_the_usual_lifecycle(
    squid: Squid, nginx_factory: Callable[..., Nginx], ca: trustme.CA
) -> None:
    # nginx ends each connection after 3 requests ("Connection: close" on the 3rd) and after
    # 1 s idle: through a tunnel that is the same lifecycle as direct, one CONNECT per
    # connection, and no request sees an error.
    origin = nginx_factory(ca=ca, keepalive_requests=3, keepalive_timeout=1)
    with tether.Session(proxy=squid.proxy_url(), verify=str(origin.ca_file)) as session:
        bodies = [session.get(origin.url + "/").content for _ in range(7)]
        stats = session.stats()
        time.sleep(1.3)  # the origin closes the idle tunnel; the watcher or the check sees it
        late = session.get(origin.url + "/")
        after = session.stats()
    assert bodies == [SMALL_BODY] * 7
    assert stats.tunnels_opened == 3 and stats.closes.get("NOT_PERSISTENT") == 2
    assert late.status_code == 200 and not late.connection_info.tunnel_reused
    assert after.tunnels_opened == 4 and after.retries == 0


@aio
async def test_async_origin_closing_the_tunnel(
    squid: Squid, nginx_factory: Callable[..., Nginx], ca: trustme.CA
) -> None:
    origin = nginx_factory(ca=ca, keepalive_requests=3)
    async with tether.AsyncSession(proxy=squid.proxy_url(), verify=str(origin.ca_file)) as session:
        bodies = [(await session.get(origin.url + "/")).content for _ in range(7)]
        assert session.stats().tunnels_opened == 3
    assert bodies == [SMALL_BODY] * 7


# -- tinyproxy: a new connection per request, and tether copes -------------------------------


def test_tinyproxy_closes_after_every_request(tinyproxy: Tinyproxy, nginx: Nginx) -> None:
    with tether.Session(proxy=tinyproxy.proxy_url()) as session:
        bodies = [session.get(nginx.url + "/").content for _ in range(N)]
        stats = session.stats()
    assert bodies == [SMALL_BODY] * N
    # Its answers keep nginx's keep-alive framing, then it closes: usually the idle check sees
    # the FIN first; when a request wins that race it meets a dead connection and is sent
    # again on a new one (GET: safe). Either way every request reaches it on its own
    # connection and the caller sees no error.
    assert stats.requests - stats.retries == N
    assert tinyproxy.connections() == stats.connections_opened == N


@aio
async def test_async_tinyproxy(tinyproxy: Tinyproxy, nginx: Nginx) -> None:
    async with tether.AsyncSession(proxy=tinyproxy.proxy_url()) as session:
        bodies = [(await session.get(nginx.url + "/")).content for _ in range(N)]
    assert bodies == [SMALL_BODY] * N


# -- SOCKS5 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks5_tunnel_reused(microsocks: Microsocks, nginx_tls: Nginx, scheme: str) -> None:
    url = nginx_tls.url.replace("127.0.0.1", "localhost")  # resolved here or by the proxy
    with tether.Session(proxy=microsocks.proxy_url(scheme), verify=str(nginx_tls.ca_file)) as s:
        infos = [s.get(url + "/").connection_info for _ in range(N)]
        stats = s.stats()
    assert [i.tunnel_reused for i in infos] == [False] + [True] * (N - 1)
    assert stats.tunnels_opened == 1
    assert microsocks.tunnels() == 1


@aio
async def test_async_socks5h(microsocks: Microsocks, nginx: Nginx, nginx_tls: Nginx) -> None:
    async with tether.AsyncSession(
        proxy=microsocks.proxy_url("socks5h"), verify=str(nginx_tls.ca_file)
    ) as session:
        for url in (nginx.url, nginx_tls.url):
            for _ in range(3):
                r = await session.get(url.replace("127.0.0.1", "localhost") + "/")
                assert r.content == SMALL_BODY and r.connection_info.tunneled
        assert session.stats().tunnels_opened == 2
    assert microsocks.tunnels() == 2


def test_socks5_auth(microsocks_auth: Microsocks, nginx: Nginx) -> None:
    with TestServer() as origin:
        good = tether.Session(proxy=microsocks_auth.proxy_url(auth=True))
        with good:
            echo = good.get(f"http://127.0.0.1:{origin.port}/echo").json()
        assert "proxy-authorization" not in {n.lower() for n, _ in echo["headers"]}
        wrong = microsocks_auth.proxy_url().replace("://", f"://{USER}:nope@")
        for proxy in (microsocks_auth.proxy_url(), wrong):
            with tether.Session(proxy=proxy) as session:
                with pytest.raises(tether.ProxyError) as caught:
                    session.get(nginx.url + "/")
                assert session.stats().open == 0
            assert "nope" not in str(caught.value)


@aio
async def test_async_socks5_auth_refused(microsocks_auth: Microsocks, nginx: Nginx) -> None:
    async with tether.AsyncSession(proxy=microsocks_auth.proxy_url()) as session:
        with pytest.raises(tether.ProxyError, match="username and password"):
            await session.get(nginx.url + "/")


# -- bad proxies --------------------------------------------------------------------------------


def test_connect_200_then_garbage(nginx_tls: Nginx) -> None:
    with (
        FakeConnectProxy("garbage") as fake,
        tether.Session(proxy=fake.url, verify=str(nginx_tls.ca_file), timeout=5) as session,
    ):
        with pytest.raises(tether.TLSError):
            session.get(nginx_tls.url + "/")
        assert session.stats().open == 0


@aio
async def test_async_connect_200_then_garbage(nginx_tls: Nginx) -> None:
    with FakeConnectProxy("garbage") as fake:
        async with tether.AsyncSession(
            proxy=fake.url, verify=str(nginx_tls.ca_file), timeout=5
        ) as session:
            with pytest.raises(tether.TLSError):
                await session.get(nginx_tls.url + "/")


def test_proxy_closes_tunnel_mid_response(nginx_tls: Nginx) -> None:
    # 20 kB covers the TLS handshake and the start of a 64 KiB body, never all of it.
    with (
        FakeConnectProxy("relay", cut_after=20_000) as fake,
        tether.Session(proxy=fake.url, verify=str(nginx_tls.ca_file), timeout=5) as session,
    ):
        with pytest.raises((tether.ReadError, tether.RemoteProtocolError)):
            session.get(nginx_tls.url + "/64k.bin")
        assert session.get(nginx_tls.url + "/").content == SMALL_BODY  # the pool is healthy
        assert session.stats().tunnels_opened == 2


@aio
async def test_async_proxy_closes_tunnel_mid_response(nginx_tls: Nginx) -> None:
    with FakeConnectProxy("relay", cut_after=20_000) as fake:
        async with tether.AsyncSession(
            proxy=fake.url, verify=str(nginx_tls.ca_file), timeout=5
        ) as session:
            with pytest.raises((tether.ReadError, tether.RemoteProtocolError)):
                await session.get(nginx_tls.url + "/64k.bin")
            assert (await session.get(nginx_tls.url + "/")).content == SMALL_BODY


def test_proxy_that_never_answers_connect(nginx_tls: Nginx) -> None:
    with (
        FakeConnectProxy("silent") as fake,
        tether.Session(proxy=fake.url, timeout=5) as s,
        pytest.raises(tether.ProxyError, match="closed the connection"),
    ):
        s.get(nginx_tls.url + "/")


def test_connect_head_carries_credentials_to_the_proxy(nginx_tls: Nginx) -> None:
    with FakeConnectProxy("407") as fake:
        proxy = fake.url.replace("://", "://al%40ice:p%3Ass%2Fw@")
        session = tether.Session(proxy=proxy, verify=str(nginx_tls.ca_file))
        with session, pytest.raises(tether.ProxyError) as caught:
            session.get(nginx_tls.url + "/")
    # "al@ice:p:ss/w" in Basic, decoded from the percent-encoded URL.
    assert b"Proxy-Authorization: Basic YWxAaWNlOnA6c3Mvdw==" in fake.heads[0]
    assert caught.value.status == 407
    for leaked in ("p:ss", "p%3Ass", "YWxAaWNl"):
        assert leaked not in str(caught.value) and leaked not in repr(caught.value)


@pytest.mark.parametrize(
    "url", ["ftp://proxy:21", "ftps://proxy:990", "http://:3128", "socks6://h:1"]
)
def test_unsupported_proxy_url(url: str) -> None:
    secret = url.replace("://", f"://{USER}:{quote(PASSWORD, safe='')}@")
    with pytest.raises(tether.InvalidProxyURL) as caught:
        tether.Session(proxy=secret)
    assert "s3" not in str(caught.value)


# -- requests' adapter: requests chooses the proxy, tether carries it ------------------------


def test_requests_adapter_through_squid(squid: Squid, nginx: Nginx, nginx_tls: Nginx) -> None:
    import requests

    from tether.adapters.requests import TetherAdapter

    adapter = TetherAdapter()
    with requests.Session() as s:
        s.trust_env = False
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.proxies = {"http": squid.proxy_url(), "https": squid.proxy_url()}
        s.verify = str(nginx_tls.ca_file)
        for url in (nginx.url, nginx_tls.url):
            for _ in range(3):
                assert s.get(url + "/").content == SMALL_BODY
        stats = adapter.stats()
        s.proxies = {"https": squid.proxy_url(1)}
        with pytest.raises(requests.exceptions.ProxyError, match="407"):
            s.get(nginx_tls.url + "/")
    assert stats.connections_opened == 2 and stats.tunnels_opened == 1


def test_socks5_proxy_on_ipv6_loopback(tmp_path: Path, ca: trustme.CA, nginx_tls: Nginx) -> None:
    with Microsocks(tmp_path, ca, _binary("microsocks", "microsocks"), host="::1") as socks:
        assert socks.proxy_url().startswith("socks5h://[::1]:")
        with tether.Session(proxy=socks.proxy_url(), verify=str(nginx_tls.ca_file)) as s:
            r = s.get(nginx_tls.url + "/")
        assert r.content == SMALL_BODY
        assert r.connection_info.proxy == socks.proxy_url()
        assert r.connection_info.remote_address[0] == "::1"  # the connection is to the proxy


def test_no_proxy_goes_direct(squid: Squid, nginx: Nginx) -> None:
    proxies = {"all": squid.proxy_url(), "no_proxy": "localhost, 127.0.0.0/8"}
    with tether.Session(proxies=proxies) as session:
        info = session.get(nginx.url + "/").connection_info
        via = session.get(nginx.url.replace("127.0.0.1", "localhost") + "/").connection_info
    assert info.proxy is None and via.proxy is None
    assert squid.entries() == []


def test_threads_share_pooled_tunnels(squid: Squid, nginx_tls: Nginx) -> None:
    from concurrent.futures import ThreadPoolExecutor

    before = len(nginx_tls.access_log())
    with tether.Session(
        proxy=squid.proxy_url(), verify=str(nginx_tls.ca_file), pool_maxsize=4, pool_block=True
    ) as session:
        with ThreadPoolExecutor(16) as pool:
            bodies = list(pool.map(lambda _: session.get(nginx_tls.url + "/").content, range(64)))
        stats = session.stats()
    assert bodies == [SMALL_BODY] * 64
    assert stats.tunnels_opened == 4 and stats.requests == 64
    nginx_tls.wait_for_requests(before + 64)
    assert len(_new_connections(nginx_tls, before)) == 4


def test_unreachable_proxy_is_named(nginx: Nginx, nginx_tls: Nginx) -> None:
    proxy = f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{closed_port()}"
    with tether.Session(proxy=proxy) as session:
        for url in (nginx.url, nginx_tls.url):  # forwarded, and tunneled
            with pytest.raises(tether.ConnectError, match=r"proxy http://127\.0\.0\.1:") as caught:
                session.get(url + "/")
            assert not isinstance(caught.value, tether.ProxyError)  # it never answered
            assert PASSWORD not in str(caught.value) and "s3" not in str(caught.value)
        assert session.stats().open == 0


@aio
async def test_async_unreachable_proxy_is_named(nginx_tls: Nginx) -> None:
    async with tether.AsyncSession(proxy=f"socks5h://127.0.0.1:{closed_port()}") as session:
        with pytest.raises(tether.ConnectError, match=r"proxy socks5h://127\.0\.0\.1:"):
            await session.get(nginx_tls.url + "/")


# -- httpx's transport: the proxy given to tether's transport --------------------------------


def test_httpx_transport_through_squid(squid: Squid, nginx_tls: Nginx) -> None:
    import httpx

    from tether.adapters.httpx import TetherTransport

    verify = str(nginx_tls.ca_file)
    transport = TetherTransport(verify=verify, proxy=httpx.Proxy(squid.proxy_url()))
    with httpx.Client(transport=transport) as client:
        infos = [client.get(nginx_tls.url + "/").extensions["connection_info"] for _ in range(3)]
        assert transport.stats().tunnels_opened == 1
    assert [i.tunnel_reused for i in infos] == [False, True, True]
    refused = TetherTransport(verify=verify, proxy=squid.proxy_url(1))
    with httpx.Client(transport=refused) as client, pytest.raises(httpx.ProxyError, match="407"):
        client.get(nginx_tls.url + "/")


@aio
async def test_async_httpx_transport_with_proxy_credentials(squid: Squid, nginx_tls: Nginx) -> None:
    import httpx

    from tether.adapters.httpx import AsyncTetherTransport

    proxy = httpx.Proxy(squid.proxy_url(1), auth=(USER, PASSWORD))
    transport = AsyncTetherTransport(verify=str(nginx_tls.ca_file), proxy=proxy)
    async with httpx.AsyncClient(transport=transport) as client:
        r = await client.get(nginx_tls.url + "/")
    assert r.content == SMALL_BODY


def test_one_shot_calls_take_a_proxy(squid: Squid, nginx: Nginx) -> None:
    r = tether.get(nginx.url + "/", proxy=squid.proxy_url())
    s = tether.get(nginx.url + "/", proxies={"http": squid.proxy_url()})
    assert r.content == s.content == SMALL_BODY
    assert r.connection_info.proxy == s.connection_info.proxy == squid.proxy_url()
    assert len(squid.wait_for("GET", 2)) == 2


# -- the forward proxy's side, seen by an in-process server standing in for it ------------------
# TestServer echoes any request-target it gets, absolute-form included, so it shows exactly
# what a forward proxy receives. "origin.example" is never resolved: the connection is the
# proxy's.


def _forward_proxy() -> TestServer:
    server = TestServer()

    def keep_alive(ex: Exchange) -> None:
        ex.respond(200, [("Keep-Alive", "timeout=1")], b"short")

    server.route("http://origin.example/ka", keep_alive)
    return server  # started by "with"


def test_forward_request_form_and_credentials() -> None:
    with _forward_proxy() as fake:
        proxy = f"http://al%40ice:p%3Ass@127.0.0.1:{fake.port}"
        with tether.Session(proxy=proxy) as session:
            a = session.get("http://origin.example/echo?q=1")
            b = session.get("http://other.example:8080/x")
        first, second = a.json(), b.json()
    assert first["path"] == "http://origin.example/echo" and first["query"] == "q=1"
    assert second["path"] == "http://other.example:8080/x"
    headers = dict(first["headers"])
    assert headers["Host"] == "origin.example"
    assert headers["Proxy-Authorization"] == "Basic YWxAaWNlOnA6c3M="  # al@ice:p:ss
    assert "Proxy-Authorization" not in a.request.headers  # added on the wire only
    assert first["connection_id"] == second["connection_id"]  # one connection to the proxy
    assert a.connection_info.proxy == f"http://127.0.0.1:{fake.port}"


def test_forward_proxy_keep_alive_timeout_honoured() -> None:
    with _forward_proxy() as fake, tether.Session(proxy=f"http://127.0.0.1:{fake.port}") as s:
        assert s.get("http://origin.example/ka").content == b"short"
        time.sleep(1.1)  # past the proxy's announced timeout: not offered again
        again = s.get("http://origin.example/echo")
        stats = s.stats()
    assert not again.connection_info.reused and stats.retries == 0
    assert stats.closes.get("SERVER_IDLE_TIMEOUT") == 1
    assert fake.connections_accepted == 2


@aio
async def test_async_forward_request_form_and_keep_alive() -> None:
    with _forward_proxy() as fake:
        async with tether.AsyncSession(proxy=f"http://u:p@127.0.0.1:{fake.port}") as s:
            echo = (await s.get("http://origin.example/echo")).json()
            assert (await s.get("http://origin.example/ka")).content == b"short"
            await asyncio.sleep(1.1)
            again = await s.get("http://origin.example/echo")
            stats = s.stats()
    assert echo["path"] == "http://origin.example/echo"
    assert dict(echo["headers"])["Proxy-Authorization"] == "Basic dTpw"
    assert not again.connection_info.reused and stats.retries == 0
    assert stats.closes.get("SERVER_IDLE_TIMEOUT") == 1


@aio
async def test_async_per_request_proxies(squid: Squid, nginx_tls: Nginx) -> None:
    async with tether.AsyncSession(verify=str(nginx_tls.ca_file)) as session:
        direct = await session.get(nginx_tls.url + "/")
        proxied = await session.get(nginx_tls.url + "/", proxies={"all": squid.proxy_url()})
        assert len(session.pool_manager.pools()) == 2
    assert direct.connection_info.proxy is None
    assert proxied.connection_info.proxy == squid.proxy_url()
    assert proxied.connection_info.connection_id != direct.connection_info.connection_id


# -- dante: SOCKS4 and SOCKS5 from another implementation ---------------------------------------


@pytest.fixture(scope="module")
def dante(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dante]:
    binary = _binary("danted", "dante-server")
    with Dante(tmp_path_factory.mktemp("dante"), binary=binary, ca=trustme.CA()) as server:
        yield server


# socks4a with a name is left out: dante 1.4 reads it as SOCKS4 to 0.0.0.1 (it has no 4a);
# tether sends an IPv4 literal as plain SOCKS4, which dante serves.
@pytest.mark.parametrize(
    ("scheme", "host"),
    [(s, h) for s in ("socks4", "socks5", "socks5h") for h in ("127.0.0.1", "localhost")]
    + [("socks4a", "127.0.0.1")],
)
def test_dante_tunnels(dante: Dante, nginx: Nginx, scheme: str, host: str) -> None:
    before = dante.tunnels()
    url = nginx.url.replace("127.0.0.1", host) + "/"
    with tether.Session(proxy=dante.proxy_url(scheme)) as session:
        infos = [session.get(url).connection_info for _ in range(3)]
        stats = session.stats()
    assert [i.tunnel_reused for i in infos] == [False, True, True]
    assert stats.tunnels_opened == 1
    assert _eventually(lambda: [1] * (dante.tunnels() - before)) == [1]
