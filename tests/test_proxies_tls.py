"""https:// proxies: TLS to the proxy, then forwarded requests or CONNECT inside it, and an
https origin's TLS inside the tunnel (TLS in TLS). Against squid's ``https_port`` on loopback
(``servers.proxies.TLSSquid``, a certificate for ``localhost`` only) and nginx as the origin.

Reuse is proven from squid's access log (the client connection of every forwarded request,
one line per tunnel) and nginx's connection serials. Sync and async run the same scenarios.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from helpers import fd_count
from servers.fakeproxy import FakeConnectProxy
from servers.nginx import SMALL_BODY, Nginx
from servers.proxies import PASSWORD, USER, TLSSquid, find
from test_proxies import aio

import tether
from tether.testing import TestServer

N = 5


def _squid_binary() -> str:
    path = find("squid")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("squid not found, but CI is set: apt-get install squid")
        pytest.skip("squid not installed")
    return path


@pytest.fixture
def squid(ca: trustme.CA) -> Iterator[TLSSquid]:
    with TLSSquid(ca, _squid_binary()) as server:
        yield server


@pytest.fixture
def ca_file(tmp_path: Path, ca: trustme.CA) -> str:
    """The one CA behind squid's and nginx's certificates: ``verify=`` covers both."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _eventually(probe: Callable[[], list[str]], timeout: float = 3.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def _tunnels(squid: TLSSquid) -> list[str]:
    return [e.result for e in squid.entries() if e.method == "CONNECT"]


def _new_connections(origin: Nginx, before: int) -> Counter[str]:
    return Counter(e.connection for e in origin.access_log()[before:])


# -- http:// through an https proxy: forwarded on one TLS connection to the proxy -----------


def test_http_forwarded_over_tls_to_the_proxy(squid: TLSSquid, nginx: Nginx, ca_file: str) -> None:
    with tether.Session(proxy=squid.https_url(), verify=ca_file) as session:
        infos = []
        for _ in range(N):
            r = session.get(nginx.url + "/")
            assert r.content == SMALL_BODY
            infos.append(r.connection_info)
        stats = session.stats()
    assert all(i.proxy == squid.https_url() and not i.tunneled for i in infos)
    assert infos[0].tls_version is not None  # the connection (to the proxy) is TLS
    assert stats.connections_opened == 1 and stats.tunnels_opened == 0
    entries = squid.wait_for("GET", N)
    assert len(entries) == N and len({e.client for e in entries}) == 1
    assert {e.local_port for e in entries} == {squid.ports[2]}  # squid's TLS listener


@aio
async def test_async_http_forwarded_over_tls_to_the_proxy(
    squid: TLSSquid, nginx: Nginx, ca_file: str
) -> None:
    async with tether.AsyncSession(proxy=squid.https_url(), verify=ca_file) as session:
        for _ in range(N):
            r = await session.get(nginx.url + "/")
            assert r.content == SMALL_BODY and r.connection_info.proxy == squid.https_url()
        stats = session.stats()
    assert stats.connections_opened == 1
    entries = squid.wait_for("GET", N)
    assert len(entries) == N and len({e.client for e in entries}) == 1
    assert {e.local_port for e in entries} == {squid.ports[2]}


# -- https:// through an https proxy: TLS in TLS, one tunnel for many requests ---------------


def test_tls_in_tls_tunnel_reused(squid: TLSSquid, nginx_tls: Nginx, ca_file: str) -> None:
    before = len(nginx_tls.access_log())
    with tether.Session(proxy=squid.https_url(), verify=ca_file) as session:
        infos = []
        for _ in range(N):
            r = session.get(nginx_tls.url + "/")
            assert r.content == SMALL_BODY
            infos.append(r.connection_info)
        big = session.get(nginx_tls.url + "/64k.bin")  # many records in records
        stats = session.stats()
        fds = fd_count()
    assert len(big.content) == 64 * 1024
    assert [i.tunnel_reused for i in infos] == [False] + [True] * (N - 1)
    assert all(i.tunneled and i.proxy == squid.https_url() for i in infos)
    assert stats.tunnels_opened == 1 and stats.connections_opened == 1
    nginx_tls.wait_for_requests(before + N + 1)
    assert list(_new_connections(nginx_tls, before).values()) == [N + 1]  # one origin conn
    assert _eventually(lambda: _tunnels(squid)) == ["TCP_TUNNEL/200"]  # one tunnel, at close
    connects = [e for e in squid.entries() if e.method == "CONNECT"]
    assert [e.local_port for e in connects] == [squid.ports[2]]  # through squid's TLS listener
    assert infos[0].tls_version is not None and infos[0].alpn_protocol == "http/1.1"
    assert fd_count() == fds - 1  # TLS in TLS is one descriptor, closed with the session


