"""Request framing is checked where the request is encoded, not only when it is built."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tether
from tether.models import Request
from tether.testing import TestServer

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def pool(test_server: TestServer) -> Iterator[tether.ConnectionPool]:
    with tether.ConnectionPool("127.0.0.1", test_server.port) as pool:
        yield pool


def _paths(server: TestServer) -> list[str]:
    return [ex.path for ex in server.exchanges]


@pytest.mark.parametrize(
    ("name", "value"),
    [("Content-Length", "1"), ("Content-Length", "0"), ("Transfer-Encoding", "chunked")],
)
def test_framing_header_set_after_construction_never_reaches_the_wire(
    test_server: TestServer, pool: tether.ConnectionPool, name: str, value: str
) -> None:
    req = Request("POST", f"{test_server.url}/echo", body=SMUGGLED)
    req.headers[name] = value  # after the constructor's check
    with pytest.raises(tether.InvalidHeader, match=name):
        pool.send(req)
    assert "/smuggled" not in _paths(test_server)
    assert test_server.requests_served == 0
    # The pool is still usable and the server saw nothing from that request.
    assert pool.request("GET", "/after").json()["path"] == "/after"
    assert _paths(test_server) == ["/after"]


def test_headers_fixed_after_construction_are_sent_with_the_real_length(
    test_server: TestServer, pool: tether.ConnectionPool
) -> None:
    req = Request("POST", f"{test_server.url}/echo", body=b"hello", headers={"X-A": "1"})
    req.headers["Content-Length"] = "5"  # true: allowed
    assert pool.send(req).json()["body"] == "hello"
    del req.headers["Content-Length"]  # tether frames it again
    assert pool.send(req).json()["body_length"] == 5


def test_framing_is_one_call_both_protocols_use() -> None:
    req = Request("POST", "http://h/", body=iter([b"ab"]), headers={"Content-Length": "2"})
    framing = req.framing()
    assert framing.has_length and framing.declared_length == 2
    assert framing.header_block == b"Content-Length: 2\r\n"
    req.headers["Content-Length"] = "x"
    with pytest.raises(tether.InvalidHeader, match="invalid Content-Length"):
        req.framing()
