"""Trace events: order and completeness for a fresh, a reused, a retried and an HTTP/2
request, for Session and AsyncSession; the logging consumer; per-origin stats."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import Any

import pytest
from aio_helpers import run
from servers.nginx import Nginx

import tether
from tether import trace as tr
from tether.testing import Exchange, H2TestServer, TestServer

FRESH = [
    tr.ConnectStart,
    tr.DNSDone,
    tr.ConnectDone,
    tr.RequestHeadersSent,
    tr.ResponseHeadersReceived,
    tr.ResponseDone,
    tr.ReleasedToPool,
]
REUSED = [
    tr.ConnectionReused,
    tr.RequestHeadersSent,
    tr.ResponseHeadersReceived,
    tr.ResponseDone,
    tr.ReleasedToPool,
]
# A reused connection found dead after the request went out: closed, retried, a new one.
RETRIED = [
    tr.ConnectionReused,
    tr.ConnectionClosed,
    tr.Retry,
    *FRESH,
]


def kinds(events: list[tr.TraceEvent]) -> list[type]:
    return [type(e) for e in events]


def drop_second(server: TestServer) -> None:
    """``/flaky``: the second request on a connection is read and answered with a close."""

    def handler(ex: Exchange) -> None:
        if ex.index >= 2:
            ex.close()
        else:
            ex.respond(200, body=b"ok")

    server.route("/flaky", handler)


def check_common(events: list[tr.TraceEvent], origin: str) -> None:
    """Every event: the session's origin, a clock that never goes back, frozen."""
    assert all(e.origin == origin for e in events)
    times = [e.at for e in events]
    assert times == sorted(times), events
    with pytest.raises(AttributeError):
        events[0].at = 0.0  # type: ignore[misc]


def test_fresh_then_reused_request(test_server: TestServer) -> None:
    events: list[tr.TraceEvent] = []
    with tether.Session(trace=events.append) as s:
        r1 = s.get(test_server.url + "/a?token=secret")
        first = len(events)
        r2 = s.get(test_server.url + "/a")
        second = len(events)
    assert kinds(events[:first]) == FRESH
    assert kinds(events[first:second]) == REUSED
    assert kinds(events[second:]) == [tr.ConnectionClosed]
    check_common(events, f"http://127.0.0.1:{test_server.port}")
    n = r1.connection_info.connection_id
    assert {e.connection_id for e in events[1:]} == {n} == {r2.connection_info.connection_id}
    done = events[2]
    assert isinstance(done, tr.ConnectDone) and done.address == ("127.0.0.1", test_server.port)
    assert [(a.address, a.outcome) for a in done.attempts] == [
        (("127.0.0.1", test_server.port), "connected")
    ]
    sent = events[3]
    assert isinstance(sent, tr.RequestHeadersSent)
    assert (sent.method, sent.path) == ("GET", "/a")  # no query string: it may carry a token
    reused = events[first]
    assert isinstance(reused, tr.ConnectionReused) and reused.request_number == 2
    assert reused.idle_time == pytest.approx(r2.connection_info.idle_time)
    closed = events[-1]
    assert isinstance(closed, tr.ConnectionClosed)
    assert (closed.reason, closed.requests) == (tether.CloseReason.POOL_CLOSED, 2)


def test_a_body_is_traced_after_the_head(test_server: TestServer) -> None:
    events: list[tr.TraceEvent] = []
    with tether.Session(trace=events.append) as s:
        s.post(test_server.url + "/p", data=b"x" * 1000)
    sent = kinds(events)
    i = sent.index(tr.RequestHeadersSent)
    assert sent[i : i + 3] == [
        tr.RequestHeadersSent,
        tr.RequestBodySent,
        tr.ResponseHeadersReceived,
    ]


def test_retried_request(test_server: TestServer) -> None:
    drop_second(test_server)
    events: list[tr.TraceEvent] = []
    with tether.Session(trace=events.append) as s:
        s.get(test_server.url + "/flaky")
        first = len(events)
        r = s.get(test_server.url + "/flaky")
    assert r.status == 200 and r.connection_info.retries == 1
    assert kinds(events[first:])[: len(RETRIED)] == RETRIED
    closed, retry = events[first + 1], events[first + 2]
    assert isinstance(closed, tr.ConnectionClosed)
    assert closed.reason is tether.CloseReason.NETWORK_ERROR
    assert isinstance(retry, tr.Retry) and retry.method == "GET"
    assert "replayable" in retry.why
    assert retry.connection_id == closed.connection_id != r.connection_info.connection_id


