"""``tether demo``: connection reuse, a server's idle close, the keep-alive race, safe retries,
16 threads sharing one HTTP/2 connection and asyncio tasks cancelled mid-request, shown live.

Runs against tether's own in-process test servers (no network), which count the TCP
connections they accept, so every claim printed here is checked from the server's side too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..client.session import Session
from ..exceptions import RequestError
from ..sync.pool import ConnectionPool
from ..testing.h2server import H2TestServer
from ..testing.testserver import DelayProxy, Exchange, TestServer, close_wait_count
from .demo_async import scene_async_cancel

__all__ = ["run_demo"]


def run_demo(out: Callable[[str], None] = print) -> int:
    """Run the six scenes; return 0 if every check held, 1 otherwise."""
    failures = 0
    scenes = (
        _scene_reuse,
        _scene_idle_close,
        _scene_keepalive_race,
        _scene_retry,
        _scene_h2,
        scene_async_cancel,
    )
    for scene in scenes:
        out("")
        if not scene(out):
            failures += 1
    out("")
    out("all checks held" if not failures else f"{failures} scene(s) did not behave as claimed")
    return 1 if failures else 0


def _check(out: Callable[[str], None], ok: bool, claim: str) -> bool:
    out(f"  [{'ok' if ok else 'FAILED'}] {claim}")
    return ok


def _scene_reuse(out: Callable[[str], None]) -> bool:
    out("1. One pool, one connection, two requests")
    with TestServer() as server, ConnectionPool("127.0.0.1", server.port, maxsize=1) as pool:
        out(f'   pool = tether.ConnectionPool("127.0.0.1", {server.port}, maxsize=1)')
        r1 = pool.request("GET", "/search", fields={"q": "python", "v": "1.0"})
        r2 = pool.request("GET", "/search", fields={"q": "php", "v": "1.0"})
        out(
            f"   print(pool.num_connections, pool.num_requests)  ->  "
            f"{pool.num_connections} {pool.num_requests}"
        )
        for r in (r1, r2):
            i = r.connection_info
            out(
                f"   {r.status} {r.request.url.target:<24} connection #{i.connection_id} "
                f"request {i.request_number} reused={i.reused} idle={i.idle_time * 1000:.2f} ms"
            )
        return all(
            (
                _check(out, (pool.num_connections, pool.num_requests) == (1, 2), "prints 1 2"),
                _check(
                    out,
                    server.connections_accepted == 1,
                    f"the server accepted {server.connections_accepted} TCP connection(s)",
                ),
                _check(
                    out,
                    r2.json()["args"] == {"q": ["php"], "v": ["1.0"]},
                    "fields went into the query string",
                ),
            )
        )


def _scene_idle_close(out: Callable[[str], None]) -> bool:
    out("2. The server closes an idle keep-alive connection")
    with TestServer() as server, ConnectionPool("127.0.0.1", server.port) as pool:
        pool.request("GET", "/")
        closed_at = time.monotonic()
        n = server.close_idle_connections()
        out(f"   server closed {n} idle connection(s); tether has made no request since")
        noticed = _wait(lambda: pool.stats().closes.get("SERVER_CLOSED_IDLE", 0) == 1, 2.0)
        delay_ms = (time.monotonic() - closed_at) * 1000
        stats = pool.stats()
        ok = _check(
            out,
            noticed,
            f"tether closed its end {delay_ms:.1f} ms after the server's close "
            f"(open={stats.open}, closes={stats.closes})",
        )
        waiting = close_wait_count(server.port)
        ok = _check(out, ok and waiting == 0, f"sockets in CLOSE_WAIT (read from /proc): {waiting}")
        r = pool.request("GET", "/")
        return ok and _check(
            out,
            not r.connection_info.reused and r.status == 200,
            "the next request went out on a fresh connection, without an error",
        )


def _scene_keepalive_race(out: Callable[[str], None]) -> bool:
    timeout, delay = 1.0, 0.02
    out(f"3. The keep-alive race: the server silently closes connections idle {timeout:.1f} s,")
    out(f"   {delay * 1000:.0f} ms away; POSTs (never retried) sent at gaps around that limit")
    errors = 0
    with (
        TestServer(idle_close_after=timeout) as server,
        DelayProxy(("127.0.0.1", server.port), delay=delay) as proxy,
        ConnectionPool("127.0.0.1", proxy.port) as pool,
    ):
        pool.request("POST", "/", body=b"first")
        _wait(lambda: pool.stats().closes.get("SERVER_CLOSED_IDLE", 0) == 1, timeout + 1.0)
        learned = pool.learned_idle_timeout
        out(f"   tether saw the server's idle close and learned its limit: {learned or 0:.2f} s")
        pool.request("POST", "/", body=b"warm-up")
        for gap in (0.7, 0.85, 0.95, 1.0, 1.05):
            time.sleep(gap)
            try:
                r = pool.request("POST", "/", body=b"x" * 100)
                i = r.connection_info
                fate = "reused" if i.reused else "new connection (old one retired in time)"
                out(f"   gap {gap:.2f} s: {r.status} on {fate}")
            except RequestError as exc:
                errors += 1
                out(f"   gap {gap:.2f} s: ERROR {exc}")
        stats = pool.stats()
    return _check(out, errors == 0, f"zero errors; closes by reason: {stats.closes}")


def _scene_retry(out: Callable[[str], None]) -> bool:
    out("4. A reused connection dies before the response: GET is retried, POST is not")

    def drop_second(ex: Exchange) -> None:
        if ex.index >= 2:
            ex.close()  # read the request, answer nothing
        else:
            ex.respond(200, body=b"ok")

    with TestServer() as server, ConnectionPool("127.0.0.1", server.port) as pool:
        server.route("/flaky", drop_second)
        pool.request("GET", "/flaky")
        r = pool.request("GET", "/flaky")
        ok = _check(
            out,
            r.status == 200 and r.connection_info.retries == 1,
            f"GET answered {r.status} after {r.connection_info.retries} transparent retry",
        )
        pool.request("GET", "/flaky")  # fresh connection, first request
        try:
            pool.request("POST", "/flaky", body=b"pay once")
            return _check(out, False, "POST should have raised")
        except RequestError as exc:
            out(f"   POST raised {type(exc).__name__}: {exc}")
            return ok and _check(out, exc.may_have_reached_server, "and was not resent")


def _scene_h2(out: Callable[[str], None]) -> bool:
    threads, ms = 16, 200
    out(f"5. HTTP/2: {threads} threads, one Session, each GET /slow?ms={ms} (h2c, prior knowledge)")
    results: list[tuple[int, int]] = []  # (status, stream id) per thread
    errors: list[BaseException] = []
    with H2TestServer() as server, Session(http2="prior-knowledge") as session:
        url_path = f"/slow?ms={ms}"
        url = server.url + url_path
        start = threading.Barrier(threads, timeout=5.0)  # all threads ask at the same moment

        def fetch() -> None:
            try:
                start.wait()
                r = session.get(url, timeout=10.0)
                results.append((r.status, r.connection_info.stream_id))
            except BaseException as exc:  # shown below: a thread's error must not vanish
                errors.append(exc)

        workers = [threading.Thread(target=fetch, name=f"demo-h2-{i}") for i in range(threads)]
        began = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=15.0)
        wall = time.monotonic() - began
        stats = session.stats()
        seen = sorted((cid, sid) for cid, sid, _, path, _ in server.requests if path == url_path)
        accepted = server.connections_accepted
    for exc in errors[:3]:
        out(f"   ERROR {type(exc).__name__}: {exc}")
    out(f"   wall time {wall * 1000:.0f} ms for {threads} x {ms} ms = {threads * ms} ms of waiting")
    out(f"   stream ids the server saw: {[sid for _, sid in seen]}")
    out(
        f"   session.stats(): connections_opened={stats.connections_opened}, "
        f"peak_streams={stats.peak_streams}, reuses={stats.reuses}"
    )
    connections = {cid for cid, _ in seen}
    return all(
        (
            _check(
                out,
                accepted == 1,
                f"the server accepted {accepted} TCP connection(s) for {threads} threads",
            ),
            _check(
                out,
                len(seen) == threads and len(connections) == 1,
                f"it received {len(seen)} requests, as streams of {len(connections)} connection(s)",
            ),
            _check(
                out,
                sorted(results) == sorted((200, sid) for _, sid in seen) and not errors,
                f"every thread got 200 on the stream the server answered ({len(errors)} errors)",
            ),
            _check(
                out,
                stats.peak_streams > 1,
                f"the streams overlapped: up to {stats.peak_streams} at once on the connection",
            ),
        )
    )


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()
