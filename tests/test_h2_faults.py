"""HTTP/2 faults from H2TestServer: GOAWAY mid-flight, refused and reset streams, flow control,
trailers, early close and malformed input. The server counts connections and records every
request it received, so "retried", "processed once" and "same connection" are its facts.
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from h2util import run_threads
from servers.process import free_port

import tether
from tether.testing import H2TestServer, close_wait_count, pattern_bytes

H2C = "prior-knowledge"
SHORT = tether.Timeout.of(5.0)  # every wait here is bounded well below pytest's 120 s


@pytest.fixture
def server() -> Iterator[H2TestServer]:
    with H2TestServer() as srv:
        yield srv
    assert srv.errors == []


def _session(**kwargs: object) -> tether.Session:
    return tether.Session(http2=H2C, timeout=SHORT, **kwargs)  # type: ignore[arg-type]


# -- GOAWAY, REFUSED_STREAM, stream limits ---------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_goaway_below_in_flight_streams_retries_the_rest(method: str) -> None:
    # Either bug shows in ~1 run of 2 here: 8 rounds make a lucky pass negligible.
    per_conn, n = 3, 8
    for _round in range(8):
        with H2TestServer(goaway_after=per_conn) as srv, _session() as session:

            def work(t: int) -> dict[str, object]:
                r = session.request(method, srv.url + f"/echo?id={t}", data=b"q" * 10)
                return dict(r.json())

            results, errors = run_threads(n, work)
            stats = session.stats()
        assert errors == []
        paths = sorted(str(r["path"]) for r in results)
        assert paths == sorted(f"/echo?id={t}" for t in range(n))
        # Processed = at or below each connection's GOAWAY last stream (the 3rd: stream 5).
        processed = Counter(p for _c, sid, _m, p, _l in srv.requests if sid <= 2 * per_conn - 1)
        assert processed == Counter(f"/echo?id={t}" for t in range(n))  # each exactly once
        assert stats.unprocessed_retries >= 1
        assert stats.goaways >= 1


def test_goaway_sequential_requests_move_to_new_connection() -> None:
    per_conn = 3
    with H2TestServer(goaway_after=per_conn) as srv, _session() as session:
        for i in range(10):
            assert session.post(srv.url + f"/echo?id={i}", data=b"once").status_code == 200
        stats = session.stats()
    assert srv.connections_accepted == 4  # ceil(10 / 3)
    assert Counter(rec[3] for rec in srv.requests) == Counter(f"/echo?id={i}" for i in range(10))
    assert stats.goaways == 3


def test_refused_once_is_retried(server: H2TestServer) -> None:
    with _session() as session:
        session.get(server.url + "/")
        r = session.post(server.url + "/refuse-once", data=b"not processed")
    assert r.status_code == 200
    assert r.connection_info.retries == 1
    assert [rec[3] for rec in server.requests].count("/refuse-once") == 2
    assert server.connections_accepted == 1  # the refusing connection kept serving


def test_always_refused_gives_typed_error_then_next_works(server: H2TestServer) -> None:
    with _session() as session:
        with pytest.raises(tether.StreamReset) as info:
            session.get(server.url + "/refuse")
        assert info.value.error_code == 7  # REFUSED_STREAM
        assert not info.value.may_have_reached_server
        assert session.get(server.url + "/").status_code == 200
    attempts = [rec[3] for rec in server.requests].count("/refuse")
    assert 1 < attempts <= 1 + tether.lifecycle.rules.MAX_UNPROCESSED_RETRIES  # bounded


def test_lowered_stream_limit_is_honoured() -> None:
    # After /lower-streams?to=1 the h2 server enforces one stream: exceeding it is answered
    # with GOAWAY(PROTOCOL_ERROR), which would show up as errors or a second connection.
    with H2TestServer() as srv, _session(pool_maxsize=1, pool_block=True) as session:
        assert session.get(srv.url + "/lower-streams?to=1").status_code == 200
        results, errors = run_threads(8, lambda t: session.get(srv.url + "/slow?ms=20"))
        stats = session.stats()
    assert errors == [] and len(results) == 8
    assert srv.connections_accepted == 1
    assert {r.connection_info.streams_in_flight for r in results} == {1}
    assert stats.connections_opened == 1


# -- flow control and bodies ------------------------------------------------------------------


def test_upload_waits_for_credit_on_a_zero_window() -> None:
    body = pattern_bytes(200_000)
    with H2TestServer(initial_window_size=0, upload_delay=0.3) as srv, _session() as session:
        started = time.monotonic()
        doc = session.post(srv.url + "/echo", data=body).json()
        elapsed = time.monotonic() - started
    assert doc["body_length"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert elapsed >= 0.3  # nothing could be sent before the server granted credit


def test_streamed_upload_bigger_than_windows(server: H2TestServer) -> None:
    pieces = [pattern_bytes(50_000)] * 10
    with _session() as session:
        doc = session.post(server.url + "/echo", data=iter(pieces)).json()
    assert doc["body_length"] == 500_000
    assert doc["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_big_download_then_reuse(server: H2TestServer) -> None:
    with _session() as session:
        for _ in range(3):  # > one connection window each: credit must be returned
            assert session.get(server.url + "/bytes/300000").content == pattern_bytes(300_000)
    assert server.connections_accepted == 1


def test_rst_mid_body_is_stream_reset_and_connection_lives(server: H2TestServer) -> None:
    with _session() as session:
        with pytest.raises(tether.StreamReset) as info:
            session.get(server.url + "/rst-mid-body")
        assert info.value.error_code == 2  # INTERNAL_ERROR
        r = session.get(server.url + "/")
    assert r.status_code == 200 and r.headers["x-conn"] == "1"
    assert server.connections_accepted == 1


@pytest.mark.parametrize("stream", [False, True])
def test_trailers(server: H2TestServer, stream: bool) -> None:
    with _session() as session:
        r = session.get(server.url + "/trailers?n=100000", stream=stream)
        body = b"".join(r.iter_bytes()) if stream else r.content
        assert body == pattern_bytes(100_000)
        assert r.trailers["x-checksum"] == hashlib.sha256(body).hexdigest()


def test_streamed_response_closed_early_keeps_serving(server: H2TestServer) -> None:
    with _session() as session:
        big = session.get(server.url + "/bytes/5000000", stream=True)
        first = next(big.iter_bytes())
        assert first and pattern_bytes(5_000_000).startswith(first)
        big.close()  # RST_STREAM(CANCEL): the window must not stay consumed
        for _ in range(3):
            assert session.get(server.url + "/bytes/100000").content == pattern_bytes(100_000)
        assert session.stats().closes == {}  # no connection was given up for it
    # (that no second connection is dialed is test_..._then_threads_share_connection's job)


def test_streamed_response_closed_early_then_threads_share_connection() -> None:
    for _round in range(5):
        with H2TestServer() as srv, _session() as session:
            big = session.get(srv.url + "/bytes/5000000", stream=True)
            next(big.iter_bytes())
            big.close()
            results, errors = run_threads(4, lambda t: session.get(srv.url + "/bytes/100000"))
            assert errors == [] and all(r.content == pattern_bytes(100_000) for r in results)
        assert srv.connections_accepted == 1


def test_close_mid_stream_is_read_error_then_new_connection(server: H2TestServer) -> None:
    with _session() as session:
        with pytest.raises(tether.ReadError):
            session.get(server.url + "/close-mid-stream")
        assert session.get(server.url + "/").status_code == 200
    assert server.connections_accepted == 2


# -- malformed input (/bad/*) ------------------------------------------------------------------

# Malformed responses are stream errors: tether resets that stream, the connection lives.
STREAM_FAULTS = ["no-status", "two-status", "conn-header", "upper-name", "content-length"]
# Broken framing or floods are connection errors: the connection is replaced.
CONNECTION_FAULTS = ["continuation-flood", "settings-flood", "ping-flood", "invalid-frame"]


@pytest.mark.parametrize("fault", STREAM_FAULTS)
def test_malformed_response_is_stream_error(server: H2TestServer, fault: str) -> None:
    with _session() as session:
        session.get(server.url + "/")
        with pytest.raises(tether.StreamReset) as info:
            session.get(server.url + "/bad/" + fault)
        assert info.value.error_code == 1  # PROTOCOL_ERROR
        assert session.get(server.url + "/").status_code == 200
    assert server.connections_accepted == 1


@pytest.mark.parametrize("fault", CONNECTION_FAULTS)
def test_connection_error_is_typed_and_pool_recovers(server: H2TestServer, fault: str) -> None:
    with _session() as session:
        session.get(server.url + "/")
        started = time.monotonic()
        with pytest.raises(tether.RemoteProtocolError):
            session.get(server.url + "/bad/" + fault)
        assert time.monotonic() - started < SHORT.read  # an error, never a hang
        assert session.get(server.url + "/").status_code == 200
    assert [rec[3] for rec in server.requests].count("/bad/" + fault) == 1  # not resent


@pytest.mark.parametrize("fault", CONNECTION_FAULTS)
def test_connection_error_fails_in_flight_and_replaces_connection(
    server: H2TestServer, fault: str
) -> None:
    # Independent of the error's type: streams in flight fail promptly, none hang, and the
    # next request gets a healthy connection.
    with _session() as session:
        session.get(server.url + "/")

        def work(t: int) -> int:
            path = "/bad/" + fault if t == 0 else "/slow?ms=300"
            return session.get(server.url + path).status_code

        started = time.monotonic()
        _results, errors = run_threads(4, work, timeout=30)
        assert time.monotonic() - started < SHORT.read + 1
        assert all(isinstance(e, tether.TransportError) for e in errors)
        assert any("/bad/" in str(e) for e in errors)
        assert session.get(server.url + "/").status_code == 200
        assert session.stats().closes.get("PROTOCOL_ERROR", 0) >= 1
    assert server.connections_accepted >= 2


def test_data_after_end_stream_replaces_connection(server: H2TestServer) -> None:
    with _session() as session:
        r = session.get(server.url + "/bad/data-after-end")
        assert r.status_code == 200  # the response itself was complete
        assert session.get(server.url + "/").status_code == 200
        assert session.stats().closes.get("PROTOCOL_ERROR", 0) == 1
    assert server.connections_accepted == 2


# -- leaks -------------------------------------------------------------------------------------


def test_faults_leave_no_sockets_behind(server: H2TestServer) -> None:
    from helpers import fd_count

    with _session() as warm:  # the process-wide watcher's epoll fd exists from here on
        warm.get(server.url + "/")
    gc.collect()  # earlier tests' garbage must not close its sockets during this one
    baseline = fd_count()
    with _session() as session:
        for path in ["/rst-mid-body", "/close-mid-stream", "/bad/invalid-frame", "/refuse"]:
            with pytest.raises(tether.TransportError):
                session.get(server.url + path)
        big = session.get(server.url + "/bytes/1000000", stream=True)
        next(big.iter_bytes())
        big.close()
    assert server.wait_open_connections(0)  # the in-process server's own sockets are gone
    gc.collect()
    # No growth: other fixtures' servers in this process (nginx's in-process upstream) may
    # close sockets of their own meanwhile, so the count can only be bounded from above.
    assert fd_count() <= baseline
    assert close_wait_count(server.port) == 0


def test_nothing_listening_is_connect_error() -> None:
    with _session() as session, pytest.raises(tether.ConnectError):
        session.get(f"http://127.0.0.1:{free_port()}/")
