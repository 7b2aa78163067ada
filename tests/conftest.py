"""Shared fixtures: in-process TestServer, private nginx instances, HTTP/2 servers, a CA.

Server fixtures skip when their binary is missing, except in CI (``CI`` set) where they
fail: ``tests/run`` installs them all. HTTP/2 servers (see each module in tests/servers for
what its limits really do on the wire):

========================  ==========================================================
``nginx_h2``              TLS, ALPN h2 + http/1.1 (session)
``nginx_h2c``             h2c prior knowledge only (session)
``nginx_h2_factory``      either, with keepalive_requests / _timeout, max_concurrent_streams
``h2o_server``/_factory   TLS h2 + cleartext h1/h2c/Upgrade; idle_timeout, max_concurrent_requests
``nghttpd_server``/_fac.  h2 only (TLS, or tls=False h2c); max_concurrent_streams; -v frame log
``hypercorn_server``/_f.  TLS h2 + h1; h1/h2c/Upgrade; keep_alive_max_requests, silent idle close
``node_h2_server``/_fac.  TLS h2 + h1; h2c; max_requests, max_streams, idle_ms
========================  ==========================================================

Each server has ``url`` (TLS), ``h2c_url`` (cleartext), ``ca_file``/``ssl_context()``,
``access_log()`` (``AccessEntry`` per request: connection, protocol, method, path, status),
``requests_per_connection()`` and ``wait_for_requests(n)``; factories stop what they started.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
from servers.h2o import H2o, find_h2o
from servers.httpbin_server import Httpbin, have_httpbin
from servers.hypercorn_server import Hypercorn
from servers.nghttpd import Nghttpd, find_nghttpd
from servers.nginx import Nginx, find_nginx
from servers.node_h2 import NodeH2, find_node
from servers.process import ServerProcess

from tether.testing import TestServer

S = TypeVar("S", bound=ServerProcess)


def _nginx_binary() -> str:
    binary = find_nginx()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("nginx not found, but CI is set: install it (apt-get install nginx-light)")
        pytest.skip("nginx not installed")
    return binary


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A trustme CA; ``ca.cert_pem.write_to_path(path)`` gives a verify file."""
    return trustme.CA()


@pytest.fixture
def test_server() -> Iterator[TestServer]:
    """A fresh, started TestServer on 127.0.0.1 with default settings.

    Teardown fails the test if a handler or server thread recorded an error; a test that
    provokes one on purpose should clear ``test_server.errors``.
    """
    with TestServer() as server:
        yield server
    if server.errors:
        pytest.fail(f"TestServer recorded errors: {server.errors!r}")


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """Plain-HTTP nginx, keepalive_requests 1000, keepalive_timeout 75 s (shared by all)."""
    with Nginx(tmp_path_factory.mktemp("nginx"), binary=_nginx_binary()) as server:
        yield server


@pytest.fixture
def nginx_short_keepalive(tmp_path: Path) -> Iterator[Nginx]:
    """A fresh plain-HTTP nginx closing after 3 requests or 1 s idle per connection."""
    with Nginx(
        tmp_path, binary=_nginx_binary(), keepalive_requests=3, keepalive_timeout=1
    ) as server:
        yield server


@pytest.fixture(scope="session")
def nginx_tls(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Nginx]:
    """HTTPS nginx (HTTP/1.1 only); ``.ca``, ``.ca_file`` and ``.ssl_context()`` to verify."""
    with Nginx(tmp_path_factory.mktemp("nginx-tls"), binary=_nginx_binary(), ca=ca) as server:
        yield server


@pytest.fixture(scope="session")
def nginx_h2(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Nginx]:
    """Like ``nginx_tls`` but the listener also offers h2 via ALPN."""
    with Nginx(
        tmp_path_factory.mktemp("nginx-h2"), binary=_nginx_binary(), ca=ca, http2=True
    ) as server:
        yield server


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    """Start custom nginx instances: ``nginx_factory(keepalive_requests=5, ...)``.

    Takes the keyword arguments of ``Nginx`` (``keepalive_requests``, ``keepalive_timeout``,
    ``ca``, ``http2``); every instance is stopped at teardown.
    """
    started: list[Nginx] = []

    def start(**options: Any) -> Nginx:
        workdir = tmp_path / f"nginx{len(started)}"
        workdir.mkdir()
        server = Nginx(workdir, binary=_nginx_binary(), **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def nginx_h2c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """nginx with an h2c listener (prior knowledge only; ``stats()`` uses ``status_port``)."""
    with Nginx(tmp_path_factory.mktemp("nginx-h2c"), binary=_nginx_binary(), h2c=True) as server:
        yield server


@pytest.fixture
def nginx_h2_factory(tmp_path: Path, ca: trustme.CA) -> Iterator[Callable[..., Nginx]]:
    """Start HTTP/2 nginx instances with their own limits, stopped at teardown.

    ``nginx_h2_factory(tls=True, keepalive_requests=3, keepalive_timeout=2,
    max_concurrent_streams=2)``: ``tls=True`` is TLS with ALPN h2 + http/1.1 (``url`` is
    https), ``tls=False`` an h2c prior-knowledge listener (``url`` is http).
    """
    started: list[Nginx] = []

    def start(*, tls: bool = True, **limits: Any) -> Nginx:
        workdir = tmp_path / f"nginx-h2-{len(started)}"
        workdir.mkdir()
        protocol: dict[str, Any] = {"ca": ca, "http2": True} if tls else {"h2c": True}
        server = Nginx(workdir, binary=_nginx_binary(), **protocol, **limits)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _require(binary: str | None, what: str, install: str) -> str:
    """The binary's path; else skip the test, or fail it under CI=1."""
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"{what} not found, but CI is set: install it ({install})")
        pytest.skip(f"{what} not installed")
    return binary


