"""TetherTransport under httpx: the same assertions with httpx's stock transport and tether's.

Over real sockets, against TestServer and nginx. Where tether is deliberately different,
the test says so.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from adapter_routes import (
    GZIP_PLAIN,
    adapter_server,
    clean_environment,
    closed_port,
    tether_cause,
)
from servers.nginx import Nginx

import tether
from tether.adapters.httpx import TetherTransport
from tether.testing import DelayProxy, TestServer, pattern_bytes

KINDS = ["stock", "tether"]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with adapter_server() as srv:
        yield srv


def transport(kind: str, **kwargs: object) -> httpx.BaseTransport:
    if kind == "stock":
        return httpx.HTTPTransport(**kwargs)  # type: ignore[arg-type]
    return TetherTransport(**kwargs)  # type: ignore[arg-type]


def make_client(kind: str, **kwargs: object) -> httpx.Client:
    verify = kwargs.pop("verify", True)
    http2 = kwargs.pop("http2", False)
    return httpx.Client(transport=transport(kind, verify=verify, http2=http2), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(kind: str) -> Iterator[httpx.Client]:
    with make_client(kind) as c:
        yield c


# -- everyday behaviour, both transports --------------------------------------------------------


def test_redirects(client: httpx.Client, server: TestServer) -> None:
    r = client.get(server.url + "/redirect/3", follow_redirects=True)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [302, 302, 302]
    assert str(r.url) == server.url + "/redirect/0"
    r = client.get(server.url + "/redirect/1")
    assert (r.status_code, r.headers["location"], r.reason_phrase) == (302, "/redirect/0", "Found")
    assert server.connections_accepted == 1


def test_cookies(client: httpx.Client, server: TestServer) -> None:
    r = client.get(server.url + "/set-cookie")
    assert dict(r.cookies) == {"session": "abc", "theme": "dark"}
    sent = dict(client.get(server.url + "/echo").json()["headers"])
    assert sent["Cookie"] == "session=abc; theme=dark"


def test_basic_auth(client: httpx.Client, server: TestServer) -> None:
    sent = dict(client.get(server.url + "/echo", auth=("user", "pass")).json()["headers"])
    assert sent["Authorization"] == "Basic dXNlcjpwYXNz"


def test_streaming(client: httpx.Client, server: TestServer) -> None:
    with client.stream("GET", server.url + "/chunked/100000?chunk=1000") as r:
        assert r.extensions["http_version"] == b"HTTP/1.1"
        pieces = list(r.iter_bytes(4096))
    assert b"".join(pieces) == pattern_bytes(100_000)
    with client.stream("GET", server.url + "/bytes/200000") as r:
        assert len(next(r.iter_bytes(1000))) == 1000  # closed half-read
    assert client.get(server.url + "/echo").status_code == 200


def test_content_encoding(client: httpx.Client, server: TestServer) -> None:
    assert client.get(server.url + "/gzip").content == GZIP_PLAIN
    with client.stream("GET", server.url + "/gzip") as r:
        raw = b"".join(r.iter_raw())
    assert raw[:2] == b"\x1f\x8b" and len(raw) < len(GZIP_PLAIN)
    with pytest.raises(httpx.DecodingError):
        client.get(server.url + "/bad-gzip")


def test_timeouts(client: httpx.Client, server: TestServer) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.get(server.url + "/slow/2", timeout=0.3)
    with pytest.raises(httpx.ReadTimeout):
        client.get(server.url + "/slow/2", timeout=httpx.Timeout(5.0, read=0.3))
    with pytest.raises(httpx.ReadTimeout):
        client.get(server.url + "/slow-body/2", timeout=0.3)
    assert client.get(server.url + "/slow/0.1", timeout=None).status_code == 200


def test_connection_refused(client: httpx.Client) -> None:
    with pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{closed_port()}/")


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
def test_broken_responses(
    kind: str, client: httpx.Client, server: TestServer, path: str, error: type
) -> None:
    with pytest.raises(error) as caught:
        client.get(server.url + path)
    if kind == "tether":
        assert isinstance(tether_cause(caught.value), tether.TransportError)
        assert caught.value.request.url == server.url + path  # type: ignore[attr-defined]
    server.errors.clear()


def test_head(client: httpx.Client, server: TestServer) -> None:
    r = client.head(server.url + "/head-lies")
    assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "1000")
    assert client.get(server.url + "/echo").json()["request_index"] == 2


def test_big_bodies_both_ways(client: httpx.Client, server: TestServer) -> None:
    body = pattern_bytes(8 * 1024 * 1024)
    echoed = client.post(server.url + "/echo", content=body).json()
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert client.get(server.url + f"/bytes/{len(body)}").content == body


def test_chunked_upload(client: httpx.Client, server: TestServer) -> None:
    echoed = client.post(server.url + "/echo", content=iter([b"alpha ", b"beta"])).json()
    assert echoed["body"] == "alpha beta"
    assert ["Transfer-Encoding", "chunked"] in echoed["headers"]
    echoed = client.post(server.url + "/echo", data={"a": "1", "b": "2"}).json()
    assert echoed["body"] == "a=1&b=2"


def test_reuse_one_connection(client: httpx.Client, server: TestServer) -> None:
    for _ in range(5):
        client.get(server.url + "/echo")
        client.post(server.url + "/echo", json={"a": 1})
    assert server.connections_accepted == 1


def test_verify(kind: str, nginx_tls: Nginx) -> None:
    with make_client(kind, verify=nginx_tls.ssl_context()) as c:
        r = c.get(nginx_tls.url + "/")
        assert (r.status_code, r.text) == (200, "Hello, world!")
    with make_client(kind) as c, pytest.raises(httpx.ConnectError):
        c.get(nginx_tls.url + "/")  # certifi's bundle does not know the test CA
    with make_client(kind, verify=False) as c:
        assert c.get(nginx_tls.url + "/").status_code == 200


# -- tether's own ------------------------------------------------------------------------------


def test_extensions_carry_connection_info(server: TestServer) -> None:
    with httpx.Client(transport=TetherTransport()) as c:
        first = c.get(server.url + "/echo")
        second = c.get(server.url + "/echo")
    assert first.extensions["connection_info"].reused is False
    assert second.extensions["connection_info"].reused is True
    assert second.http_version == "HTTP/1.1"


def test_limits_cap_connections_and_pool_timeout(server: TestServer) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(transport=TetherTransport(limits=limits)) as c:
        with c.stream("GET", server.url + "/bytes/10"), pytest.raises(httpx.PoolTimeout):
            c.get(server.url + "/echo", timeout=httpx.Timeout(5.0, pool=0.2))
        assert c.get(server.url + "/echo").status_code == 200
    assert server.connections_accepted == 1


def test_http2_sixteen_threads_one_connection(nginx_h2: Nginx) -> None:
    before = len(nginx_h2.access_log())
    errors: list[BaseException] = []
    versions: set[str] = set()
    start = threading.Barrier(16)
    # A CA path (an SSLContext is used unchanged: it would need its own ALPN list with "h2")
    with httpx.Client(transport=TetherTransport(verify=str(nginx_h2.ca_file), http2=True)) as c:

        def work() -> None:
            try:
                start.wait(5)
                for i in range(10):
                    r = c.get(nginx_h2.url + ("/slow" if i % 5 == 0 else "/"))
                    assert r.status_code == 200
                    versions.add(r.http_version)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stats = c._transport.stats()  # type: ignore[attr-defined]
    assert errors == []
    assert versions == {"HTTP/2"}
    entries = nginx_h2.wait_for_requests(before + 160)[before:]
    assert len(entries) == 160
    assert {e.protocol for e in entries} == {"HTTP/2"}
    assert len({e.connection for e in entries}) == 1  # server-counted
    assert stats.connections_opened == 1
    assert stats.peak_streams > 1  # the threads really shared it at once


# -- the idle-timeout race (see test_adapter_requests.py for the timing) ------------------------

RACE_GAPS = [0.47, 0.48, 0.49]


def race(c: httpx.Client, url: str, gaps: list[float]) -> list[tuple[str, float, str]]:
    lost = []
    for i, gap in enumerate(gaps):
        time.sleep(gap)
        method = "POST" if i % 2 else "GET"
        try:
            r = c.request(method, url, content=b"x" * 100 if method == "POST" else None)
            assert r.status_code == 200
        except httpx.TransportError as exc:
            lost.append((method, gap, type(exc).__name__))
    return lost


def test_idle_timeout_race_stock_loses_requests() -> None:
    with (
        TestServer(idle_close_after=0.5) as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.02) as proxy,
        make_client("stock") as c,
    ):
        c.get(f"http://127.0.0.1:{proxy.port}/echo")
        lost = race(c, f"http://127.0.0.1:{proxy.port}/echo", RACE_GAPS * 2)
    assert len(lost) >= 1, "httpx's stock transport was expected to lose a request in the race"


def test_idle_timeout_race_tether_loses_none() -> None:
    with (
        TestServer(idle_close_after=0.5) as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.02) as proxy,
        httpx.Client(transport=TetherTransport()) as c,
    ):
        url = f"http://127.0.0.1:{proxy.port}/echo"
        c.get(url)
        for gap in RACE_GAPS:  # not learned yet: GETs are sent again when that is safe
            time.sleep(gap)
            assert c.get(url).status_code == 200
        tt: TetherTransport = c._transport  # type: ignore[assignment]
        pool = tt.pool_manager.pools()[0]
        deadline = time.monotonic() + 3
        while pool.learned_idle_timeout is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.learned_idle_timeout is not None
        retries_before = tt.stats().retries
        assert race(c, url, RACE_GAPS * 3) == []  # POSTs too, once the timeout is learned
        assert tt.stats().retries == retries_before
