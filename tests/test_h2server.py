"""H2TestServer's promises, checked with h2's client side, raw frames, curl and nghttp."""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import trustme
from h2client import Frame, H2Client, RawH2Client

from tether.testing import H2TestServer, pattern_bytes

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


@pytest.fixture
def server() -> Iterator[H2TestServer]:
    with H2TestServer() as srv:
        yield srv
    assert srv.errors == []
    assert srv.open_connections == 0


def hello(conn: int, stream: int) -> bytes:
    return f"hello conn={conn} stream={stream}\n".encode()


def test_streams_share_one_connection(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        sids = [c.request("/"), c.request("/anything"), c.request("/")]
        assert c.pump(c.done(*sids))
        assert [bytes(c.responses[s].data) for s in sids] == [hello(1, s) for s in (1, 3, 5)]
        assert c.responses[1].headers["x-conn"] == "1"
    assert server.connections_accepted == 1
    assert server.streams_received == 3
    assert server.requests == [
        (1, 1, "GET", "/", 0),
        (1, 3, "GET", "/anything", 0),
        (1, 5, "GET", "/", 0),
    ]
    assert server.wait_open_connections(0)


def test_echo_counts_an_upload_bigger_than_the_windows(server: H2TestServer) -> None:
    body = pattern_bytes(300_000)  # > 65,535: needs the server's WINDOW_UPDATEs
    with H2Client(server.port) as c:
        sid = c.request("/echo", "POST", body)
        assert c.pump(c.done(sid))
        doc = json.loads(c.responses[sid].data)
    assert doc["method"] == "POST" and doc["path"] == "/echo"
    assert doc["body_length"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert ["content-length", str(len(body))] in doc["headers"]
    assert server.requests == [(1, 1, "POST", "/echo", len(body))]


def test_slow_streams_overlap_on_one_connection(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        start = time.monotonic()
        sids = [c.request("/slow?ms=200") for _ in range(16)]
        assert c.pump(c.done(*sids), timeout=10)
        elapsed = time.monotonic() - start
    assert all(c.responses[s].status == 200 for s in sids)
    assert elapsed < 1.6  # 16 x 200 ms in series would be 3.2 s
    assert server.connections_accepted == 1


def test_bytes_wait_for_window_updates(server: H2TestServer) -> None:
    with H2Client(server.port, window=16384, auto_ack=False) as c:
        sid = c.request("/bytes/100000")
        resp = c.responses[sid]
        assert c.pump(lambda: len(resp.data) >= 16384)
        assert not c.pump(lambda: len(resp.data) > 16384, timeout=0.3)  # stalled: no credit
        for _ in range(20):  # each credit lets at most one more window through
            c.ack()
            if c.pump(c.done(sid), timeout=0.5):
                break
        assert resp.ended and bytes(resp.data) == pattern_bytes(100000)


def test_trailers_carry_the_body_checksum(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        sid = c.request("/trailers?n=5000")
        assert c.pump(c.done(sid))
        resp = c.responses[sid]
    assert bytes(resp.data) == pattern_bytes(5000)
    assert resp.trailers == {"x-checksum": hashlib.sha256(pattern_bytes(5000)).hexdigest()}


def goaway_of(f: Frame) -> tuple[int, int]:
    last, code = struct.unpack(">II", f.payload[:8])
    return last, code


def answers(frames: list[Frame]) -> dict[int, str]:
    return {f.stream_id: f.headers[":status"] for f in frames if f.headers}


# h2's client state machine refuses frames after a GOAWAY, so these read raw frames.
def test_goaway_back_k_streams_answers_only_up_to_last(server: H2TestServer) -> None:
    paths = ["/slow?ms=300", "/slow?ms=300", "/goaway?last=1"]  # streams 1, 3 and 5
    with RawH2Client(server.port, *paths) as raw:
        frames = raw.frames(timeout=5)
        assert raw.eof  # closed once streams 1 and 3 were answered
    assert [goaway_of(f) for f in frames if f.type == GOAWAY] == [(3, 0)]  # 5 - 2*1
    assert answers(frames) == {1: "200", 3: "200"}
    assert server.goaways_sent == 1
    assert [r[1] for r in server.requests] == [1, 3, 5]


def test_goaway_this_stream_with_an_error_code(server: H2TestServer) -> None:
    with RawH2Client(server.port, "/goaway?code=2") as raw:
        frames = raw.frames(timeout=5)
        assert raw.eof
    kinds = [f.type for f in frames if f.type in (GOAWAY, HEADERS, DATA)]
    assert kinds == [GOAWAY, HEADERS, DATA]  # GOAWAY first, then the answer
    assert [goaway_of(f) for f in frames if f.type == GOAWAY] == [(1, 2)]
    assert answers(frames) == {1: "200"}


def test_goaway_after_n_streams_on_every_connection() -> None:
    with H2TestServer(goaway_after=2) as srv:
        for conn in (1, 2):
            with RawH2Client(srv.port, "/slow?ms=100", "/slow?ms=100", "/") as raw:
                frames = raw.frames(timeout=5)
                assert raw.eof
            assert [goaway_of(f) for f in frames if f.type == GOAWAY] == [(3, 0)]
            assert answers(frames) == {1: "200", 3: "200"}
            body = [f.payload for f in frames if f.type == DATA and f.stream_id == 3]
            assert body == [hello(conn, 3)]
        assert srv.goaways_sent == 2
        assert srv.connections_accepted == 2
        assert srv.streams_received == 6
        assert srv.wait_open_connections(0)
    assert srv.errors == []


def test_refuse_and_refuse_once(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        a, b = c.request("/refuse"), c.request("/refuse-once")
        assert c.pump(c.done(a, b))
        assert (c.responses[a].reset, c.responses[b].reset) == (7, 7)  # REFUSED_STREAM
    with H2Client(server.port) as c:  # a retry, on a new connection, is answered
        sid = c.request("/refuse-once")
        assert c.pump(c.done(sid))
        assert c.responses[sid].status == 200 and c.responses[sid].reset is None


def test_rst_mid_body(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        sid = c.request("/rst-mid-body")
        assert c.pump(c.done(sid))
        resp = c.responses[sid]
    assert resp.status == 200 and resp.headers["content-length"] == "1000"
    assert bytes(resp.data) == pattern_bytes(100)
    assert resp.reset == 2 and not resp.ended  # INTERNAL_ERROR


def test_lower_streams_sends_settings(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        sid = c.request("/lower-streams?to=1")
        assert c.pump(c.done(sid))
        assert c.h2.remote_settings.max_concurrent_streams == 1
        assert c.responses[sid].status == 200


def test_close_mid_stream_is_a_fin_without_goaway(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        sid = c.request("/close-mid-stream")
        assert c.pump(lambda: c.eof)
    resp = c.responses[sid]
    assert resp.status == 200 and bytes(resp.data) == pattern_bytes(100) and not resp.ended
    assert c.goaways == []


def test_upload_waits_for_credit_with_a_zero_window() -> None:
    with H2TestServer(initial_window_size=0, upload_delay=0.3) as srv:
        with H2Client(srv.port) as c:
            assert c.pump(lambda: c.h2.remote_settings.initial_window_size == 0)
            start = time.monotonic()
            sid = c.request("/echo", "POST", b"u" * 1000)
            assert c.h2.local_flow_control_window(sid) == 0
            assert c.pump(c.done(sid))
            waited = time.monotonic() - start
        assert json.loads(c.responses[sid].data)["body_length"] == 1000
        assert waited >= 0.3  # nothing could be sent before the server granted credit
        assert srv.wait_open_connections(0)
    assert srv.errors == []


def test_bad_arguments_get_400_naming_them(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        a, b = c.request("/slow?ms=soon"), c.request("/bytes/-1")
        assert c.pump(c.done(a, b))
    assert c.responses[a].status == 400 and b"ms='soon'" in c.responses[a].data
    assert c.responses[b].status == 400


@pytest.mark.parametrize(
    "path",
    [
        "/bad/no-status",
        "/bad/two-status",
        "/bad/conn-header",
        "/bad/upper-name",
        "/bad/big-headers?kb=128",
        "/bad/content-length",
        "/bad/window-violation",
        "/bad/invalid-frame",
        "/bad/continuation-flood",
    ],
)
def test_h2_client_rejects_each_malformed_response(server: H2TestServer, path: str) -> None:
    with H2Client(server.port, auto_ack=False) as c:  # no credit back: the window is a limit
        c.request(path)
        c.pump(lambda: False, timeout=5)
        assert c.error is not None, f"{path}: h2 accepted it"
    assert server.wait_open_connections(0, timeout=5)


def test_big_headers_below_the_limit_are_fine(server: H2TestServer) -> None:
    with H2Client(server.port) as c:
        sid = c.request("/bad/big-headers?kb=32")
        assert c.pump(c.done(sid))
        assert c.error is None and c.responses[sid].status == 200
        assert len(c.responses[sid].headers) > 25


def test_data_after_end_stream_frames(server: H2TestServer) -> None:
    with RawH2Client(server.port, "/bad/data-after-end") as raw:
        frames = [f for f in raw.frames(timeout=1) if f.stream_id == 1]
    assert [(f.type, f.flags & END_STREAM) for f in frames] == [(HEADERS, 1), (DATA, 1)]
    assert frames[1].payload == b"late"


def test_invalid_frame_is_a_short_ping(server: H2TestServer) -> None:
    with RawH2Client(server.port, "/bad/invalid-frame") as raw:
        pings = [f for f in raw.frames(timeout=1) if f.type == PING]
    assert [len(p.payload) for p in pings] == [7]


@pytest.mark.parametrize(
    "path, ftype", [("/bad/settings-flood", SETTINGS), ("/bad/ping-flood", PING)]
)
def test_floods_send_50000_frames_then_answer(server: H2TestServer, path: str, ftype: int) -> None:
    with RawH2Client(server.port, path) as raw:
        count = 0
        for f in raw.iter_frames(timeout=20):
            count += f.type == ftype and not f.flags & ACK
            if f.type == DATA and f.flags & END_STREAM:
                break
    assert count == 50_000 + (ftype == SETTINGS)  # the server's own SETTINGS first
    assert f.payload == hello(1, 1)


def test_continuation_flood_stops_when_the_client_leaves(server: H2TestServer) -> None:
    with RawH2Client(server.port, "/bad/continuation-flood") as raw:
        seen = 0
        for f in raw.iter_frames(timeout=10):
            if f.type == CONTINUATION:
                assert not f.flags & END_HEADERS
                seen += len(f.payload)
            if seen > 1 << 20:
                break
    assert seen > 1 << 20
    assert server.wait_open_connections(0, timeout=5)


def test_window_violation_sends_one_byte_too_many(server: H2TestServer) -> None:
    with RawH2Client(server.port, "/bad/window-violation") as raw:
        frames = [f for f in raw.frames(timeout=1) if f.type == DATA]
    assert sum(len(f.payload) for f in frames) == 65536  # default window 65,535 + 1


def test_stop_ends_a_stuck_stream() -> None:
    srv = H2TestServer().start()
    with H2Client(srv.port) as c:
        c.request("/slow?ms=60000")
        assert c.pump(lambda: srv.streams_received == 1)
        srv.stop()
        assert c.pump(lambda: c.eof)
    assert srv.open_connections == 0 and srv.errors == []


def test_tls_alpn_h2(ca: trustme.CA) -> None:
    with H2TestServer(tls=H2TestServer.tls_context(ca)) as srv:
        assert srv.url == f"https://127.0.0.1:{srv.port}"
        ctx = ssl.create_default_context(cafile=None)
        ca.configure_trust(ctx)
        ctx.set_alpn_protocols(["h2"])
        with H2Client(srv.port, tls=ctx) as c:
            assert isinstance(c.sock, ssl.SSLSocket)
            assert c.sock.selected_alpn_protocol() == "h2"
            sid = c.request("/bytes/70000")
            assert c.pump(c.done(sid))
            assert bytes(c.responses[sid].data) == pattern_bytes(70000)
        ctx11 = ssl.create_default_context()
        ca.configure_trust(ctx11)
        ctx11.set_alpn_protocols(["http/1.1"])
        with H2Client(srv.port, tls=ctx11) as c:  # no h2: the server just closes
            assert c.pump(lambda: c.eof)
        assert srv.wait_open_connections(0)
    assert srv.errors == []


def test_bad_constructor_options_are_named() -> None:
    with pytest.raises(ValueError, match="initial_window_size"):
        H2TestServer(initial_window_size=-1)
    with pytest.raises(ValueError, match="goaway_after"):
        H2TestServer(goaway_after=0)


def test_tether_testing_imports_without_h2() -> None:
    code = (
        "import sys; sys.modules['h2'] = None\n"
        "import tether.testing as t\n"
        "assert t.TestServer\n"
        "try:\n    t.H2TestServer\nexcept ImportError:\n    print('lazy')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "lazy", out.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_prior_knowledge(server: H2TestServer) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", f"{server.url}/bytes/200000"],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == pattern_bytes(200000)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_over_tls(ca: trustme.CA) -> None:
    tls = H2TestServer.tls_context(ca)
    with H2TestServer(tls=tls) as srv, ca.cert_pem.tempfile() as cafile:
        out = subprocess.run(
            ["curl", "-sS", "--http2", "--cacert", cafile, "-w", "%{http_version}", srv.url],
            capture_output=True,
            timeout=30,
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout == hello(1, 1) + b"2"
    assert srv.errors == []


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp not installed")
def test_nghttp_multiplexes_on_one_connection(server: H2TestServer) -> None:
    urls = [f"{server.url}/slow?ms=100&i={i}" for i in range(5)]
    out = subprocess.run(["nghttp", "-n", "-s", *urls], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert server.connections_accepted == 1
    assert server.streams_received == 5


def test_too_many_streams_get_goaway_protocol_error() -> None:
    with H2TestServer(max_concurrent_streams=1) as srv:
        with RawH2Client(srv.port, "/slow?ms=100", "/slow?ms=100") as raw:
            frames = raw.frames(timeout=5)
        settings = next(f for f in frames if f.type == SETTINGS)
        assert b"\x00\x03\x00\x00\x00\x01" in settings.payload  # MAX_CONCURRENT_STREAMS=1
        assert [goaway_of(f)[1] for f in frames if f.type == GOAWAY] == [1]  # PROTOCOL_ERROR
        assert srv.wait_open_connections(0)
    assert srv.errors == []


def test_ipv6_loopback() -> None:
    with H2TestServer(host="::1") as srv:
        assert srv.url == f"http://[::1]:{srv.port}"
        with RawH2Client(srv.port, "/", host="::1") as raw:
            frames = raw.frames(timeout=1)
        assert answers(frames) == {1: "200"}
    assert srv.errors == []
