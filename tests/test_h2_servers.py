"""The HTTP/2 server fixtures, proven with clients we did not write (curl, h2load, h2).

Each test checks what a later tether test will rely on: the protocol really is HTTP/2, N
requests on one connection count as ONE connection on the server's side, the configured
limits show up on the wire (GOAWAY after N, refused streams, idle close), /slow is slow.
curl verifies TLS with the fixture's CA (never ``-k``, never the environment's bundles).
curl 7.88 cannot reuse an h2c prior-knowledge connection ("Error in the HTTP2 framing
layer" on the second URL), so h2c reuse is driven with h2load.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import pytest
from servers.h2o import H2o
from servers.hypercorn_server import Hypercorn
from servers.nghttpd import Nghttpd
from servers.nginx import Nginx
from servers.node_h2 import NodeH2
from servers.process import ServerProcess

_CA_VARS = ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
_ENV = {k: v for k, v in os.environ.items() if k not in _CA_VARS}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} not found, but CI is set (apt-get install curl nghttp2-client)")
        pytest.skip(f"{name} not installed")
    return path


def curl(server: ServerProcess | Nginx, *args: str) -> subprocess.CompletedProcess[str]:
    """Run curl against ``server``, trusting only its CA; ``-w`` prints version and connects."""
    ca = ["--cacert", str(server.ca_file)] if server.ca_file else []
    argv = [_tool("curl"), "-s", *ca, "-w", "\\n=> %{http_version} %{num_connects}\\n", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, errors="replace", timeout=30, env=_ENV
    )


def versions_and_connects(out: str) -> list[tuple[str, int]]:
    """(http_version, new connections) per transfer, from ``curl()``'s ``-w`` lines."""
    return [(v, int(n)) for v, n in re.findall(r"^=> (\S+) (\d+)$", out, re.MULTILINE)]


def h2load(url: str, *args: str) -> str:
    """Run h2load (h2 prior knowledge for http://) and return its report."""
    argv = [_tool("h2load"), *args, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=_ENV).stdout


def succeeded(report: str) -> int:
    match = re.search(r"(\d+) succeeded", report)
    assert match, report
    return int(match.group(1))