@aio
async def test_async_tls_in_tls_tunnel_reused(
    squid: TLSSquid, nginx_tls: Nginx, ca_file: str
) -> None:
    before = len(nginx_tls.access_log())
    async with tether.AsyncSession(proxy=squid.https_url(), verify=ca_file) as session:
        reused = []
        for _ in range(N):
            r = await session.get(nginx_tls.url + "/")
            assert r.content == SMALL_BODY
            reused.append(r.connection_info.tunnel_reused)
        big = await session.get(nginx_tls.url + "/64k.bin")
        stats = session.stats()
    assert len(big.content) == 64 * 1024
    assert reused == [False] + [True] * (N - 1)
    assert stats.tunnels_opened == 1
    nginx_tls.wait_for_requests(before + N + 1)
    assert list(_new_connections(nginx_tls, before).values()) == [N + 1]
    assert _eventually(lambda: _tunnels(squid)) == ["TCP_TUNNEL/200"]


def test_http2_inside_tls_in_tls(squid: TLSSquid, nginx_h2: Nginx, ca_file: str) -> None:
    # HTTP/2 reads on one thread while the others write: the two TLS layers share one lock.
    with tether.Session(proxy=squid.https_url(), verify=ca_file, http2=True) as session:
        results: list[tuple[str, bytes]] = []
        lock = threading.Lock()

        def fetch() -> None:
            for _ in range(3):
                r = session.get(nginx_h2.url + "/")
                with lock:
                    results.append((r.connection_info.protocol, r.content))

        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        stats = session.stats()
    assert results == [("h2", SMALL_BODY)] * 12
    assert stats.tunnels_opened == stats.connections_opened  # every connection a tunnel
    assert 1 <= stats.tunnels_opened <= 4  # at most one per thread racing the first dial
    want = stats.tunnels_opened
    tunnels = _eventually(lambda: _tunnels(squid) if len(_tunnels(squid)) >= want else [])
    assert tunnels == ["TCP_TUNNEL/200"] * stats.tunnels_opened


@aio
async def test_async_http2_inside_tls_in_tls(
    squid: TLSSquid, nginx_h2: Nginx, ca_file: str
) -> None:
    async with tether.AsyncSession(proxy=squid.https_url(), verify=ca_file, http2=True) as session:
        rs = await asyncio.gather(*(session.get(nginx_h2.url + "/") for _ in range(2)))
        assert session.stats().tunnels_opened == 1
    assert {(r.connection_info.protocol, r.content) for r in rs} == {("h2", SMALL_BODY)}


# -- certificates: the proxy's against the proxy's name, the origin's against the origin's ---


def test_proxy_certificate_checked_against_the_proxy_name(
    squid: TLSSquid, nginx: Nginx, nginx_tls: Nginx, ca_file: str
) -> None:
    # squid's certificate names localhost, not 127.0.0.1
    wrong_name = squid.https_url(host="127.0.0.1")
    with tether.Session(proxy=wrong_name, verify=ca_file) as session:
        for url in (nginx.url + "/", nginx_tls.url + "/"):
            with pytest.raises(tether.TLSError, match=r"proxy https://127\.0\.0\.1") as caught:
                session.get(url)
            assert "127.0.0.1" in str(caught.value)
        assert session.stats().open == 0
    with tether.Session(proxy=wrong_name, verify=False) as unchecked:  # verify covers both
        assert unchecked.get(nginx_tls.url + "/").content == SMALL_BODY


@aio
async def test_async_proxy_certificate_checked(
    squid: TLSSquid, nginx: Nginx, nginx_tls: Nginx, ca_file: str
) -> None:
    async with tether.AsyncSession(
        proxy=squid.https_url(host="127.0.0.1"), verify=ca_file
    ) as session:
        for url in (nginx.url + "/", nginx_tls.url + "/"):
            with pytest.raises(tether.TLSError, match=r"proxy https://127\.0\.0\.1"):
                await session.get(url)
        assert session.stats().open == 0


