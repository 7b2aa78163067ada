"""Bad input and misbehaving servers: every failure is typed, nothing hangs, the pool survives.

Reuse and its absence are proven by what the server counted (``connections_accepted``, the
requests a handler saw) and by tether's own counters (``stats()``, ``connection_info``).
"""

from __future__ import annotations

import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from helpers import fd_count

import tether
from tether import ConnectionPool, Timeout
from tether.testing import Exchange, TestServer, pattern_bytes


def raw(data: bytes) -> str:
    """The path of a /raw request that makes the server send ``data`` verbatim, then close."""
    return "/raw?data=" + quote(data, safe="")


def closes(pool: ConnectionPool, reason: str) -> int:
    return pool.stats().closes.get(reason, 0)


@pytest.fixture
def pool(test_server: TestServer) -> Iterator[ConnectionPool]:
    with ConnectionPool("127.0.0.1", test_server.port, timeout=Timeout(5, 5, 5, 5)) as p:
        yield p


def assert_next_request_works(pool: ConnectionPool, server: TestServer) -> None:
    """The pool is healthy: a plain request succeeds (on a new connection)."""
    accepted = server.connections_accepted
    r = pool.request("GET", "/echo")
    assert r.status == 200
    assert r.json()["path"] == "/echo"
    assert server.connections_accepted == accepted + 1
    assert pool.stats().in_use == 0


# -- header injection and invalid requests: refused before anything is sent --------------------


@pytest.mark.parametrize("bad", ["\r", "\n", "\r\n", "\x00"])
def test_control_character_in_header_value_is_refused(test_server: TestServer, bad: str) -> None:
    with tether.Session() as s, pytest.raises(tether.InvalidHeader) as info:
        s.get(test_server.url + "/", headers={"X-Test": f"a{bad}Injected: yes"})
    assert isinstance(info.value, tether.InvalidRequest)
    assert info.value.may_have_reached_server is False
    assert test_server.connections_accepted == 0


@pytest.mark.parametrize("bad", ["\r", "\n", "\x00", " ", ":"])
def test_bad_character_in_header_name_is_refused(pool: ConnectionPool, bad: str) -> None:
    with pytest.raises(tether.InvalidHeader):
        pool.request("GET", "/", headers={f"X{bad}Evil": "1"})
    assert pool.stats().connections_opened == 0


@pytest.mark.parametrize("method", ["GE T", "GET\r\n", "GET\n", "G\x00ET", "", "GET /x HTTP/1.1"])
def test_bad_method_is_refused(test_server: TestServer, pool: ConnectionPool, method: str) -> None:
    with pytest.raises(tether.InvalidHeader) as info:
        pool.request(method, "/")
    assert isinstance(info.value, tether.InvalidRequest)
    assert test_server.connections_accepted == 0
    assert pool.num_requests == 0


@pytest.mark.parametrize(
    "path", ["/a\r\nX-Injected: yes", "/a\nb", "/a\rb", "/a\x00b", "/a\tb", "a", ""]
)
def test_bad_request_target_is_refused(
    test_server: TestServer, pool: ConnectionPool, path: str
) -> None:
    with pytest.raises(tether.InvalidURL) as info:
        pool.request("GET", path)
    assert isinstance(info.value, tether.InvalidRequest)
    assert test_server.connections_accepted == 0


@pytest.mark.parametrize(
    "suffix", ["/a\r\nX: y", "/a\nX: y", "/a\x00", "/a\tb", "/a?q=1\r\n\r\nGET / HTTP/1.1"]
)
def test_injection_in_session_url_is_refused(test_server: TestServer, suffix: str) -> None:
    with tether.Session() as s, pytest.raises(tether.InvalidURL):
        s.get(test_server.url + suffix)
    assert test_server.connections_accepted == 0


def test_injection_in_host_is_refused(test_server: TestServer) -> None:
    with tether.Session() as s, pytest.raises(tether.InvalidURL):
        s.get(f"http://127.0.0.1:{test_server.port}\r\nX: y/")
    assert test_server.connections_accepted == 0


