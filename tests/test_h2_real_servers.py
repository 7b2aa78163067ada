"""tether's HTTP/2 against real servers: nginx, h2o, nghttpd, hypercorn and node, TLS and h2c.

Each target is a running server plus the paths it serves. Every test proves what it claims
from the server's side: the protocol it logged, and how many TCP connections carried the
requests (its access log or its own connection counter), never tether's repr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from servers.nginx import BIG_SIZE, Nginx
from servers.process import AccessLogQueries

import tether
from tether.testing import pattern_bytes

PATTERN_64K = bytes(range(256)) * 256


@dataclass
class Target:
    """A server under test and what it serves."""

    server: AccessLogQueries
    base: str  # https://... (ALPN) or http://... (h2c prior knowledge)
    verify: str | bool
    small: str  # a GET path with a short body
    small_body: bytes | None  # its exact body, when the server's answer is fixed
    big: str  # a GET path with a large body
    big_body: bytes
    post: str | None  # a path accepting POST bodies (None: the server has none)

    def session(self) -> tether.Session:
        mode: bool | str = True if self.base.startswith("https") else "prior-knowledge"
        return tether.Session(http2=mode, verify=self.verify)  # type: ignore[arg-type]

    def connections_since(self, before: int, count: int) -> set[str]:
        """The server-side connections that carried the ``count`` requests logged after
        ``before`` (waits until they are logged)."""
        entries = self.server.wait_for_requests(before + count)[before:]
        assert len(entries) == count, entries
        assert {e.protocol for e in entries} == {"HTTP/2"}, entries
        return {e.connection for e in entries}


def _nginx(server: Nginx) -> Target:
    verify = str(server.ca_file) if server.ca_file else True
    big = bytes(range(256)) * (BIG_SIZE // 256)
    return Target(server, server.url, verify, "/", b"Hello, world!", "/64k.bin", big, "/echo")


def _targets(request: pytest.FixtureRequest, name: str) -> Target:
    get = request.getfixturevalue
    if name == "nginx-tls":
        return _nginx(get("nginx_h2"))
    if name == "nginx-h2c":
        return _nginx(get("nginx_h2c"))
    if name in ("h2o-tls", "h2o-h2c"):
        s = get("h2o_server")
        base = s.url if name == "h2o-tls" else s.h2c_url
        return Target(s, base, str(s.ca_file), "/", b"hello h2o\n", "/64k.bin", PATTERN_64K, None)
    if name == "nghttpd-tls":
        s = get("nghttpd_server")
        return Target(
            s, s.url, str(s.ca_file), "/", b"hello nghttpd\n", "/64k.bin", PATTERN_64K, None
        )
    if name == "nghttpd-h2c":
        s = get("nghttpd_factory")(tls=False)
        return Target(s, s.url, True, "/", b"hello nghttpd\n", "/64k.bin", PATTERN_64K, None)
    if name in ("hypercorn-tls", "hypercorn-h2c"):
        s = get("hypercorn_server")
        base = s.url if name == "hypercorn-tls" else s.h2c_url
        big = pattern_bytes(1_000_000)
        return Target(s, base, str(s.ca_file), "/", b"hello\n", "/bytes/1000000", big, "/echo")
    s = get("node_h2_server")
    base = s.url if name == "node-tls" else s.h2c_url
    return Target(s, base, str(s.ca_file), "/", None, "/", b"", "/post")


ALL = [
    "nginx-tls",
    "nginx-h2c",
    "h2o-tls",
    "h2o-h2c",
    "nghttpd-tls",
    "nghttpd-h2c",
    "hypercorn-tls",
    "hypercorn-h2c",
    "node-tls",
    "node-h2c",
]


@pytest.fixture(params=ALL)
def target(request: pytest.FixtureRequest) -> Target:
    return _targets(request, request.param)


def test_sequential_gets_are_h2_on_one_server_connection(target: Target) -> None:
    before = len(target.server.access_log())
    with target.session() as session:
        responses = [session.get(target.base + target.small) for _ in range(10)]
    for r in responses:
        assert r.status_code == 200
        assert r.http_version == "HTTP/2"
        assert r.connection_info.protocol == "h2"
        if target.small_body is not None:
            assert r.content == target.small_body
    # Client-initiated streams are odd and increase: 1, 3, 5, ...
    assert [r.connection_info.stream_id for r in responses] == list(range(1, 21, 2))
    assert len(target.connections_since(before, 10)) == 1


@pytest.mark.parametrize("name", [n for n in ALL if not n.startswith("node")])
def test_large_body_arrives_intact(request: pytest.FixtureRequest, name: str) -> None:
    target = _targets(request, name)  # node's script has no large-body route
    with target.session() as session:
        first = session.get(target.base + target.big)
        second = session.get(target.base + target.big)  # credit returned: the window reopens
    assert first.content == target.big_body
    assert second.content == target.big_body
    assert second.connection_info.reused


@pytest.mark.parametrize("size", [0, 10, 70_000, 1_000_000])
@pytest.mark.parametrize("name", ["nginx-tls", "nginx-h2c", "hypercorn-tls", "hypercorn-h2c"])
def test_post_bodies(request: pytest.FixtureRequest, name: str, size: int) -> None:
    target = _targets(request, name)
    assert target.post is not None
    before = len(target.server.access_log())
    body = pattern_bytes(size)
    with target.session() as session:
        responses = [session.post(target.base + target.post, data=body) for _ in range(3)]
    for r in responses:
        assert r.status_code == 200
        assert r.http_version == "HTTP/2"
        if name.startswith("hypercorn"):  # it echoes the length it received
            assert r.content == str(size).encode()
    entries = target.server.wait_for_requests(before + 3)[before:]
    assert [e.method for e in entries] == ["POST"] * 3
    assert len({e.connection for e in entries}) == 1


@pytest.mark.parametrize("name", ["node-tls", "node-h2c"])
def test_node_post_and_headers_name_the_connection(
    request: pytest.FixtureRequest, name: str
) -> None:
    target = _targets(request, name)
    before = len(target.server.access_log())
    with target.session() as session:
        posts = [session.post(target.base + "/p", data=pattern_bytes(100_000)) for _ in range(4)]
    assert {r.status_code for r in posts} == {200}
    # node numbers its sessions: one x-conn value, requests 1..4 on it
    assert len({r.headers["x-conn"] for r in posts}) == 1
    assert [r.headers["x-req"] for r in posts] == ["1", "2", "3", "4"]
    assert len(target.connections_since(before, 4)) == 1


def test_alpn_falls_back_to_http11_when_h2_not_offered(nginx_h2: Nginx) -> None:
    with tether.Session(verify=str(nginx_h2.ca_file)) as session:
        r = session.get(nginx_h2.url + "/")
    assert r.http_version == "HTTP/1.1"
    assert r.connection_info.protocol == "http/1.1"


def test_many_sequential_requests_one_connection_nginx_counts(
    nginx_h2_factory: Callable[..., Nginx],
) -> None:
    server = nginx_h2_factory(tls=False)
    accepts = server.stats().accepts
    with tether.Session(http2="prior-knowledge") as session:
        for _ in range(200):
            assert session.get(server.url + "/").status_code == 200
        stats = session.stats()
    assert stats.connections_opened == 1
    assert stats.reuses == 199
    # stats() itself opens one connection on the status port
    assert server.stats().accepts - accepts == 2
    assert len(server.requests_per_connection()) == 1
