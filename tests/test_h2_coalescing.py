"""HTTP/2 connection coalescing (RFC 9113 §9.1.1), opt-in with Session(coalesce=True).

The trustme certificate covers ``localhost`` and ``127.0.0.1``, and ``localhost`` resolves to
127.0.0.1: two host names, one connection, when asked. Counted by the server.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from servers.nginx import Nginx

import tether
from tether.lifecycle.coalescing import cert_names, covers, may_coalesce
from tether.testing import H2TestServer


def test_wildcards_cover_one_label_only() -> None:
    names = ("*.example.com", "example.org", "10.0.0.1")
    assert covers(names, "a.example.com")
    assert covers(names, "A.Example.COM.")
    assert not covers(names, "example.com")
    assert not covers(names, "a.b.example.com")
    assert covers(names, "example.org")
    assert covers(names, "10.0.0.1")
    assert not covers(names, "10.0.0.2")
    assert not covers(("*.com",), "example.com")  # a wildcard never covers a bare suffix


def test_coalescing_needs_a_verified_certificate_and_the_same_address() -> None:
    assert cert_names({}) == ()  # an unverified certificate (verify=False) covers nothing
    peer = {"subjectAltName": (("DNS", "localhost"), ("IP Address", "127.0.0.1"))}
    names = cert_names(peer)
    assert may_coalesce("localhost", ["127.0.0.1", "::1"], names, "127.0.0.1")
    assert not may_coalesce("localhost", ["::1"], names, "127.0.0.1")
    assert not may_coalesce("other.test", ["127.0.0.1"], names, "127.0.0.1")


def test_two_names_one_connection_when_asked(nginx_h2: Nginx) -> None:
    port = nginx_h2.port
    before = len(nginx_h2.access_log())
    with tether.Session(http2=True, coalesce=True, verify=nginx_h2.ca_file) as s:
        first = s.get(f"https://127.0.0.1:{port}/")
        second = s.get(f"https://localhost:{port}/")
        assert first.http_version == second.http_version == "HTTP/2"
        assert not first.connection_info.coalesced
        assert second.connection_info.coalesced
        assert second.connection_info.connection_id == first.connection_info.connection_id
        assert s.stats().connections_opened == 1
    ours = nginx_h2.wait_for_requests(before + 2)[before:]
    assert len(ours) == 2 and {e.protocol for e in ours} == {"HTTP/2"}
    assert len({e.connection for e in ours}) == 1  # one connection, as nginx counted it


def test_without_coalesce_each_name_gets_its_own_connection(nginx_h2: Nginx) -> None:
    port = nginx_h2.port
    with tether.Session(http2=True, verify=nginx_h2.ca_file) as s:
        a = s.get(f"https://127.0.0.1:{port}/")
        b = s.get(f"https://localhost:{port}/")
        assert a.connection_info.connection_id != b.connection_info.connection_id
        assert not b.connection_info.coalesced


@pytest.fixture
def h2_tls(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[H2TestServer]:
    with H2TestServer(tls=H2TestServer.tls_context(ca)) as server:
        yield server


def test_misdirected_request_is_sent_again_on_its_own_connection(
    h2_tls: H2TestServer, ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    port = h2_tls.port
    with tether.Session(http2=True, coalesce=True, verify=str(ca_file)) as s:
        s.get(f"https://127.0.0.1:{port}/")
        # The server answers 421 to requests for localhost on the 127.0.0.1 connection.
        r = s.post(f"https://localhost:{port}/misdirected", data=b"x")
        assert r.status == 200
        assert not r.connection_info.coalesced
        again = s.get(f"https://localhost:{port}/")
        assert not again.connection_info.coalesced  # that host is not coalesced any more
    assert h2_tls.connections_accepted == 2
    posts = [rec for rec in h2_tls.requests if rec[2] == "POST"]
    assert len(posts) == 2  # the 421'd one (not processed) and the one on its own connection


def test_unverified_connections_are_never_coalesced(nginx_h2: Nginx) -> None:
    ctx = ssl.create_default_context(cafile=str(nginx_h2.ca_file))
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    port = nginx_h2.port
    with tether.Session(http2=True, coalesce=True, verify=ctx) as s:
        a = s.get(f"https://127.0.0.1:{port}/")
        b = s.get(f"https://localhost:{port}/")
        assert a.http_version == "HTTP/2"
        assert a.connection_info.connection_id != b.connection_info.connection_id
