"""Tests of the test infrastructure itself, using only socket and http.client (not tether)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
from helpers import close_wait_count, fd_count
from servers.nginx import SMALL_BODY, Nginx

from tether.testing import DelayProxy, Exchange, TestServer, pattern_bytes


def get(sock: socket.socket, path: str = "/") -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one Content-Length framed response from a raw socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, f"EOF before a full head: {buf!r}"
        buf += data
    head, _, body = buf.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        data = sock.recv(65536)
        assert data, "EOF inside the body"
        body += data
    return int(status_line.split()[1]), headers, body


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def test_counts_connections_and_keeps_alive(test_server: TestServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", test_server.port, timeout=5)
    try:
        for index in (1, 2):
            conn.request("GET", "/echo?a=1&a=2&b=x%20y")
            doc = json.loads(conn.getresponse().read())
            assert (doc["connection_id"], doc["request_index"]) == (1, index)
            assert doc["args"] == {"a": ["1", "2"], "b": ["x y"]}
        assert test_server.connections_accepted == 1
        assert test_server.requests_served == 2
        assert test_server.connection_request_counts == [2]
    finally:
        conn.close()
    with connect(test_server.port) as sock:
        get(sock)
        assert read_response(sock)[0] == 200
    assert test_server.connections_accepted == 2
    assert test_server.wait_open_connections(0)


def test_echo_reports_body_and_headers(test_server: TestServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", test_server.port, timeout=5)
    try:
        conn.request("POST", "/anything", body=b"name=tether", headers={"X-Test": "yes"})
        doc = json.loads(conn.getresponse().read())
        assert (doc["method"], doc["path"], doc["body"]) == ("POST", "/anything", "name=tether")
        assert ["X-Test", "yes"] in doc["headers"]
        conn.request("PUT", "/echo", body=iter([b"abc", b"def"]), encode_chunked=True)
        doc = json.loads(conn.getresponse().read())
        assert (doc["body"], doc["body_length"], doc["request_index"]) == ("abcdef", 6, 2)
    finally:
        conn.close()
    assert test_server.exchanges[-1].body == b"abcdef"


def test_builtin_routes(test_server: TestServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", test_server.port, timeout=5)
    try:
        for path, status, body in [
            ("/status/404", 404, b"404 Not Found\n"),
            ("/status/204", 204, b""),
            ("/status/100-then-201", 201, b"201 Created\n"),
            ("/bytes/1000", 200, pattern_bytes(1000)),
            ("/chunked/1000?chunk=300", 200, pattern_bytes(1000)),
        ]:
            conn.request("GET", path)
            response = conn.getresponse()
            assert (response.status, response.read()) == (status, body)
        conn.request("HEAD", "/head-lies")
        response = conn.getresponse()
        assert (response.getheader("Content-Length"), response.read()) == ("1000", b"")
    finally:
        conn.close()
    assert test_server.connections_accepted == 1


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/truncate", http.client.IncompleteRead),
        ("/reset-mid-body", ConnectionResetError),
        ("/drop-after-request", http.client.RemoteDisconnected),
        ("/garbage", http.client.BadStatusLine),
    ],
)
def test_misbehaving_routes(test_server: TestServer, path: str, error: type[Exception]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", test_server.port, timeout=5)
    try:
        with pytest.raises(error):
            conn.request("GET", path)
            conn.getresponse().read()
    finally:
        conn.close()


def test_http10_body_ends_at_close(test_server: TestServer) -> None:
    with connect(test_server.port) as sock:
        get(sock, "/http10")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.0 200 OK\r\n") and data.endswith(
        b"\r\n\r\nbody ends at close\n"
    )


def test_custom_route_and_raw_bytes(test_server: TestServer) -> None:
    def handler(ex: Exchange) -> None:
        ex.send_raw(
            f"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Index: {ex.index}\r\n\r\nhi".encode()
        )

    test_server.route("/mine", handler)
    with connect(test_server.port) as sock:
        for index in ("1", "2"):
            get(sock, "/mine")
            assert read_response(sock) == (200, {"content-length": "2", "x-index": index}, b"hi")


def test_idle_close_after_is_precise() -> None:
    with TestServer(idle_close_after=0.5) as server, connect(server.port) as sock:
        get(sock)
        read_response(sock)
        start = time.monotonic()
        assert sock.recv(1) == b""
        assert 0.5 - 0.3 <= time.monotonic() - start <= 0.5 + 0.3


def test_keep_alive_max_is_honoured() -> None:
    with TestServer(keep_alive_header="timeout=5, max=3") as server, connect(server.port) as sock:
        for _ in range(2):
            get(sock)
            assert read_response(sock)[1]["keep-alive"] == "timeout=5, max=3"
        get(sock)
        assert read_response(sock)[1]["connection"] == "close"
        assert sock.recv(1) == b""
        assert server.connections_accepted == 1


def test_close_idle_connections_and_close_wait(test_server: TestServer) -> None:
    with connect(test_server.port) as used, connect(test_server.port) as fresh:
        get(used)
        read_response(used)
        # Both count: one between requests, one that never sent any (once it is accepted:
        # on a busy machine the server's accept can come after our connect returns).
        assert test_server.wait_open_connections(2)
        assert test_server.close_idle_connections() == 2
        assert used.recv(1) == b"" and fresh.recv(1) == b""
        assert close_wait_count(test_server.port) == 2  # FIN received, not yet closed by us
    assert close_wait_count(test_server.port) == 0
    assert test_server.wait_open_connections(0)


def test_delay_proxy_delays_data_and_fin(test_server: TestServer) -> None:
    with DelayProxy(("127.0.0.1", test_server.port), delay=0.1) as proxy:
        with connect(proxy.port) as sock:
            start = time.monotonic()
            get(sock, "/close")
            assert read_response(sock)[0] == 200
            assert time.monotonic() - start >= 0.2  # one delay each way
            assert sock.recv(1) == b""
        assert proxy.wait_open_connections(0)
        assert (proxy.connections_accepted, test_server.connections_accepted) == (1, 1)
        assert proxy.errors == []


def test_stop_is_prompt_and_leaks_nothing() -> None:
    fds, threads = fd_count(), threading.active_count()
    server = TestServer(idle_close_after=30).start()
    proxy = DelayProxy(("127.0.0.1", server.port), delay=0.05).start()
    with connect(server.port) as slow, connect(proxy.port) as idle:
        get(slow, "/slow/30")
        get(idle)
        read_response(idle)
        start = time.monotonic()
        proxy.stop()
        server.stop()
        assert time.monotonic() - start < 1.0
    assert (fd_count(), threading.active_count()) == (fds, threads)
    assert server.errors == [] and proxy.errors == []


def test_nginx_serves_small_txt(nginx: Nginx) -> None:
    before = nginx.stats()
    conn = http.client.HTTPConnection(nginx.host, nginx.port, timeout=5)
    try:
        for path in ("/", "/small.txt"):
            conn.request("GET", path)
            assert conn.getresponse().read() == SMALL_BODY
    finally:
        conn.close()
    # One connection for our two requests, one for stats() itself.
    assert nginx.stats().accepts - before.accepts == 2


def test_nginx_closes_after_keepalive_requests(nginx_short_keepalive: Nginx) -> None:
    with connect(nginx_short_keepalive.port) as sock:
        for expected in ("keep-alive", "keep-alive", "close"):
            get(sock)
            status, headers, body = read_response(sock)
            assert (status, headers["connection"], body) == (200, expected, SMALL_BODY)
        assert sock.recv(1) == b""


def test_nginx_tls(nginx_tls: Nginx) -> None:
    conn = http.client.HTTPSConnection(
        "localhost", nginx_tls.port, timeout=5, context=nginx_tls.ssl_context()
    )
    try:
        conn.request("GET", "/search?q=tether")
        assert conn.getresponse().read() == b"q=tether\n"
    finally:
        conn.close()
