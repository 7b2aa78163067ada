"""The ``tether`` command in a subprocess (``python -m tether``, output piped) against local
servers: what it prints, checked against what the servers saw."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers.nginx import Nginx

import tether
from tether.testing import H2TestServer, TestServer

SRC = str(Path(tether.__file__).resolve().parents[1])
ANSI = re.compile(r"\x1b\[")


def run_tether(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the command with this tree's tether, stdout and stderr piped (not a terminal)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "tether", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def run_json(*args: str, timeout: float = 60.0) -> Any:
    done = run_tether(*args, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- tether get -------------------------------------------------------------------------------


def test_get_v_shows_the_second_request_reusing_the_first_connection(
    test_server: TestServer,
) -> None:
    url = test_server.url + "/hello"
    done = run_tether("get", "-v", url, url)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    ids = re.findall(rf"\* connected to 127\.0\.0\.1:{test_server.port} \(#(\d+)\)", out)
    assert len(ids) == 1, out
    n = ids[0]
    assert re.search(rf"\* re-using connection #{n} \(idle \d+\.\d\d s, request 2\)", out), out
    assert out.count(f"* connection #{n} left intact") == 2
    assert out.index("connected to") < out.index("> GET /hello") < out.index("re-using")
    assert "< HTTP/1.1 200 OK" in out
    assert "1 connection(s) opened, reuse 50%" in out
    assert test_server.connections_accepted == 1


def test_get_v_against_a_close_per_request_server_opens_a_connection_each_time(
    nginx_factory: Callable[..., Nginx],
) -> None:
    server = nginx_factory(keepalive_timeout=0)  # nginx: Connection: close on every response
    url = server.url + "/echo"
    done = run_tether("get", "-v", "-n", "3", url)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    connected = re.findall(r"\* connected to 127\.0\.0\.1:\d+ \(#(\d+)\)", out)
    assert len(set(connected)) == 3, out
    assert "re-using" not in out and "left intact" not in out
    for n in connected:
        assert f"* closing connection #{n}: response not persistent" in out
    assert len({e.connection for e in server.access_log()}) == 3


def test_get_never_prints_credentials_or_cookies(test_server: TestServer) -> None:
    done = run_tether(
        "get",
        "-v",
        "-o",
        os.devnull,
        "-H",
        "Authorization: Bearer s3cret-token",
        "-H",
        "Cookie: session=s3cret-cookie",
        test_server.url + "/",
    )
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    assert "> Authorization: [redacted]" in done.stdout


def test_get_json_is_parsable_and_says_what_each_request_rode(test_server: TestServer) -> None:
    doc = run_json("--json", "get", "-n", "3", test_server.url + "/")
    requests = doc["requests"]
    assert [r["request_number"] for r in requests] == [1, 2, 3]
    assert [r["reused"] for r in requests] == [False, True, True]
    assert requests[0]["events"][:3] == ["ConnectStart", "DNSDone", "ConnectDone"]
    assert requests[1]["events"][0] == "ConnectionReused"
    assert doc["summary"]["connections_opened"] == test_server.connections_accepted == 1


def test_get_sends_method_headers_and_body(test_server: TestServer) -> None:
    done = run_tether(
        "get", "-X", "PUT", "-H", "X-Probe: yes", "--json", '{"a": 1}', test_server.url + "/p"
    )
    assert done.returncode == 0, done.stderr
    echoed = json.loads(done.stdout)
    assert echoed["method"] == "PUT"
    assert ["X-Probe", "yes"] in echoed["headers"]
    assert json.loads(echoed["body"]) == {"a": 1}


def test_get_writes_the_body_to_a_file(nginx: Nginx, tmp_path: Path) -> None:
    target = tmp_path / "small.txt"
    done = run_tether("get", "-o", str(target), nginx.url + "/small.txt")
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == (nginx.workdir / "www" / "small.txt").read_bytes()


def test_get_bad_header_is_a_clear_error(test_server: TestServer) -> None:
    done = run_tether("get", "-H", "no colon here", test_server.url)
    assert done.returncode != 0
    assert "-H wants 'Name: value'" in done.stderr


def test_get_unreachable_server_exits_nonzero_with_the_error() -> None:
    with TestServer() as server:
        url = server.url
    done = run_tether("get", url + "/")
    assert done.returncode == 1
    assert "ConnectError" in done.stdout


# -- tether probe -----------------------------------------------------------------------------


def test_probe_finds_a_known_idle_timeout(test_server: TestServer) -> None:
    timeout = 1.2
    with TestServer(idle_close_after=timeout) as server:
        doc = run_json("probe", "--json", "--max-wait", "8", "--max-requests", "20", server.url)
    idle = doc["idle"]
    # Observed by the idle watcher: within 0.15 s of the server's own timer.
    assert idle["timeout"] == pytest.approx(timeout, abs=0.15), idle
    assert doc["keep_alive"] is True
    assert any("idle_timeout below" in line for line in doc["recommendations"])


def test_probe_finds_nginx_keepalive_requests_and_idle_timeout(
    nginx_factory: Callable[..., Nginx],
) -> None:
    server = nginx_factory(keepalive_requests=3, keepalive_timeout=2)
    done = run_tether(
        "probe", server.url + "/echo", "--max-wait", "8", "--max-requests", "10", timeout=90
    )
    assert done.returncode == 0, done.stderr
    assert not ANSI.search(done.stdout)
    assert re.search(r"requests/conn\s+3 \(announced: not_persistent\)", done.stdout)
    found = re.search(r"idle timeout\s+(\d+\.\d+) s", done.stdout)
    assert found, done.stdout
    assert float(found.group(1)) == pytest.approx(2.0, abs=0.3)  # nginx's timer granularity
    assert "closes after 3 requests and says so" in done.stdout


def test_probe_of_a_close_per_request_server_says_reuse_is_impossible(
    nginx_factory: Callable[..., Nginx],
) -> None:
    server = nginx_factory(keepalive_timeout=0)
    doc = run_json("probe", "--json", server.url + "/echo")
    assert doc["keep_alive"] is False
    assert "no client can reuse" in doc["recommendations"][0]


# -- tether bench -----------------------------------------------------------------------------


def test_bench_connection_count_matches_nginx(nginx_factory: Callable[..., Nginx]) -> None:
    server = nginx_factory(keepalive_requests=10)
    doc = run_json("bench", server.url + "/echo", "-n", "60", "-c", "3", "--json")
    log = server.access_log()
    assert doc["requests"] == doc["ok"] == len(log) == 60
    assert doc["connections_opened"] == len({e.connection for e in log})
    assert doc["connections_opened"] >= 6  # nginx ends each connection after 10 requests
    assert doc["errors"] == {}
    lat = doc["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert doc["reuse_ratio"] == pytest.approx(1 - doc["connections_opened"] / 60, abs=1e-3)


def test_bench_plain_output_has_no_colour_when_piped(test_server: TestServer) -> None:
    done = run_tether("bench", test_server.url + "/", "-n", "20", "-c", "2")
    assert done.returncode == 0, done.stderr
    assert not ANSI.search(done.stdout + done.stderr)
    assert re.search(r"20 requests in \d+\.\d\d s over 2 thread\(s\)", done.stdout)
    assert "connections opened 2," in done.stdout or "connections opened 1," in done.stdout


def test_bench_duration_bounds_the_run(test_server: TestServer) -> None:
    doc = run_json(
        "bench", test_server.url + "/", "-n", "1000000", "-c", "2", "--duration", "1", "--json"
    )
    assert 0 < doc["requests"] < 1000000
    assert doc["seconds"] < 5


# -- without the cli extra ----------------------------------------------------------------------

NO_RICH = "import sys; sys.modules['rich'] = None; from tether.cli import main; sys.exit(main())"


def test_demo_and_get_work_without_rich(test_server: TestServer) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    for args in (["demo"], ["get", "-v", test_server.url + "/"]):
        done = subprocess.run(
            [sys.executable, "-c", NO_RICH, *args],
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "connected to 127.0.0.1" in done.stdout


# -- HTTP/2 -------------------------------------------------------------------------------------


def test_get_http2_shows_streams_on_one_connection() -> None:
    with H2TestServer() as server:
        done = run_tether("get", "-v", "--http2", "-n", "2", server.url + "/")
        accepted = server.connections_accepted
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "* stream 1 opened on connection #" in out and "* stream 3 opened" in out
    assert re.search(r"\* re-using connection #\d+ \(idle \d+\.\d\d s, request 2\)", out)
    assert "< HTTP/2 200" in out and accepted == 1


def test_bench_http2_carries_every_thread_on_one_connection() -> None:
    with H2TestServer() as server:
        doc = run_json("bench", server.url + "/", "-n", "80", "-c", "4", "--http2", "--json")
        accepted = server.connections_accepted
    assert doc["ok"] == 80 and doc["errors"] == {}
    assert doc["connections_opened"] == accepted == 1


def test_probe_reports_alpn_h2_and_max_streams(nginx_h2_factory: Callable[..., Nginx]) -> None:
    server = nginx_h2_factory(tls=True, max_concurrent_streams=7)
    doc = run_json(
        "probe",
        "--json",
        "--cacert",
        str(server.ca_file),
        "--max-wait",
        "3",
        "--max-requests",
        "5",
        server.url + "/echo",
    )
    p = doc["protocols"]
    assert (p["h2"], p["alpn"], p["max_streams"]) == (True, "h2", 7)
    assert doc["tls_version"] in ("TLSv1.2", "TLSv1.3")
    # nginx keeps idle connections 75 s: the 3 s budget allows gaps of 1 and 2 s, no more.
    assert doc["idle"]["timeout"] is None
    assert [g["seconds"] for g in doc["idle"]["gaps"]] == [1.0, 2.0]
    assert doc["requests_per_connection"] == {"limit": None, "tried": 5, "retries": 0}
    assert any("http2=True" in line for line in doc["recommendations"])