def test_http2_request_opens_streams_on_one_connection() -> None:
    events: list[tr.TraceEvent] = []
    with (
        H2TestServer() as server,
        tether.Session(http2="prior-knowledge", trace=events.append) as s,
    ):
        s.get(server.url + "/")
        first = len(events)
        s.get(server.url + "/")
    h2_fresh = [*FRESH[:3], tr.StreamOpened, *FRESH[3:]]
    assert kinds(events[:first]) == h2_fresh
    assert kinds(events[first:])[:6] == [tr.ConnectionReused, tr.StreamOpened, *REUSED[1:]]
    streams = [e.stream_id for e in events if isinstance(e, tr.StreamOpened)]
    assert streams == [1, 3]
    heads = [e for e in events if isinstance(e, tr.ResponseHeadersReceived)]
    assert [h.http_version for h in heads] == ["HTTP/2", "HTTP/2"]


def test_http2_goaway_then_a_new_connection() -> None:
    events: list[tr.TraceEvent] = []
    with (
        H2TestServer(goaway_after=2) as server,
        tether.Session(http2="prior-knowledge", trace=events.append) as s,
    ):
        ids = [s.get(server.url + "/").connection_info.connection_id for _ in range(3)]
    assert ids[0] == ids[1] != ids[2]
    goaway = next(e for e in events if isinstance(e, tr.GoawayReceived))
    closed = next(e for e in events if isinstance(e, tr.ConnectionClosed))
    assert goaway.connection_id == closed.connection_id == ids[0]
    assert closed.reason is tether.CloseReason.GOAWAY
    later = events[events.index(closed) :]
    assert any(isinstance(e, tr.ConnectDone) and e.connection_id == ids[2] for e in later)


def test_refused_stream_is_reset_and_retried() -> None:
    events: list[tr.TraceEvent] = []
    with (
        H2TestServer() as server,
        tether.Session(http2="prior-knowledge", trace=events.append) as s,
    ):
        r = s.post(server.url + "/refuse-once", data=b"once processed")
    assert (r.status, r.connection_info.retries) == (200, 1)
    reset = next(e for e in events if isinstance(e, tr.StreamReset))
    retry = next(e for e in events if isinstance(e, tr.Retry))
    assert events.index(reset) < events.index(retry)
    assert retry.method == "POST" and "did not process" in retry.why
    assert [e.stream_id for e in events if isinstance(e, tr.StreamOpened)] == [1, 3]


def test_tls_handshake_events(nginx_h2: Nginx) -> None:
    events: list[tr.TraceEvent] = []
    with tether.Session(verify=str(nginx_h2.ca_file), http2=True, trace=events.append) as s:
        s.get(nginx_h2.url + "/echo")
    assert kinds(events)[:5] == [
        tr.ConnectStart,
        tr.DNSDone,
        tr.ConnectDone,
        tr.TLSStart,
        tr.TLSDone,
    ]
    tls = events[4]
    assert isinstance(tls, tr.TLSDone)
    assert tls.version in ("TLSv1.2", "TLSv1.3") and tls.alpn == "h2" and tls.seconds > 0


def test_async_session_traces_the_same_events(test_server: TestServer) -> None:
    drop_second(test_server)
    events: list[tr.TraceEvent] = []

    async def main() -> None:
        async with tether.AsyncSession(trace=events.append) as s:
            await s.get(test_server.url + "/a")
            marks.append(len(events))
            await s.get(test_server.url + "/a")
            marks.append(len(events))
            await s.get(test_server.url + "/flaky")  # a fresh connection: request 1
            marks.append(len(events))
            await s.get(test_server.url + "/flaky")

    marks: list[int] = []
    run(main())
    a, b, c = marks
    assert kinds(events[:a]) == FRESH
    assert kinds(events[a:b]) == REUSED
    assert kinds(events[c:])[: len(RETRIED)] == RETRIED
    check_common(events, f"http://127.0.0.1:{test_server.port}")


def test_async_http2_streams() -> None:
    events: list[tr.TraceEvent] = []

    async def main() -> None:
        async with tether.AsyncSession(http2="prior-knowledge", trace=events.append) as s:
            await s.get(server.url + "/")
            await s.get(server.url + "/")

    with H2TestServer() as server:
        run(main())
    assert [e.stream_id for e in events if isinstance(e, tr.StreamOpened)] == [1, 3]
    assert sum(isinstance(e, tr.ConnectionReused) for e in events) == 1


def test_pools_take_a_tracer_too(test_server: TestServer) -> None:
    events: list[tr.TraceEvent] = []
    with tether.ConnectionPool("127.0.0.1", test_server.port, trace=events.append) as pool:
        pool.request("GET", "/")
    assert kinds(events) == [*FRESH, tr.ConnectionClosed]


# -- logging: one consumer of the trace ---------------------------------------------------------