def idle_end(port: int, timeout: float = 5.0) -> tuple[list[str], float]:
    """One h2c GET, then wait: ``(["GOAWAY", ..., "EOF"], seconds idle until EOF)``."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    seen: list[str] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        stream = conn.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", "/"), (":scheme", "http")]
        conn.send_headers(stream, [*headers, (":authority", "localhost")], end_stream=True)
        sock.sendall(conn.data_to_send())
        idle_since = time.monotonic()
        while data := sock.recv(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamEnded):
                    idle_since = time.monotonic()
                elif isinstance(event, h2.events.ConnectionTerminated):
                    seen.append("GOAWAY")
            sock.sendall(conn.data_to_send())
        seen.append("EOF")
    return seen, time.monotonic() - idle_since


# -- nginx ---------------------------------------------------------------------------------


def test_nginx_h2_five_requests_ride_one_connection(nginx_h2: Nginx) -> None:
    before = len(nginx_h2.access_log())
    result = curl(nginx_h2, "--http2", nginx_h2.url + "/small.txt?[1-5]")
    assert versions_and_connects(result.stdout) == [("2", 1)] + [("2", 0)] * 4
    entries = nginx_h2.wait_for_requests(before + 5)[before:]
    assert {e.protocol for e in entries} == {"HTTP/2"}
    assert [e.connection_requests for e in entries] == [1, 2, 3, 4, 5]
    assert len({e.connection for e in entries}) == 1


def test_nginx_h2_goaway_after_keepalive_requests(
    nginx_h2_factory: Callable[..., Nginx],
) -> None:
    server = nginx_h2_factory(keepalive_requests=3)
    result = curl(server, "-v", "--http2", server.url + "/small.txt?[1-5]")
    assert "GOAWAY" in result.stderr.upper()
    assert sum(n for _, n in versions_and_connects(result.stdout)) == 2
    counts = [e.connection_requests for e in server.wait_for_requests(5)]
    assert counts == [1, 2, 3, 1, 2]
    assert sorted(server.requests_per_connection().values()) == [2, 3]


def test_nginx_h2c_is_prior_knowledge_h2_and_counts_one_connection(nginx_h2c: Nginx) -> None:
    before_log, before_accepts = len(nginx_h2c.access_log()), nginx_h2c.stats().accepts
    assert succeeded(h2load(nginx_h2c.url + "/", "-n", "4", "-c", "1")) == 4
    entries = nginx_h2c.wait_for_requests(before_log + 4)[before_log:]
    assert {e.protocol for e in entries} == {"HTTP/2"}
    assert len({e.connection for e in entries}) == 1
    assert nginx_h2c.stats().accepts - before_accepts == 2  # h2load's + stats()' own


def test_nginx_slow_is_slow_and_extra_streams_are_refused(
    nginx_h2_factory: Callable[..., Nginx],
) -> None:
    server = nginx_h2_factory(tls=False, max_concurrent_streams=2)
    started = time.monotonic()
    report = h2load(server.url + "/slow", "-n", "4", "-c", "1", "-m", "4")
    assert time.monotonic() - started >= 0.2
    assert succeeded(report) == 2  # streams 3 and 4 got RST_STREAM(REFUSED_STREAM)
    assert [e.status for e in server.wait_for_requests(2)] == [200, 200]


def test_nginx_idle_h2_connection_gets_goaway(nginx_h2_factory: Callable[..., Nginx]) -> None:
    server = nginx_h2_factory(tls=False, keepalive_timeout=1)
    seen, idle = idle_end(server.port)
    assert seen == ["GOAWAY", "EOF"]
    assert idle >= 0.9


# -- h2o -----------------------------------------------------------------------------------


def test_h2o_tls_h2_one_connection(h2o_server: H2o) -> None:
    before = len(h2o_server.access_log())
    result = curl(h2o_server, "--http2", h2o_server.url + "/?[1-3]")
    assert versions_and_connects(result.stdout) == [("2", 1), ("2", 0), ("2", 0)]
    entries = h2o_server.wait_for_requests(before + 3)[before:]
    assert {e.protocol for e in entries} == {"HTTP/2"}
    assert len({e.connection for e in entries}) == 1


def test_h2o_cleartext_upgrades_to_h2c(h2o_server: H2o) -> None:
    result = curl(h2o_server, "--http2", h2o_server.h2c_url + "/")
    assert result.stdout.startswith("hello h2o\n")
    assert versions_and_connects(result.stdout) == [("2", 1)]


def test_h2o_idle_timeout_sends_goaway(h2o_factory: Callable[..., H2o]) -> None:
    server = h2o_factory(idle_timeout=1)
    seen, idle = idle_end(server.h2c_port)
    assert seen[0] == "GOAWAY" and seen[-1] == "EOF"
    assert idle >= 0.9


# -- nghttpd -------------------------------------------------------------------------------


def test_nghttpd_tls_is_h2_only(nghttpd_server: Nghttpd) -> None:
    ok = curl(nghttpd_server, "--http2", nghttpd_server.url + "/")
    assert ok.stdout.startswith("hello nghttpd\n")
    assert versions_and_connects(ok.stdout) == [("2", 1)]
    refused = curl(nghttpd_server, "--http1.1", nghttpd_server.url + "/")
    assert refused.returncode != 0  # no http/1.1 fallback


def test_nghttpd_h2c_counts_and_announces_its_stream_limit(
    nghttpd_factory: Callable[..., Nghttpd],
) -> None:
    server = nghttpd_factory(tls=False, max_concurrent_streams=2)
    assert succeeded(h2load(server.url + "/", "-n", "3", "-c", "1")) == 3
    assert len(server.wait_for_requests(3)) == 3
    assert server.connections_accepted() == 1
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):2" in server.frames()


# -- hypercorn -----------------------------------------------------------------------------


def test_hypercorn_tls_h2_routes_and_one_connection(hypercorn_server: Hypercorn) -> None:
    before = len(hypercorn_server.access_log())
    url = hypercorn_server.url
    result = curl(hypercorn_server, "--http2", url + "/", url + "/bytes/1000", "-o", "/dev/null")
    assert versions_and_connects(result.stdout) == [("2", 1), ("2", 0)]
    echo = curl(hypercorn_server, "--http2", "--data-binary", "x" * 777, url + "/echo")
    assert echo.stdout.startswith("777\n=>")
    entries = hypercorn_server.wait_for_requests(before + 3)[before:]
    assert {e.protocol for e in entries} == {"HTTP/2"}
    assert entries[0].connection == entries[1].connection != entries[2].connection


def test_hypercorn_slow_and_h2c(hypercorn_server: Hypercorn) -> None:
    started = time.monotonic()
    result = curl(
        hypercorn_server, "--http2-prior-knowledge", hypercorn_server.h2c_url + "/slow?ms=300"
    )
    assert time.monotonic() - started >= 0.3
    assert result.stdout.startswith("slow\n")
    upgraded = curl(hypercorn_server, "--http2", hypercorn_server.h2c_url + "/")
    assert versions_and_connects(upgraded.stdout) == [("2", 1)]


def test_hypercorn_idle_close_is_silent(hypercorn_factory: Callable[..., Hypercorn]) -> None:
    server = hypercorn_factory(keep_alive_timeout=1)
    seen, idle = idle_end(server.h2c_port)
    assert seen == ["EOF"]  # no GOAWAY: the fixture for a connection dying unannounced
    assert idle >= 0.9


# -- node ----------------------------------------------------------------------------------


def test_node_goaway_after_max_requests(node_h2_factory: Callable[..., NodeH2]) -> None:
    server = node_h2_factory(max_requests=3)
    result = curl(server, "-v", "--http2", server.url + "/[1-5]")
    assert "GOAWAY" in result.stderr.upper()
    assert sum(n for _, n in versions_and_connects(result.stdout)) == 2
    assert [e.connection_requests for e in server.wait_for_requests(5)] == [1, 2, 3, 1, 2]
    assert server.connections_accepted() == 2


def test_node_h2c_and_http11_fallback(node_h2_server: NodeH2) -> None:
    before = node_h2_server.connections_accepted()
    assert succeeded(h2load(node_h2_server.h2c_url + "/", "-n", "3", "-c", "1")) == 3
    assert node_h2_server.connections_accepted() - before == 1
    h1 = curl(node_h2_server, "--http1.1", node_h2_server.url + "/")
    assert h1.stdout.startswith("hello http/1.1\n")


def test_node_idle_goaway(node_h2_factory: Callable[..., NodeH2]) -> None:
    server = node_h2_factory(idle_ms=1000)
    seen, idle = idle_end(server.h2c_port)
    assert seen[0] == "GOAWAY" and seen[-1] == "EOF"
    assert idle >= 0.9