def _h2o_binary() -> str:
    return _require(find_h2o(), "h2o", "apt-get install h2o")


def _nghttpd_binary() -> str:
    return _require(find_nghttpd(), "nghttpd", "apt-get install nghttp2-server")


def _node_binary() -> str:
    return _require(find_node(), "node", "apt-get install nodejs")


def _python_with_hypercorn() -> str:
    found = sys.executable if importlib.util.find_spec("hypercorn") else None
    return _require(found, "hypercorn", "pip install hypercorn")


def _factory(tmp_path: Path, make: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """Yield ``start(**limits)``; every server it started is stopped afterwards."""
    started: list[S] = []

    def start(**limits: Any) -> S:
        workdir = tmp_path / f"server{len(started)}"
        workdir.mkdir()
        server = make(workdir, **limits)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def h2o_server(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[H2o]:
    """h2o with default limits (idle timeout 10 s): TLS ``url``; ``h2c_url`` does h1/h2c/Upgrade."""
    with H2o(tmp_path_factory.mktemp("h2o"), binary=_h2o_binary(), ca=ca) as server:
        yield server


@pytest.fixture
def h2o_factory(tmp_path: Path, ca: trustme.CA) -> Iterator[Callable[..., H2o]]:
    """``h2o_factory(idle_timeout=2, max_concurrent_requests=2)`` -> a started ``H2o``."""
    binary = _h2o_binary()
    yield from _factory(tmp_path, lambda d, **kw: H2o(d, binary=binary, ca=ca, **kw))


@pytest.fixture(scope="session")
def nghttpd_server(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Nghttpd]:
    """nghttpd over TLS (ALPN h2 only, no http/1.1), 100 max concurrent streams."""
    with Nghttpd(tmp_path_factory.mktemp("nghttpd"), binary=_nghttpd_binary(), ca=ca) as server:
        yield server


@pytest.fixture
def nghttpd_factory(tmp_path: Path, ca: trustme.CA) -> Iterator[Callable[..., Nghttpd]]:
    """``nghttpd_factory(max_concurrent_streams=2, tls=False)`` -> a started ``Nghttpd``."""
    binary = _nghttpd_binary()
    yield from _factory(tmp_path, lambda d, **kw: Nghttpd(d, binary=binary, ca=ca, **kw))


@pytest.fixture(scope="session")
def hypercorn_server(
    tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA
) -> Iterator[Hypercorn]:
    """hypercorn with default limits: ``/``, ``/slow?ms=``, ``/echo``, ``/bytes/<n>``."""
    python = _python_with_hypercorn()
    with Hypercorn(tmp_path_factory.mktemp("hypercorn"), binary=python, ca=ca) as server:
        yield server


@pytest.fixture
def hypercorn_factory(tmp_path: Path, ca: trustme.CA) -> Iterator[Callable[..., Hypercorn]]:
    """``hypercorn_factory(keep_alive_max_requests=3, max_concurrent_streams=2,
    keep_alive_timeout=2)`` -> a started ``Hypercorn``."""
    python = _python_with_hypercorn()
    yield from _factory(tmp_path, lambda d, **kw: Hypercorn(d, binary=python, ca=ca, **kw))


@pytest.fixture(scope="session")
def node_h2_server(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[NodeH2]:
    """Node's http2 server with no limits (100 streams): ``?sleep=MS`` delays a response."""
    with NodeH2(tmp_path_factory.mktemp("node-h2"), binary=_node_binary(), ca=ca) as server:
        yield server


@pytest.fixture
def node_h2_factory(tmp_path: Path, ca: trustme.CA) -> Iterator[Callable[..., NodeH2]]:
    """``node_h2_factory(max_requests=3, max_streams=2, idle_ms=2000)`` -> a started ``NodeH2``."""
    binary = _node_binary()
    yield from _factory(tmp_path, lambda d, **kw: NodeH2(d, binary=binary, ca=ca, **kw))


@pytest.fixture(scope="session")
def httpbin_server(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Iterator[Httpbin]:
    """httpbin under gunicorn (gthread, keep-alive) on loopback: ``url``, access log by port."""
    if not have_httpbin():
        if os.environ.get("CI"):
            pytest.fail("httpbin/gunicorn missing, but CI is set: pip install -e '.[test]'")
        pytest.skip("httpbin or gunicorn not installed")
    with Httpbin(tmp_path_factory.mktemp("httpbin"), ca=ca) as server:
        yield server