def test_origin_certificate_checked_inside(nginx_tls: Nginx, tmp_path: Path) -> None:
    # A proxy whose CA is the only one trusted: the proxy passes, the origin inside fails.
    proxy_ca = trustme.CA()
    trusted = tmp_path / "proxy-ca.pem"
    proxy_ca.cert_pem.write_to_path(str(trusted))
    with TLSSquid(proxy_ca, _squid_binary()) as squid:
        with tether.Session(proxy=squid.https_url(), verify=str(trusted)) as session:
            with pytest.raises(tether.TLSError) as caught:
                session.get(nginx_tls.url + "/")
            assert session.stats().open == 0
        assert _eventually(lambda: _tunnels(squid)) == ["TCP_TUNNEL/200"]  # the proxy let us in
    assert f"TLS handshake with {nginx_tls.url}" in str(caught.value)
    assert "certificate" in str(caught.value)


def test_proxy_verify_is_part_of_the_pool_key(squid: TLSSquid, nginx: Nginx, ca_file: str) -> None:
    other = trustme.CA()
    other_file = Path(ca_file).with_name("other.pem")
    other.cert_pem.write_to_path(str(other_file))
    with tether.Session(proxy=squid.https_url(), verify=ca_file) as session:
        assert session.get(nginx.url + "/").content == SMALL_BODY
        # The pooled, verified connection to the proxy is not lent to a request that
        # trusts another CA: that request checks the proxy itself, and fails.
        with pytest.raises(tether.TLSError):
            session.get(nginx.url + "/", verify=str(other_file))
        assert session.get(nginx.url + "/").connection_info.reused


# -- credentials: to the proxy only, inside its TLS, never shown ----------------------------


def test_credentials_over_tls_reach_the_proxy_only(squid: TLSSquid, ca_file: str) -> None:
    with TestServer() as origin:
        with tether.Session(proxy=squid.https_url(auth=True), verify=ca_file) as session:
            r = session.get(f"http://127.0.0.1:{origin.port}/echo")
            echo = r.json()
        with tether.Session(proxy=squid.https_url(), verify=ca_file) as anonymous_port:
            plain = anonymous_port.get(f"http://127.0.0.1:{origin.port}/echo").json()
    names = {name.lower() for name, _ in echo["headers"]}
    assert "proxy-authorization" not in names and plain["path"] == "/echo"
    squid.wait_for("GET", 2)
    users = [e.user for e in squid.entries() if e.local_port == squid.ports[3]]
    assert users == [USER]
    assert PASSWORD not in r.connection_info.proxy and USER not in r.connection_info.proxy


def test_connect_over_tls_with_credentials(squid: TLSSquid, nginx_tls: Nginx, ca_file: str) -> None:
    with tether.Session(proxy=squid.https_url(auth=True), verify=ca_file) as session:
        assert session.get(nginx_tls.url + "/").content == SMALL_BODY
    wrong = squid.https_url(auth=True).replace("s3%3Acr%40t", "wr0ng")
    with tether.Session(proxy=wrong, verify=ca_file) as session:
        fds = fd_count()
        for _ in range(3):
            with pytest.raises(tether.ProxyError) as caught:
                session.get(nginx_tls.url + "/")
            assert caught.value.status == 407
            text = str(caught.value) + repr(caught.value)
            assert "wr0ng" not in text and USER not in text
        assert fd_count() == fds and session.stats().open == 0
    tunnels = [e for e in squid.entries() if e.method == "CONNECT"]
    assert [e.user for e in tunnels if e.result == "TCP_TUNNEL/200"] == [USER]


@aio
async def test_async_connect_over_tls_407(squid: TLSSquid, nginx_tls: Nginx, ca_file: str) -> None:
    async with tether.AsyncSession(proxy=squid.https_url(auth=True), verify=ca_file) as s:
        assert (await s.get(nginx_tls.url + "/")).content == SMALL_BODY
    no_credentials = f"https://localhost:{squid.ports[3]}"
    async with tether.AsyncSession(proxy=no_credentials, verify=ca_file) as session:
        with pytest.raises(tether.ProxyError) as caught:
            await session.get(nginx_tls.url + "/")
        assert session.stats().open == 0
    assert caught.value.status == 407


# -- bad input: bytes after the CONNECT reply inside TLS --------------------------------------


@pytest.fixture
def proxy_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_bytes_after_the_connect_reply(
    proxy_tls: ssl.SSLContext, nginx_tls: Nginx, ca_file: str
) -> None:
    with (
        FakeConnectProxy("trailing", tls=proxy_tls) as fake,
        tether.Session(proxy=fake.url, verify=ca_file, timeout=5) as session,
    ):
        with pytest.raises(tether.ProxyError, match="unexpected bytes after the reply"):
            session.get(nginx_tls.url + "/")
        assert session.stats().open == 0


