"""Shared fixtures: in-process TestServer, private nginx instances, a trustme CA.

nginx fixtures skip when nginx is missing, except in CI (``CI`` set) where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from servers.nginx import Nginx, find_nginx

from tether.testing import TestServer


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
