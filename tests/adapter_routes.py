"""Routes the adapter tests add to a TestServer: cookies and a gzip-encoded body."""

from __future__ import annotations

import contextlib
import gzip
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tether.testing import TestServer, pattern_bytes
from tether.testing.testserver import Exchange

GZIP_PLAIN = pattern_bytes(50_000)
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
CA_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def _set_cookie(ex: Exchange) -> None:
    cookies = [("Set-Cookie", "session=abc; Path=/"), ("Set-Cookie", "theme=dark; Path=/")]
    ex.respond(200, [("Content-Type", "text/plain"), *cookies], b"cookies set\n")


def _gzip(ex: Exchange) -> None:
    headers = [("Content-Type", "application/octet-stream"), ("Content-Encoding", "gzip")]
    ex.respond(200, headers, gzip.compress(GZIP_PLAIN))


def _bad_gzip(ex: Exchange) -> None:
    ex.respond(200, [("Content-Encoding", "gzip")], b"this is not gzip data at all")


def add_routes(server: TestServer) -> TestServer:
    """``/set-cookie`` (two cookies), ``/gzip`` (GZIP_PLAIN, gzip-encoded), ``/bad-gzip``."""
    server.route("/set-cookie", _set_cookie)
    server.route("/gzip", _gzip)
    server.route("/bad-gzip", _bad_gzip)
    return server


@contextlib.contextmanager
def adapter_server(**options: Any) -> Iterator[TestServer]:
    """A TestServer with the adapter routes; it must record no error."""
    with TestServer(**options) as srv:
        yield add_routes(srv)
    assert not srv.errors, srv.errors


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy and no CA bundle from the machine's environment reaches either library."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in CA_VARS:
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def tether_cause(exc: BaseException) -> BaseException | None:
    """The tether error an adapter's exception was chained from (cause or context)."""
    import tether

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, tether.TetherError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
