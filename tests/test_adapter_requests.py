"""TetherAdapter under requests: the same assertions with requests' stock adapter and tether's.

Over real sockets, against TestServer and nginx. Where tether is deliberately different
(proxies, retries), the test says so.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3
from adapter_routes import (
    GZIP_PLAIN,
    adapter_server,
    clean_environment,
    closed_port,
    tether_cause,
)
from requests.adapters import HTTPAdapter
from servers.nginx import Nginx

import tether
from tether.adapters import requests as tadapter
from tether.adapters.requests import ProxiesNotSupported, TetherAdapter
from tether.testing import DelayProxy, TestServer, pattern_bytes

KINDS = ["stock", "tether"]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with adapter_server() as srv:
        yield srv


def make_session(kind: str, **adapter_kwargs: object) -> requests.Session:
    s = requests.Session()
    adapter = HTTPAdapter(**adapter_kwargs) if kind == "stock" else TetherAdapter(**adapter_kwargs)  # type: ignore[arg-type]
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def session(kind: str) -> Iterator[requests.Session]:
    with make_session(kind) as s:
        yield s


# -- everyday behaviour, both adapters ----------------------------------------------------------


def test_redirects(session: requests.Session, server: TestServer) -> None:
    r = session.get(server.url + "/redirect/3")
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [302, 302, 302]
    assert r.url == server.url + "/redirect/0"
    r = session.get(server.url + "/redirect/1", allow_redirects=False)
    assert (r.status_code, r.headers["Location"], r.reason) == (302, "/redirect/0", "Found")
    assert server.connections_accepted == 1  # every hop on one kept-alive connection


def test_cookies_are_stored_and_sent_back(session: requests.Session, server: TestServer) -> None:
    r = session.get(server.url + "/set-cookie")
    assert r.cookies.get_dict() == {"session": "abc", "theme": "dark"}
    assert session.cookies.get_dict() == {"session": "abc", "theme": "dark"}
    sent = dict(session.get(server.url + "/echo").json()["headers"])
    assert sent["Cookie"] == "session=abc; theme=dark"


def test_basic_auth(session: requests.Session, server: TestServer) -> None:
    sent = dict(session.get(server.url + "/echo", auth=("user", "pass")).json()["headers"])
    assert sent["Authorization"] == "Basic dXNlcjpwYXNz"


def test_streaming_iter_content_and_raw(session: requests.Session, server: TestServer) -> None:
    with session.get(server.url + "/chunked/100000?chunk=1000", stream=True) as r:
        pieces = list(r.iter_content(4096))
    assert b"".join(pieces) == pattern_bytes(100_000)
    assert max(len(p) for p in pieces) <= 4096
    with session.get(server.url + "/bytes/1000", stream=True) as r:
        assert r.raw.read(10) == pattern_bytes(10)
        assert b"".join(r.raw.stream(100)) == pattern_bytes(1000)[10:]
    # a streamed response closed half-read leaves the session usable
    r = session.get(server.url + "/bytes/200000", stream=True)
    assert len(next(r.iter_content(1000))) == 1000
    r.close()
    assert session.get(server.url + "/echo").status_code == 200


def test_content_encoding_decoded_like_requests(
    session: requests.Session, server: TestServer
) -> None:
    r = session.get(server.url + "/gzip")
    assert r.content == GZIP_PLAIN
    with session.get(server.url + "/gzip", stream=True) as r:
        raw = r.raw.read()  # requests' raw is not decoded: the gzip bytes as sent
    assert raw[:2] == b"\x1f\x8b" and len(raw) < len(GZIP_PLAIN)
    with pytest.raises(requests.exceptions.ContentDecodingError):
        session.get(server.url + "/bad-gzip")


def test_encoding_and_text(session: requests.Session, server: TestServer) -> None:
    r = session.get(server.url + "/echo")
    assert r.encoding == "utf-8"  # requests: JSON is UTF-8 unless it says otherwise
    assert r.json()["method"] == "GET"
    r = session.get(server.url + "/status/404")
    assert (r.status_code, r.encoding, r.text, r.ok) == (
        404,
        "ISO-8859-1",
        "404 Not Found\n",
        False,
    )


def test_timeouts(session: requests.Session, server: TestServer) -> None:
    with pytest.raises(requests.exceptions.ReadTimeout) as caught:
        session.get(server.url + "/slow/2", timeout=0.3)
    assert not isinstance(caught.value, requests.exceptions.ConnectTimeout)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(server.url + "/slow/2", timeout=(5, 0.3))
    # a timeout while reading the body: requests says ConnectionError (from iter_content)
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(server.url + "/slow-body/2", timeout=0.3)
    with pytest.raises(ValueError, match="timeout"):
        session.get(server.url + "/echo", timeout=(1, 2, 3))
    assert session.get(server.url + "/slow/0.1", timeout=None).status_code == 200


def test_connection_refused(session: requests.Session) -> None:
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        session.get(f"http://127.0.0.1:{closed_port()}/")
    assert not isinstance(caught.value, requests.exceptions.Timeout)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/truncate", requests.exceptions.ChunkedEncodingError),
        ("/reset-mid-body", requests.exceptions.ChunkedEncodingError),
        ("/garbage", requests.exceptions.ConnectionError),
        ("/drop-after-request", requests.exceptions.ConnectionError),
    ],
)
def test_broken_responses(
    kind: str, session: requests.Session, server: TestServer, path: str, error: type
) -> None:
    with pytest.raises(error) as caught:
        session.get(server.url + path)
    if kind == "tether":
        assert isinstance(tether_cause(caught.value), tether.TransportError)
    server.errors.clear()  # the server's side of a reset is recorded on purpose


def test_head(session: requests.Session, server: TestServer) -> None:
    r = session.head(server.url + "/head-lies")
    assert (r.status_code, r.content, r.headers["Content-Length"]) == (200, b"", "1000")
    assert session.get(server.url + "/echo").json()["request_index"] == 2  # same connection


def test_big_bodies_both_ways(session: requests.Session, server: TestServer) -> None:
    body = pattern_bytes(8 * 1024 * 1024)
    echoed = session.post(server.url + "/echo", data=body).json()
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert session.get(server.url + f"/bytes/{len(body)}").content == body


def test_chunked_and_file_uploads(
    session: requests.Session, server: TestServer, tmp_path: Path
) -> None:
    pieces = [b"alpha ", b"beta ", b"gamma"]
    echoed = session.post(server.url + "/echo", data=iter(pieces)).json()
    assert echoed["body"] == "alpha beta gamma"
    assert ["Transfer-Encoding", "chunked"] in echoed["headers"]
    path = tmp_path / "upload.bin"
    path.write_bytes(pattern_bytes(300_000))
    with path.open("rb") as f:
        echoed = session.put(server.url + "/echo", data=f).json()
    assert echoed["body_sha256"] == hashlib.sha256(pattern_bytes(300_000)).hexdigest()
    assert ["Content-Length", "300000"] in echoed["headers"]


def test_reuse_one_connection(session: requests.Session, server: TestServer) -> None:
    for _ in range(5):
        session.get(server.url + "/echo")
        session.post(server.url + "/echo", json={"a": 1})
    assert server.connections_accepted == 1


def test_verify(kind: str, nginx_tls: Nginx) -> None:
    assert nginx_tls.ca_file is not None
    with make_session(kind) as s:
        r = s.get(nginx_tls.url + "/", verify=str(nginx_tls.ca_file))
        assert (r.status_code, r.text) == (200, "Hello, world!")
        with pytest.raises(requests.exceptions.SSLError):
            s.get(nginx_tls.url + "/")  # certifi's bundle does not know the test CA
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert s.get(nginx_tls.url + "/", verify=False).status_code == 200


def test_env_proxy_with_trust_env_false_is_not_used(
    kind: str, server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with make_session(kind) as s:
        s.trust_env = False
        assert s.get(server.url + "/echo").status_code == 200


# -- where tether differs on purpose -----------------------------------------------------------


def test_proxies_are_used_not_ignored(server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that cannot be reached: the request fails, so it did not go around it.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with make_session("tether") as s:
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get(server.url + "/echo")  # trust_env: requests passes the environment's proxy
        s.trust_env = False
        s.proxies = {"http": f"http://127.0.0.1:{closed_port()}"}
        with pytest.raises(requests.exceptions.ConnectionError):
            s.get(server.url + "/echo")
        s.proxies = {"http": "ftp://127.0.0.1:1"}  # no such kind of proxy
        with pytest.raises(ProxiesNotSupported, match="unsupported proxy scheme"):
            s.get(server.url + "/echo")
        s.proxies = {"https": "http://127.0.0.1:1"}  # not for this scheme: fine
        assert s.get(server.url + "/echo").status_code == 200
    assert server.requests_served == 1


def test_connection_info_reachable(server: TestServer) -> None:
    with tadapter.session() as s:
        first = s.get(server.url + "/echo")
        second = s.get(server.url + "/echo")
    assert first.connection_info.reused is False  # type: ignore[attr-defined]
    assert second.connection_info.reused is True  # type: ignore[attr-defined]
    assert second.raw.connection_info.request_number == 2
    assert tadapter.connection_info(second) is second.connection_info  # type: ignore[attr-defined]
    assert second.elapsed.total_seconds() > 0


def test_max_retries_refuses_what_it_cannot_honour() -> None:
    Retry = urllib3.util.Retry
    for retry in (Retry(total=3, status_forcelist=[503]), Retry(read=2)):
        with pytest.raises(ValueError, match="cannot honour"):
            TetherAdapter(max_retries=retry)
    with (
        make_session("tether", max_retries=Retry(total=2, backoff_factor=0)) as s,
        pytest.raises(requests.exceptions.ConnectionError) as caught,
    ):
        s.get(f"http://127.0.0.1:{closed_port()}/")
    assert isinstance(tether_cause(caught.value), tether.ConnectError)


def test_session_close_then_reuse(server: TestServer) -> None:
    s = tadapter.session()
    s.get(server.url + "/echo")
    s.close()
    assert server.wait_open_connections(0)
    assert s.get(server.url + "/echo").status_code == 200  # requests' adapters allow it too
    s.close()
    assert server.connections_accepted == 2


def test_patch_and_unpatch(server: TestServer) -> None:
    assert not tadapter.patched()
    tadapter.patch()
    try:
        with requests.Session() as s:
            assert isinstance(s.get_adapter(server.url), TetherAdapter)
        assert requests.get(server.url + "/echo").status_code == 200  # one-shot: closed after
    finally:
        tadapter.unpatch()
    assert not tadapter.patched()
    with requests.Session() as s:
        assert type(s.get_adapter(server.url)) is HTTPAdapter
    assert server.wait_open_connections(0)


def test_importing_tether_imports_neither_library() -> None:
    code = (
        "import tether, tether.adapters, sys; "
        "assert 'requests' not in sys.modules and 'httpx' not in sys.modules, "
        "sorted(m for m in sys.modules if m in ('requests', 'httpx'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_http2_threads_share_one_connection(nginx_h2: Nginx) -> None:
    before = len(nginx_h2.access_log())
    errors: list[BaseException] = []
    versions: set[int] = set()
    with tadapter.session(http2=True) as s:
        s.verify = str(nginx_h2.ca_file)
        start = threading.Barrier(8)

        def work() -> None:
            try:
                start.wait(5)
                for _ in range(5):
                    r = s.get(nginx_h2.url + "/slow")
                    versions.add(r.raw.version)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert errors == []
    assert versions == {20}
    entries = nginx_h2.wait_for_requests(before + 40)[before:]
    assert {e.protocol for e in entries} == {"HTTP/2"}
    assert len({e.connection for e in entries}) == 1


# -- the idle-timeout race ---------------------------------------------------------------------

# The server closes connections idle for 0.5 s; the proxy delays each direction by 20 ms. A
# request sent 0.46-0.50 s after the last response reaches the server after its close, while
# the client has not yet seen the FIN: the window where a stock client loses requests.
RACE_GAPS = [0.47, 0.48, 0.49]


def race(s: requests.Session, url: str, gaps: list[float]) -> list[tuple[str, float, str]]:
    lost = []
    for i, gap in enumerate(gaps):
        time.sleep(gap)
        method = "POST" if i % 2 else "GET"
        try:
            r = s.request(method, url, data=b"x" * 100 if method == "POST" else None)
            assert r.status_code == 200
        except requests.RequestException as exc:
            lost.append((method, gap, type(exc).__name__))
    return lost


def test_idle_timeout_race_stock_loses_requests() -> None:
    with (
        TestServer(idle_close_after=0.5) as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.02) as proxy,
        make_session("stock") as s,
    ):
        s.get(f"http://127.0.0.1:{proxy.port}/echo")
        lost = race(s, f"http://127.0.0.1:{proxy.port}/echo", RACE_GAPS * 2)
    assert len(lost) >= 1, "the stock adapter was expected to lose a request in the race"


def test_idle_timeout_race_tether_loses_none() -> None:
    with (
        TestServer(idle_close_after=0.5) as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.02) as proxy,
        make_session("tether") as s,
    ):
        url = f"http://127.0.0.1:{proxy.port}/echo"
        s.get(url)
        # Not learned yet: GETs in the window are sent again on a new connection (safe).
        for gap in RACE_GAPS:
            time.sleep(gap)
            assert s.get(url).status_code == 200
        adapter = s.get_adapter(url)
        assert isinstance(adapter, TetherAdapter)
        pool = adapter.pool_manager.pools()[0]
        deadline = time.monotonic() + 3
        while pool.learned_idle_timeout is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.learned_idle_timeout is not None
        retries_before = adapter.stats().retries
        lost = race(s, url, RACE_GAPS * 3)  # POSTs too, now that the timeout is learned
        assert lost == []
        assert adapter.stats().retries == retries_before  # and no retry was needed