@aio
async def test_async_bytes_after_the_connect_reply(
    proxy_tls: ssl.SSLContext, nginx_tls: Nginx, ca_file: str
) -> None:
    with FakeConnectProxy("trailing", tls=proxy_tls) as fake:
        async with tether.AsyncSession(proxy=fake.url, verify=ca_file, timeout=5) as session:
            with pytest.raises(tether.ProxyError, match="unexpected bytes after the reply"):
                await session.get(nginx_tls.url + "/")
            assert session.stats().open == 0


# -- requests' adapter: requests chooses the https proxy, its verify checks it ---------------


def test_requests_adapter_through_an_https_proxy(
    squid: TLSSquid, nginx: Nginx, nginx_tls: Nginx, ca_file: str
) -> None:
    import requests

    from tether.adapters.requests import TetherAdapter

    adapter = TetherAdapter()
    with requests.Session() as s:
        s.trust_env = False
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.proxies = {"http": squid.https_url(), "https": squid.https_url()}
        s.verify = ca_file
        for url in (nginx.url, nginx_tls.url):
            for _ in range(3):
                assert s.get(url + "/").content == SMALL_BODY
        stats = adapter.stats()
        s.verify = True  # certifi: the proxy's certificate is not trusted
        with pytest.raises(requests.exceptions.SSLError):
            s.get(nginx.url + "/")
    assert stats.connections_opened == 2 and stats.tunnels_opened == 1
    entries = squid.entries()
    assert len({e.client for e in entries if e.method == "GET"}) == 1
    assert [e.method for e in entries].count("CONNECT") <= 1  # logged at close


# -- bad input: the https proxy cuts the tunnel mid-response ----------------------------------


def test_https_proxy_cuts_the_tunnel_mid_response(
    proxy_tls: ssl.SSLContext, nginx_tls: Nginx, ca_file: str
) -> None:
    # 20 kB covers both handshakes and the start of a 64 KiB body, never all of it.
    with (
        FakeConnectProxy("relay", cut_after=20_000, tls=proxy_tls) as fake,
        tether.Session(proxy=fake.url, verify=ca_file, timeout=5) as session,
    ):
        with pytest.raises((tether.ReadError, tether.RemoteProtocolError)):
            session.get(nginx_tls.url + "/64k.bin")
        assert session.stats().open == 0
        assert session.get(nginx_tls.url + "/").content == SMALL_BODY  # the pool is healthy
        assert session.stats().tunnels_opened == 2


@aio
async def test_async_https_proxy_cuts_the_tunnel_mid_response(
    proxy_tls: ssl.SSLContext, nginx_tls: Nginx, ca_file: str
) -> None:
    with FakeConnectProxy("relay", cut_after=20_000, tls=proxy_tls) as fake:
        async with tether.AsyncSession(proxy=fake.url, verify=ca_file, timeout=5) as session:
            with pytest.raises((tether.ReadError, tether.RemoteProtocolError)):
                await session.get(nginx_tls.url + "/64k.bin")
            assert (await session.get(nginx_tls.url + "/")).content == SMALL_BODY
            assert session.stats().tunnels_opened == 2


# -- httpx's transport: an https proxy given to tether's transport ---------------------------


def test_httpx_transport_through_an_https_proxy(
    squid: TLSSquid, nginx_tls: Nginx, ca_file: str
) -> None:
    import httpx

    from tether.adapters.httpx import TetherTransport

    transport = TetherTransport(verify=ca_file, proxy=httpx.Proxy(squid.https_url()))
    with httpx.Client(transport=transport) as client:
        infos = [client.get(nginx_tls.url + "/").extensions["connection_info"] for _ in range(3)]
        assert transport.stats().tunnels_opened == 1
    assert [i.tunnel_reused for i in infos] == [False, True, True]
    pinned = httpx.Proxy(squid.https_url(), ssl_context=ssl.create_default_context())
    with pytest.raises(tether.InvalidProxyURL, match="ssl_context"):  # refused, not ignored
        TetherTransport(verify=ca_file, proxy=pinned)


@aio
async def test_async_httpx_transport_https_proxy_credentials(
    squid: TLSSquid, nginx: Nginx, ca_file: str
) -> None:
    import httpx

    from tether.adapters.httpx import AsyncTetherTransport

    proxy = httpx.Proxy(f"https://localhost:{squid.ports[3]}", auth=(USER, PASSWORD))
    transport = AsyncTetherTransport(verify=ca_file, proxy=proxy)
    async with httpx.AsyncClient(transport=transport) as client:
        r = await client.get(nginx.url + "/")
    assert r.content == SMALL_BODY
    entries = squid.wait_for("GET", 1)
    assert [(e.local_port, e.user) for e in entries] == [(squid.ports[3], USER)]