def test_debug_logging_prints_curl_like_lines_without_secrets(
    test_server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    with tether.Session() as s:
        s.get(
            test_server.url + "/x?api_key=s3cret",
            headers={"Authorization": "Bearer s3cret", "Cookie": "id=s3cret"},
        )
        r = s.get(test_server.url + "/x")
    n = r.connection_info.connection_id
    lines = [rec.getMessage() for rec in caplog.records if rec.name.startswith("tether.")]
    assert f"connected to 127.0.0.1:{test_server.port} (#{n})" in lines
    assert any(line.startswith(f"re-using connection #{n} (idle ") for line in lines)
    assert any(line.endswith(", request 2)") for line in lines)
    assert lines.count(f"connection #{n} left intact") == 2
    assert f"closing connection #{n}: pool closed" in lines
    assert not any("s3cret" in line for line in lines)


def test_no_logging_no_tracer_installed(test_server: TestServer) -> None:
    logging.getLogger("tether").setLevel(logging.WARNING)
    try:
        with tether.ConnectionPool("127.0.0.1", test_server.port) as pool:
            pool.request("GET", "/")
            assert pool._tracer is None  # the hot path's `is None` tests all say no
    finally:
        logging.getLogger("tether").setLevel(logging.NOTSET)


# -- stats per origin ---------------------------------------------------------------------------


def test_stats_break_down_by_origin() -> None:
    with (
        TestServer(keep_alive_header="timeout=5, max=50") as a,
        TestServer() as b,
        tether.Session() as s,
    ):
        for _ in range(3):
            s.get(a.url + "/")
        s.get(b.url + "/")
        stats = s.stats()
    origin_a, origin_b = f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"
    assert set(stats.by_origin) == {origin_a, origin_b}
    sa, sb = stats.by_origin[origin_a], stats.by_origin[origin_b]
    assert (sa.requests, sa.reuses, sa.connections_opened) == (3, 2, 1)
    assert sa.reuse_ratio == pytest.approx(2 / 3)
    assert sa.keep_alive is not None and "timeout=5" in sa.keep_alive
    assert (sb.requests, sb.reuses, sb.keep_alive) == (1, 0, None)
    assert stats.requests == 4 and stats.reuse_ratio == pytest.approx(0.5)
    table = stats.describe()
    assert origin_a in table and origin_b in table and "67%" in table
    assert table.splitlines()[-1].startswith("total")


def test_stats_keep_closes_and_learned_timeout_per_origin() -> None:
    with TestServer(idle_close_after=0.3) as server, tether.Session() as s:
        s.get(server.url + "/")
        for _ in range(50):  # the idle watcher notices the server's close within ms
            if s.stats().closes.get("SERVER_CLOSED_IDLE", 0):
                break
            time.sleep(0.05)
        stats = s.stats().by_origin[f"http://127.0.0.1:{server.port}"]
    assert stats.closes == {"SERVER_CLOSED_IDLE": 1}
    assert stats.learned_idle_timeout == pytest.approx(0.3, abs=0.1)


def test_rich_renders_the_stats_table(test_server: TestServer) -> None:
    rich = pytest.importorskip("rich.console")
    with tether.Session() as s:
        s.get(test_server.url + "/")
        stats = s.stats()
    console = rich.Console(width=200, record=True, file=io.StringIO())
    console.print(stats)
    text: Any = console.export_text()
    assert f"http://127.0.0.1:{test_server.port}" in text and "reuse" in text


def test_response_timings_name_what_each_request_paid(test_server: TestServer) -> None:
    # A fresh connection pays connect; a reused one skips it; a streamed body's time is
    # counted once it has been read; the parts never exceed the total.
    test_server.route("/big", lambda ex: ex.respond(200, [], b"x" * 200_000))
    with tether.Session() as s:
        fresh = s.get(test_server.url + "/a").timings
        reused = s.get(test_server.url + "/a").timings
        with s.get(test_server.url + "/big", stream=True) as r:
            assert r.timings.body == 0.0  # nothing read yet
            r.read()
            streamed = r.timings
    assert fresh.connect > 0 and fresh.ttfb > 0 and fresh.request > 0
    assert (reused.dns, reused.connect, reused.tls) == (0.0, 0.0, 0.0) and reused.ttfb > 0
    assert streamed.body > 0
    for t in (fresh, reused, streamed):
        parts = t.dns + t.connect + t.tls + t.pool + t.request + t.ttfb + t.body
        assert parts <= t.total + 1e-6
        assert min(t.pool, t.request, t.body) >= 0.0


def test_async_response_timings(test_server: TestServer) -> None:
    async def run() -> tuple[tether.Timings, tether.Timings]:
        async with tether.AsyncSession() as s:
            first = (await s.get(test_server.url + "/a")).timings
            second = (await s.get(test_server.url + "/a")).timings
        return first, second

    fresh, reused = asyncio.run(run())
    assert fresh.connect > 0 and reused.connect == 0.0 and reused.ttfb > 0
    assert fresh.dns + fresh.connect + fresh.pool + fresh.request + fresh.ttfb <= fresh.total