@pytest.mark.parametrize(
    ("url", "bad_part"),
    [
        ("http://127.0.0.1:99999/", "99999"),
        ("http://127.0.0.1:abc/", "abc"),
        ("http://127.0.0.1:-1/", "-1"),
        ("http://127.0.0.1:0/", "port 0"),
        ("ftp://127.0.0.1/", "ftp"),
        ("http:///nohost", "no host"),
        ("http://[::1/", "IPv6"),
        ("http://a%0d%0ab/", "a%0d%0ab"),
        ("127.0.0.1:8080/", "127.0.0.1"),
    ],
)
def test_invalid_url_names_the_bad_part(url: str, bad_part: str) -> None:
    with tether.Session() as s, pytest.raises(tether.InvalidURL) as info:
        s.get(url)
    assert bad_part in str(info.value)


def test_invalid_port_for_a_pool_is_refused() -> None:
    with pytest.raises(tether.InvalidURL, match="65536"):
        ConnectionPool("127.0.0.1", 65536)


def test_body_iterator_that_raises_does_not_wedge_the_pool(test_server: TestServer) -> None:
    def body() -> Iterator[bytes]:
        yield b"first part"
        raise RuntimeError("the file being uploaded vanished")

    p = ConnectionPool(
        "127.0.0.1", test_server.port, maxsize=1, block=True, timeout=Timeout(pool=0.3)
    )
    try:
        with pytest.raises(RuntimeError, match="vanished"):
            p.request("POST", "/echo", body=body())
        assert p.stats().in_use == 0
        assert p.request("GET", "/echo").status == 200
    finally:
        p.close()


# -- remote protocol errors: typed, connection discarded, the pool stays healthy ------------


