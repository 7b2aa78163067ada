"""URL and header edge cases, checked on the wire where the wire is what matters."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import tether
from tether.models import URL, Origin
from tether.testing import TestServer


@pytest.fixture
def session() -> Iterator[tether.Session]:
    with tether.Session() as s:
        yield s


@pytest.fixture
def pool(test_server: TestServer) -> Iterator[tether.ConnectionPool]:
    with tether.ConnectionPool("127.0.0.1", test_server.port, headers={"X-Default": "d"}) as p:
        yield p


def _headers(doc: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in doc["headers"]}


# -- hosts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "ascii_host"),
    [
        ("stra\u00dfe.de", "xn--strae-oqa.de"),  # IDNA 2003 would say strasse.de
        (
            "\u0645\u062b\u0627\u0644.\u0625\u062e\u062a\u0628\u0627\u0631",
            "xn--mgbh0fb.xn--kgbechtv",
        ),
        ("B\u00dcCHER.example", "xn--bcher-kva.example"),  # UTS 46 maps case first
    ],
)
def test_international_hosts_use_idna_2008_with_uts46(host: str, ascii_host: str) -> None:
    assert URL(f"http://{host}/").origin.host == ascii_host


def test_a_backslash_in_the_authority_is_refused(
    test_server: TestServer, session: tether.Session
) -> None:
    url = f"http://127.0.0.1:{test_server.port}\\@evil.example/"
    with pytest.raises(tether.InvalidURL, match="backslash"):
        session.get(url)
    with pytest.raises(tether.InvalidURL, match="backslash"):
        URL("http://allowed.example\\@evil.example/")
    assert test_server.connections_accepted == 0
    assert URL("http://h/a\\b").target == "/a%5Cb"  # in the path it is only a character


@pytest.mark.parametrize("url", ["http://[fe80::1%25eth0]:8080/x", "http://[fe80::1%eth0]:8080/x"])
def test_ipv6_zone_ids_are_accepted_and_not_sent(url: str) -> None:
    parsed = URL(url)
    assert parsed.origin == Origin("http", "fe80::1%eth0", 8080)  # the resolver's spelling
    assert parsed.host_header == "[fe80::1]:8080"  # RFC 6874: the zone is local
    assert str(parsed) == "http://[fe80::1%25eth0]:8080/x"
    assert URL.from_parts(parsed.origin, "/y").origin == parsed.origin


@pytest.mark.parametrize("url", ["http://[fe80::1%]/", "http://[fe80::1%25a b]/"])
def test_bad_zone_ids_are_refused(url: str) -> None:
    with pytest.raises(tether.InvalidURL):
        URL(url)


# -- userinfo --------------------------------------------------------------------------------


def test_userinfo_is_sent_as_basic_auth(test_server: TestServer, session: tether.Session) -> None:
    url = f"http://us%40er:s3cr%3At@127.0.0.1:{test_server.port}/echo"
    r = session.get(url)
    expected = "Basic " + base64.b64encode(b"us@er:s3cr:t").decode()
    assert _headers(r.json())["authorization"] == expected
    assert "s3cr" not in str(r.url) + repr(r.url) + repr(r.request)
    mine = session.get(url, headers={"Authorization": "Bearer mine"})
    assert _headers(mine.json())["authorization"] == "Bearer mine"


def test_userinfo_never_shows_in_errors(session: tether.Session) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(tether.ConnectError) as refused:
        session.get(f"http://user:s3cret@127.0.0.1:{port}/")
    with pytest.raises(tether.InvalidURL) as bad_port:
        URL("http://user:s3cret@h:0/")
    with pytest.raises(tether.InvalidURL) as bad_host:
        URL("http://user:s3cret@[::1::2]/")
    for error in (refused.value, bad_port.value, bad_host.value):
        assert "s3cret" not in str(error) + repr(error)


# -- query and header values of None ---------------------------------------------------------


def test_a_none_param_is_left_out(test_server: TestServer, session: tether.Session) -> None:
    r = session.get(f"{test_server.url}/echo", params={"a": None, "b": "1"})
    assert r.json()["query"] == "b=1"
    r = session.get(f"{test_server.url}/echo", params=[("a", None), ("c", "2")])
    assert r.json()["query"] == "c=2"


def test_a_none_header_removes_a_default(
    test_server: TestServer, session: tether.Session, pool: tether.ConnectionPool
) -> None:
    sent = _headers(session.get(f"{test_server.url}/echo", headers={"User-Agent": None}).json())
    assert "user-agent" not in sent and sent["accept"] == "*/*"
    assert "user-agent" in session.headers  # the session keeps its default
    sent = _headers(pool.request("GET", "/echo", headers={"X-Default": None, "X-B": "b"}).json())
    assert "x-default" not in sent and sent["x-b"] == "b"


def test_a_none_header_value_is_never_sent_as_the_text_none() -> None:
    with pytest.raises(tether.InvalidHeader, match="None"):
        tether.Headers().add("X", None)  # type: ignore[arg-type]
    assert "X" not in tether.Headers({"X": None})  # type: ignore[dict-item]


# -- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/100%done", "/100%25done"),
        ("/%41%4a", "/%41%4a"),
        ("/a%2", "/a%252"),
        ("/a?q=50%&r=%20", "/a?q=50%25&r=%20"),
    ],
)
def test_a_bare_percent_is_encoded_and_escapes_kept(
    test_server: TestServer,
    session: tether.Session,
    pool: tether.ConnectionPool,
    path: str,
    sent: str,
) -> None:
    assert session.get(f"{test_server.url}{path}").json()["path"] == sent.partition("?")[0]
    pool.request("GET", path)
    assert test_server.exchanges[-1].target == sent


def test_a_query_after_a_fragment_belongs_to_the_fragment(
    test_server: TestServer, pool: tether.ConnectionPool
) -> None:
    pool.request("GET", "/a#frag?x=1")
    assert test_server.exchanges[-1].target == "/a"


def test_pool_and_session_encode_a_space_alike(
    test_server: TestServer, session: tether.Session, pool: tether.ConnectionPool
) -> None:
    session.get(f"{test_server.url}/a b")
    pool.request("GET", "/a b")
    assert [ex.target for ex in test_server.exchanges] == ["/a%20b", "/a%20b"]
