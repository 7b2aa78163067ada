"""IPv6 literal hosts: an origin built from parts brackets them, and requests reach ::1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import tether
from tether.exceptions import InvalidURL
from tether.models import URL, Origin
from tether.testing import TestServer


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


@pytest.mark.parametrize("host", ["::1", "[::1]", "[::1]".upper()])
def test_origin_of_accepts_both_ipv6_spellings(host: str) -> None:
    origin = Origin.of("http", host, 8080)
    assert origin == Origin("http", "::1", 8080)
    assert str(origin) == "http://[::1]:8080"
    assert URL.from_parts(origin, "/x").host_header == "[::1]:8080"


def test_origin_of_normalises_names_and_default_ports() -> None:
    assert Origin.of("HTTPS", "Example.COM") == Origin("https", "example.com", 443)
    assert Origin.of("http", "b\u00fccher.example", 81).host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("scheme", "host", "port"),
    [
        ("ftp", "h", 21),
        ("http", "", 80),
        ("http", "[]", 80),
        ("http", "[h]", 80),
        ("http", "::1::2", 80),
        ("http", "h", 0),
        ("http", "h", 70000),
        ("http", "a/b", 80),
    ],
)
def test_origin_of_refuses_bad_parts(scheme: str, host: str, port: int) -> None:
    with pytest.raises(InvalidURL):
        Origin.of(scheme, host, port)


@pytest.fixture
def server6() -> Iterator[TestServer]:
    with TestServer(host="::1") as server:
        yield server
    assert not server.errors


@needs_ipv6
def test_test_server_listens_on_ipv6(server6: TestServer) -> None:
    assert server6.url == f"http://[::1]:{server6.port}"
    with socket.create_connection(("::1", server6.port), timeout=5) as sock:
        sock.sendall(b"GET /status/204 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 204")


@needs_ipv6
def test_session_reaches_an_ipv6_literal_and_reuses(server6: TestServer) -> None:
    with tether.Session() as s:
        first = s.get(f"{server6.url}/a")
        second = s.get(f"{server6.url}/b")
    assert first.json()["path"] == "/a" and second.status == 200
    assert second.connection_info.reused
    assert server6.connections_accepted == 1
    host = dict((n.lower(), v) for n, v in first.json()["headers"])["host"]
    assert host == f"[::1]:{server6.port}"


@needs_ipv6
def test_one_shot_get_reaches_an_ipv6_literal(server6: TestServer) -> None:
    assert tether.get(f"{server6.url}/x").json()["path"] == "/x"


def _pool_round_trip(host: str, port: int) -> None:
    with tether.ConnectionPool(host, port) as pool:
        assert pool.origin == Origin("http", "::1", port)
        assert pool.request("GET", "/p").json()["path"] == "/p"


@needs_ipv6
def test_pool_for_a_bracketed_ipv6_host(server6: TestServer) -> None:
    _pool_round_trip("[::1]", server6.port)


@needs_ipv6
def test_pool_for_a_bare_ipv6_host(server6: TestServer) -> None:
    _pool_round_trip("::1", server6.port)