PROTOCOL_FAULTS = {
    "garbage": "/garbage",
    "cl-and-te": raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    ),
    "two-content-length": raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    ),
    "same-content-length-twice": raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    ),
    "bad-content-length": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nabc"),
    "bad-chunk-size": raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    ),
    "four-digit-status": raw(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
    "not-http-version": raw(b"HTTP/9 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "bare-lf": raw(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    "101-headers": "/large-headers/99",  # + Content-Type and Content-Length = 101
    "many-headers": "/large-headers/101",
    "unasked-101": raw(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
    "empty-reply-after-head-start": raw(b"HTTP/1.1 200 OK\r\nContent-Len"),
}


@pytest.mark.parametrize("path", PROTOCOL_FAULTS.values(), ids=PROTOCOL_FAULTS.keys())
def test_protocol_error_discards_connection_and_pool_stays_healthy(
    test_server: TestServer, pool: ConnectionPool, path: str
) -> None:
    with pytest.raises(tether.RemoteProtocolError) as info:
        pool.request("GET", path)
    assert info.value.may_have_reached_server is True
    assert info.value.request is not None and info.value.request.method == "GET"
    stats = pool.stats()
    assert stats.closes == {"PROTOCOL_ERROR": 1}
    assert (stats.open, stats.retries) == (0, 0)
    assert_next_request_works(pool, test_server)


def test_exactly_100_headers_are_accepted_and_reused(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/large-headers/98")  # + Content-Type and Content-Length = 100
    assert r.status == 200
    assert r.headers["X-Large-97"] == "value-97"
    assert pool.request("GET", "/echo").connection_info.reused
    assert test_server.connections_accepted == 1


def test_truncated_body_reports_received_and_announced(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    with pytest.raises(tether.RemoteProtocolError, match="received 10 of 100 bytes"):
        pool.request("GET", "/truncate")
    assert closes(pool, "PROTOCOL_ERROR") == 1
    assert_next_request_works(pool, test_server)


def test_truncated_streamed_body_raises_while_iterating(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/truncate", stream=True)
    assert r.status == 200
    with pytest.raises(tether.RemoteProtocolError, match="received 10 of 100 bytes"):
        b"".join(r.iter_bytes())
    assert closes(pool, "PROTOCOL_ERROR") == 1
    assert_next_request_works(pool, test_server)


def big_head(size: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * size + b"\r\nContent-Length: 0\r\n\r\n"


def test_header_block_far_over_64_kib_is_refused(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    test_server.route("/huge-head", lambda ex: ex.send_raw(big_head(200 * 1024)))
    with pytest.raises(tether.RemoteProtocolError, match="exceeds 65536 bytes"):
        pool.request("GET", "/huge-head")
    assert closes(pool, "PROTOCOL_ERROR") == 1
    assert_next_request_works(pool, test_server)


def test_header_block_just_over_64_kib_is_refused(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    def handler(ex: Exchange) -> None:
        data = big_head(65 * 1024)
        ex.send_raw(data[:40_000])
        ex.wait(0.05)  # two reads on the client: neither alone is over the limit and incomplete
        ex.send_raw(data[40_000:])

    test_server.route("/huge-head", handler)
    with pytest.raises(tether.RemoteProtocolError, match="exceeds 65536 bytes"):
        pool.request("GET", "/huge-head")
    assert closes(pool, "PROTOCOL_ERROR") == 1
    assert_next_request_works(pool, test_server)


def test_reset_mid_body_is_a_typed_error_not_a_short_success(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    with pytest.raises((tether.ReadError, tether.RemoteProtocolError)) as info:
        pool.request("GET", "/reset-mid-body")
    assert info.value.may_have_reached_server is True
    stats = pool.stats()
    assert stats.open == 0 and stats.retries == 0
    assert set(stats.closes) <= {"NETWORK_ERROR", "PROTOCOL_ERROR"}
    assert_next_request_works(pool, test_server)


def test_reset_mid_streamed_body_is_a_typed_error(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/reset-mid-body", stream=True)
    with pytest.raises((tether.ReadError, tether.RemoteProtocolError)):
        r.read()
    assert pool.stats().open == 0
    assert_next_request_works(pool, test_server)


# -- responses without a body, interim responses, non-persistent responses -----------------------


def test_head_with_content_length_and_no_body_does_not_hang_and_reuses(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("HEAD", "/head-lies")
    assert r.status == 200
    assert r.headers["Content-Length"] == "1000"
    assert r.content == b""
    r = pool.request("GET", "/head-lies")
    assert r.content == pattern_bytes(1000)
    assert r.connection_info.reused
    assert test_server.connections_accepted == 1


def test_streamed_head_response_is_empty_and_reuses(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    with pool.request("HEAD", "/head-lies", stream=True) as r:
        assert list(r.iter_bytes()) == []
    assert pool.request("GET", "/echo").connection_info.request_number == 2
    assert test_server.connections_accepted == 1


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_status_is_empty_and_reuses(
    test_server: TestServer, pool: ConnectionPool, status: int
) -> None:
    r = pool.request("GET", f"/status/{status}")
    assert (r.status, r.content) == (status, b"")
    r = pool.request("GET", f"/status/{status}")
    assert (r.status, r.content, r.connection_info.reused) == (status, b"", True)
    assert pool.request("GET", "/echo").json()["request_index"] == 3
    assert test_server.connections_accepted == 1


@pytest.mark.parametrize("interim", [100, 102, 103])
def test_interim_response_is_skipped(
    test_server: TestServer, pool: ConnectionPool, interim: int
) -> None:
    r = pool.request("GET", f"/status/{interim}-then-200")
    assert r.status == 200
    assert r.content == b"200 OK\n"
    assert pool.request("GET", "/echo").connection_info.reused
    assert test_server.connections_accepted == 1


def test_bytes_after_a_bodyless_response_make_the_connection_unusable(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    # keep=1: the server keeps the connection open after its lie, waiting for a request.
    lie = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"
    r = pool.request("GET", raw(lie) + "&keep=1")
    assert (r.status, r.content) == (204, b"")
    assert closes(pool, "NOT_PERSISTENT") == 1
    assert_next_request_works(pool, test_server)


def test_unsolicited_bytes_on_an_idle_connection_are_not_read_as_the_next_response(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    sent = threading.Event()

    def late_408(ex: Exchange) -> None:
        ex.respond(200, [("Content-Type", "text/plain")], b"ok")
        ex.wait(0.05)
        ex.send_raw(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        sent.set()  # on loopback, sent means in the client's receive queue
        ex.wait(1)

    test_server.route("/late-408", late_408)
    assert pool.request("GET", "/late-408").content == b"ok"
    assert sent.wait(2)
    body = b"must not be answered by the stale 408"
    r = pool.request("POST", "/echo", body=body)
    assert r.status == 200
    assert r.json()["body_length"] == len(body)
    assert r.connection_info.retries == 0
    assert closes(pool, "UNSOLICITED_DATA") == 1
    assert test_server.connections_accepted == 2


def test_http10_close_delimited_body_is_complete_and_not_reused(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/http10")
    assert (r.status, r.http_version, r.content) == (200, "HTTP/1.0", b"body ends at close\n")
    assert closes(pool, "NOT_PERSISTENT") == 1
    assert_next_request_works(pool, test_server)


def test_connection_close_is_honoured(test_server: TestServer, pool: ConnectionPool) -> None:
    r = pool.request("GET", "/close")
    assert r.content == b"closing\n"
    assert closes(pool, "NOT_PERSISTENT") == 1
    assert pool.stats().open == 0
    r = pool.request("GET", "/echo")
    assert not r.connection_info.reused
    assert test_server.connections_accepted == 2


def test_request_asking_for_close_is_not_reused(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    pool.request("GET", "/echo", headers={"Connection": "close"})
    assert closes(pool, "NOT_PERSISTENT") == 1
    pool.request("GET", "/echo")
    assert test_server.connections_accepted == 2


# -- timeouts and connect failures ------------------------------------------------------------


def test_read_timeout_discards_connection(test_server: TestServer, pool: ConnectionPool) -> None:
    with pytest.raises(tether.ReadTimeout) as info:
        pool.request("GET", "/slow/2", timeout=0.2)
    assert info.value.may_have_reached_server is True
    assert isinstance(info.value, tether.TimeoutException)
    stats = pool.stats()
    assert stats.closes == {"TIMEOUT": 1}
    assert (stats.open, stats.retries) == (0, 0)
    assert_next_request_works(pool, test_server)


def test_read_timeout_mid_body_when_streaming(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/slow-body/2", stream=True, timeout=Timeout(read=0.2))
    with pytest.raises(tether.ReadTimeout):
        r.read()
    assert closes(pool, "TIMEOUT") == 1
    assert_next_request_works(pool, test_server)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection_is_connect_error_naming_the_origin() -> None:
    port = free_port()
    with ConnectionPool("127.0.0.1", port, timeout=2) as p:
        with pytest.raises(tether.ConnectError) as info:
            p.request("GET", "/")
        assert not isinstance(info.value, tether.TimeoutException)
        assert f"127.0.0.1:{port}" in str(info.value)
        assert info.value.may_have_reached_server is False
        stats = p.stats()
        assert (stats.open, stats.connections_opened, stats.in_use) == (0, 0, 0)
    with tether.Session() as s, pytest.raises(tether.ConnectError, match=f"127.0.0.1:{port}"):
        s.get(f"http://127.0.0.1:{port}/")


def test_connect_error_carries_request_and_origin() -> None:
    port = free_port()
    with tether.Session() as s, pytest.raises(tether.ConnectError) as info:
        s.get(f"http://127.0.0.1:{port}/path")
    assert info.value.request is not None
    assert str(info.value.request.url) == f"http://127.0.0.1:{port}/path"
    assert info.value.origin == ("http", "127.0.0.1", port)


def test_connect_timeout_is_typed() -> None:
    # A listener that never accepts, with its backlog full: further SYNs are dropped.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers: list[socket.socket] = []
        try:
            for _ in range(8):
                f = socket.socket()
                f.setblocking(False)
                fillers.append(f)
                f.connect_ex(("127.0.0.1", port))
            with ConnectionPool("127.0.0.1", port, timeout=Timeout(connect=0.2)) as p:
                with pytest.raises(tether.ConnectTimeout, match=f"127.0.0.1:{port}"):
                    p.request("GET", "/")
                assert p.stats().open == 0
        finally:
            for f in fillers:
                f.close()


# -- retry rules (Go's) -------------------------------------------------------------------------


@pytest.fixture
def flaky(test_server: TestServer) -> list[tuple[str, int, int]]:
    """/flaky answers the first request on a connection and drops the second unanswered."""
    seen: list[tuple[str, int, int]] = []

    def handler(ex: Exchange) -> None:
        seen.append((ex.method, ex.connection_id, ex.index))
        if ex.index == 1:
            ex.respond(200, [("Content-Type", "text/plain")], b"ok")
        else:
            ex.close()

    test_server.route("/flaky", handler)
    return seen


def test_get_on_dead_reused_connection_is_retried_transparently(
    test_server: TestServer, pool: ConnectionPool, flaky: list[tuple[str, int, int]]
) -> None:
    assert pool.request("GET", "/flaky").connection_info.retries == 0
    r = pool.request("GET", "/flaky")
    assert (r.status, r.content) == (200, b"ok")
    assert r.connection_info.retries == 1
    assert not r.connection_info.reused
    stats = pool.stats()
    assert stats.retries == 1
    assert stats.closes == {"NETWORK_ERROR": 1}
    assert test_server.connections_accepted == 2
    assert flaky == [("GET", 1, 1), ("GET", 1, 2), ("GET", 2, 1)]


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("PUT", {}),
        ("DELETE", {}),
        ("POST", {"Idempotency-Key": "order-42"}),
        ("PATCH", {"X-Idempotency-Key": "order-42"}),
    ],
)
def test_replayable_request_is_retried(
    test_server: TestServer,
    pool: ConnectionPool,
    flaky: list[tuple[str, int, int]],
    method: str,
    headers: dict[str, str],
) -> None:
    pool.request("GET", "/flaky")
    body = None if method == "DELETE" else b"payload"
    r = pool.request(method, "/flaky", body=body, headers=headers)
    assert r.status == 200
    assert r.connection_info.retries == 1
    assert pool.stats().retries == 1
    assert [m for m, _, _ in flaky].count(method) == 2
    assert test_server.connections_accepted == 2


def test_post_is_never_resent_after_it_was_written(
    test_server: TestServer, pool: ConnectionPool, flaky: list[tuple[str, int, int]]
) -> None:
    pool.request("GET", "/flaky")
    with pytest.raises(tether.RequestError) as info:
        pool.request("POST", "/flaky", body=b"charge the card")
    assert info.value.may_have_reached_server is True
    assert isinstance(info.value, tether.ReadError)
    assert info.value.request is not None and info.value.request.method == "POST"
    assert [m for m, _, _ in flaky].count("POST") == 1
    assert pool.stats().retries == 0
    assert test_server.connections_accepted == 1
    assert_next_request_works(pool, test_server)


def test_idempotent_method_with_one_shot_body_is_not_retried(
    test_server: TestServer, pool: ConnectionPool, flaky: list[tuple[str, int, int]]
) -> None:
    def body() -> Iterator[bytes]:
        yield b"streamed "
        yield b"once"

    pool.request("GET", "/flaky")
    with pytest.raises(tether.RequestError) as info:
        pool.request("PUT", "/flaky", body=body(), headers={"Idempotency-Key": "k"})
    assert info.value.may_have_reached_server is True
    assert [m for m, _, _ in flaky].count("PUT") == 1
    assert test_server.exchanges[-1].body == b"streamed once"
    assert pool.stats().retries == 0


def test_post_with_generator_body_is_not_retried(
    test_server: TestServer, pool: ConnectionPool, flaky: list[tuple[str, int, int]]
) -> None:
    pool.request("GET", "/flaky")
    with pytest.raises(tether.RequestError):
        pool.request("POST", "/flaky", body=(p for p in [b"a", b"b"]))
    assert [m for m, _, _ in flaky].count("POST") == 1
    assert pool.stats().retries == 0


def test_failure_on_a_new_connection_is_not_retried(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    with pytest.raises(tether.ReadError) as info:
        pool.request("GET", "/drop-after-request")
    assert info.value.may_have_reached_server is True
    assert pool.stats().retries == 0
    assert test_server.connections_accepted == 1
    assert_next_request_works(pool, test_server)


def test_read_timeout_on_reused_connection_is_not_retried(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    pool.request("GET", "/echo")
    with pytest.raises(tether.ReadTimeout):
        pool.request("GET", "/slow/2", timeout=0.2)
    assert pool.stats().retries == 0
    assert test_server.connections_accepted == 1
    assert [ex.path for ex in test_server.exchanges].count("/slow/2") == 1


def test_protocol_error_on_reused_connection_is_not_retried(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    pool.request("GET", "/echo")
    with pytest.raises(tether.RemoteProtocolError):
        pool.request("GET", "/garbage")
    assert pool.stats().retries == 0
    assert test_server.connections_accepted == 1


# -- streaming ----------------------------------------------------------------------------------


def test_streamed_response_closed_early_with_much_left_is_not_reused(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/bytes/1000000", stream=True)
    first = next(r.iter_bytes(10_000))
    assert first == pattern_bytes(10_000)
    r.close()
    assert closes(pool, "BODY_NOT_CONSUMED") == 1
    assert pool.stats().open == 0
    assert_next_request_works(pool, test_server)
    with pytest.raises(tether.StreamError):
        r.read()


def test_streamed_response_closed_early_with_little_left_is_drained_and_reused(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/bytes/20000", stream=True)
    assert next(r.iter_bytes(1000)) == pattern_bytes(1000)
    r.close()
    assert pool.stats().closes == {}
    r = pool.request("GET", "/echo")
    assert r.connection_info.reused
    assert test_server.connections_accepted == 1


def test_streamed_response_in_with_block_is_released(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    with pool.request("GET", "/chunked/5000", stream=True) as r:
        assert r.status == 200
    assert pool.request("GET", "/echo").connection_info.reused
    assert test_server.connections_accepted == 1


def test_closing_a_stalled_stream_does_not_wait_for_the_server(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/slow-body/1", stream=True)  # 10 of 20 bytes, then 1 s of silence
    r.close()
    assert pool.stats().closes == {"BODY_NOT_CONSUMED": 1}


def test_closing_a_trickling_stream_does_not_wait_for_the_whole_body(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    def trickle(ex: Exchange) -> None:
        ex.send_head(200, [("Content-Length", "30")])
        for _ in range(30):
            ex.wait(0.02)
            ex.send_raw(b"x")

    test_server.route("/trickle", trickle)
    r = pool.request("GET", "/trickle", stream=True)
    r.close()
    assert pool.stats().closes == {"BODY_NOT_CONSUMED": 1}


def test_dropped_streamed_response_does_not_leak_its_socket(
    test_server: TestServer,
) -> None:
    with ConnectionPool("127.0.0.1", test_server.port) as warm:
        warm.request("GET", "/echo")  # start the idle watcher before counting descriptors
    assert test_server.wait_open_connections(0)
    baseline = fd_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pool = ConnectionPool("127.0.0.1", test_server.port)
        r = pool.request("GET", "/bytes/1000000", stream=True)
        chunks = r.iter_bytes(4096)
        next(chunks)
        del r, chunks
        gc.collect()
        stats = pool.stats()
        assert stats.open == 0
        assert stats.closes == {"BODY_NOT_CONSUMED": 1}
        pool.close()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert test_server.wait_open_connections(0)
    assert fd_count() == baseline


def test_iter_bytes_rechunks(pool: ConnectionPool) -> None:
    r = pool.request("GET", "/chunked/10000?chunk=333", stream=True)
    pieces = list(r.iter_bytes(chunk_size=1000))
    assert [len(p) for p in pieces] == [1000] * 10
    assert b"".join(pieces) == pattern_bytes(10000)
    r = pool.request("GET", "/chunked/10001?chunk=333", stream=True)
    pieces = list(r.iter_bytes(chunk_size=4096))
    assert [len(p) for p in pieces] == [4096, 4096, 1809]
    assert b"".join(pieces) == pattern_bytes(10001)
    assert pool.stats().reuses == 1


def test_read_after_iter_bytes_raises_stream_consumed(pool: ConnectionPool) -> None:
    r = pool.request("GET", "/chunked/10000?chunk=333", stream=True)
    assert b"".join(r.iter_bytes()) == pattern_bytes(10000)
    with pytest.raises(tether.StreamConsumed):
        r.read()
    with pytest.raises(tether.StreamConsumed):
        next(r.iter_bytes())
    assert pool.stats().idle == 1


def test_iter_bytes_of_a_read_body_replays_it(pool: ConnectionPool) -> None:
    r = pool.request("GET", "/bytes/2500", stream=True)
    assert r.read() == pattern_bytes(2500)
    assert [len(p) for p in r.iter_bytes(1000)] == [1000, 1000, 500]
    assert r.content == pattern_bytes(2500)


# -- framing headers given by the caller, failures that must stay failures -------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"hello", {"Transfer-Encoding": "chunked"}),
        (b"hello", {"Content-Length": "4"}),
        (None, {"Transfer-Encoding": "chunked"}),
        (iter([b"a"]), {"Transfer-Encoding": "gzip"}),
        (iter([b"a"]), {"Content-Length": "1", "Transfer-Encoding": "chunked"}),
    ],
)
def test_framing_headers_that_contradict_the_body_are_refused_before_sending(
    test_server: TestServer, pool: ConnectionPool, body: object, headers: dict[str, str]
) -> None:
    with pytest.raises(tether.InvalidHeader):
        pool.request("POST", "/echo", body=body, headers=headers)  # type: ignore[arg-type]
    assert test_server.connections_accepted == 0


def test_iterable_body_with_declared_length_is_sent_as_is(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("POST", "/echo", body=iter([b"hel", b"lo"]), headers={"Content-Length": "5"})
    assert r.json()["body"] == "hello"
    with pytest.raises(tether.WriteError, match="produced 5 bytes, its Content-Length says 9"):
        pool.request("POST", "/echo", body=iter([b"hel", b"lo"]), headers={"Content-Length": "9"})
    test_server.errors.clear()  # the server saw a body cut short: that is the point
    assert pool.request("GET", "/echo").status == 200


def test_a_stream_that_failed_never_reads_as_complete(
    test_server: TestServer, pool: ConnectionPool
) -> None:
    r = pool.request("GET", "/slow-body/2", stream=True, timeout=0.2)
    with pytest.raises(tether.ReadTimeout):
        r.read()
    with pytest.raises(tether.StreamClosed):
        r.read()
    r.close()
    assert pool.stats().in_use == 0


def test_bad_verify_path_is_a_tls_error_naming_it(test_server: TestServer) -> None:
    with (
        tether.Session(verify="/nonexistent/ca.pem") as s,
        pytest.raises(tether.TLSError, match="nonexistent"),
    ):
        s.get(f"https://127.0.0.1:{test_server.port}/")
    assert test_server.connections_accepted == 0


def test_manager_stats_after_eviction_hold_no_phantom_connections() -> None:
    with TestServer() as a, TestServer() as b, tether.PoolManager(num_pools=1) as manager:
        manager.request("GET", f"{a.url}/echo")
        manager.request("GET", f"{b.url}/echo")  # evicts a's pool
        stats = manager.stats()
        assert stats.open == 1
        assert stats.connections_opened == 2
        assert stats.closes.get("POOL_CLOSED") == 1
