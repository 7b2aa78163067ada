"""The first-contact keep-alive race: a POST is sent again only when the server provably closed
before the request reached it (FIN, then a reset for our bytes: rules.closed_before_request).

A raw-socket server, scripted per case, serves a first POST on a connection, then does one of:
closes idle just before our second POST arrives (FIN, then the kernel resets the POST);
reads the POST, then closes (FIN only); half-closes, then reads and discards the POST, then
closes (FIN only); reads the POST, then closes abortively (a reset without a FIN). A latency
proxy that forwards resets as resets sits in between, so the server's FIN is still on its
way when the client sends. The server counts the POSTs it read: each must arrive exactly once
(or, had the client given up, never), and tether may retry only in the first case.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import trustme
from aio_helpers import LOOPS, run

from tether import ConnectionPool, Limits, ReadError, TransportError
from tether.aio.pool import AsyncConnectionPool
from tether.io import resets
from tether.lifecycle.exchange import Attempts, Exchange
from tether.lifecycle.rules import MAX_REUSED_RETRIES, CloseReason, closed_before_request
from tether.testing import DelayProxy, TestServer

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the reset after FIN is read the Linux way"
)

DELAY = 0.1  # each way through the proxy: the FIN is on its way for this long
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CASES = ["closed_idle", "read_then_close", "half_close_read", "abort_after_read"]


class ScriptedServer:
    """Serves the first request of the first connection, then plays ``case``; any later
    connection (a retry) is served normally. Counts POSTs read, by body."""

    def __init__(self, case: str) -> None:
        self.case = case
        self.posts: list[bytes] = []
        self.closed_at = threading.Event()  # the scripted close (or half-close) happened
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                self.connections += 1
                first = self.connections == 1
                self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock, first), daemon=True)
            self._threads.append(t)
            t.start()

    def _read_request(self, sock: socket.socket, buf: bytearray) -> bool:
        sock.settimeout(5.0)
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data:
                return False
            buf += data
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                return False
            rest += data
        del buf[:]
        buf += rest[length:]
        if head.startswith(b"POST "):
            with self._lock:
                self.posts.append(rest[:length])
        return True

    def _serve(self, sock: socket.socket, first: bool) -> None:
        buf = bytearray()
        try:
            if not first:
                while self._read_request(sock, buf):
                    sock.sendall(OK)
                return
            if not self._read_request(sock, buf):
                return
            sock.sendall(OK)
            self._play(sock, buf)
        except OSError:
            pass
        finally:
            sock.close()

    def _play(self, sock: socket.socket, buf: bytearray) -> None:
        case = self.case
        if case == "closed_idle":
            time.sleep(0.2)  # idle, then closed: the next request arrives after this
            sock.close()
            self.closed_at.set()
        elif case == "half_close_read":
            time.sleep(0.2)
            sock.shutdown(socket.SHUT_WR)
            self.closed_at.set()
            self._read_request(sock, buf)  # read and discarded: never answered
        elif case == "read_then_close":
            self._read_request(sock, buf)  # read, then closed without an answer
        elif case == "abort_after_read":
            self._read_request(sock, buf)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._stopping.set()
        self._accepting.join(5)
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[tuple[ScriptedServer, DelayProxy]]:
    server = ScriptedServer(request.param)
    try:
        with DelayProxy(("127.0.0.1", server.port), delay=DELAY) as proxy:
            yield server, proxy
    finally:
        server.close()


def _second_post_at(server: ScriptedServer) -> None:
    """When to send the second POST: for a scripted close, while its FIN is on the way."""
    if server.case in ("closed_idle", "half_close_read"):
        assert server.closed_at.wait(5)
        time.sleep(DELAY / 2)


def _expect(server: ScriptedServer, retried: bool, outcome: object, stats: object) -> None:
    assert server.posts[0] == b"first"
    assert server.posts.count(b"second") == 1  # exactly once, retried or not
    if retried:
        assert getattr(outcome, "status", None) == 200
        assert outcome.connection_info.retries == 1  # type: ignore[attr-defined]
        assert stats.closes.get("SERVER_CLOSED_BEFORE_REQUEST") == 1  # type: ignore[attr-defined]
        assert server.connections == 2
    else:
        assert isinstance(outcome, TransportError), outcome
        assert stats.retries == 0  # type: ignore[attr-defined]
        assert "SERVER_CLOSED_BEFORE_REQUEST" not in stats.closes  # type: ignore[attr-defined]
        assert server.connections == 1


@pytest.mark.parametrize("scripted", CASES, indirect=True)
def test_post_retried_only_when_the_server_closed_first(
    scripted: tuple[ScriptedServer, DelayProxy],
) -> None:
    server, proxy = scripted
    with ConnectionPool("127.0.0.1", proxy.port, timeout=5.0) as pool:
        assert pool.request("POST", "/", body=b"first").status == 200
        _second_post_at(server)
        outcome: object
        try:
            outcome = pool.request("POST", "/", body=b"second")
        except TransportError as exc:
            outcome = exc
        stats = pool.stats()
    _expect(server, server.case == "closed_idle", outcome, stats)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("scripted", CASES, indirect=True)
def test_async_post_retried_only_when_the_server_closed_first(
    scripted: tuple[ScriptedServer, DelayProxy], loop: str
) -> None:
    server, proxy = scripted

    async def main() -> tuple[object, object]:
        async with AsyncConnectionPool("127.0.0.1", proxy.port, timeout=5.0) as pool:
            assert (await pool.request("POST", "/", body=b"first")).status == 200
            await asyncio.to_thread(_second_post_at, server)
            outcome: object
            try:
                outcome = await pool.request("POST", "/", body=b"second")
            except TransportError as exc:
                outcome = exc
            return outcome, pool.stats()

    outcome, stats = run(main(), loop)
    _expect(server, server.case == "closed_idle", outcome, stats)


@pytest.mark.parametrize("scripted", ["closed_idle"], indirect=True)
def test_the_rule_can_be_turned_off(scripted: tuple[ScriptedServer, DelayProxy]) -> None:
    server, proxy = scripted
    limits = Limits(retry_closed_before_request=False)
    with ConnectionPool("127.0.0.1", proxy.port, timeout=5.0, limits=limits) as pool:
        pool.request("POST", "/", body=b"first")
        _second_post_at(server)
        with pytest.raises(TransportError):
            pool.request("POST", "/", body=b"second")
        assert pool.stats().retries == 0
    assert server.posts == [b"first"]  # never arrived: reset by the closed socket


@pytest.mark.parametrize("body", ["two sends", "more than one segment"])
@pytest.mark.parametrize("scripted", ["closed_idle"], indirect=True)
def test_a_request_in_more_than_one_segment_is_not_retried(
    scripted: tuple[ScriptedServer, DelayProxy], body: str
) -> None:
    # The server might have read a prefix before its FIN while the rest drew the reset, so
    # the reset proves nothing. (Loopback's segment is 64 KiB: 70 000 bytes need two.)
    server, proxy = scripted
    with ConnectionPool("127.0.0.1", proxy.port, timeout=5.0) as pool:
        pool.request("POST", "/", body=b"first")
        _second_post_at(server)
        with pytest.raises(TransportError):
            if body == "two sends":
                pool.request(
                    "POST", "/", body=iter([b"sec", b"ond"]), headers={"Content-Length": "6"}
                )
            else:
                pool.request("POST", "/", body=b"x" * 70_000)
        assert pool.stats().retries == 0


def test_verdict_needs_every_fact() -> None:
    facts = dict(reused=True, eof_before_response=True, reset_after_eof=True, one_segment=True)
    assert closed_before_request(**facts)
    for name in facts:
        assert not closed_before_request(**{**facts, name: False}), name
    assert CloseReason.SERVER_CLOSED_BEFORE_REQUEST.name == "SERVER_CLOSED_BEFORE_REQUEST"


def _race(pool: ConnectionPool, gaps: list[float]) -> list[str]:
    lost = []
    for gap in gaps:
        time.sleep(gap)
        try:
            assert pool.request("POST", "/echo", body=b"x" * 100).status == 200
        except TransportError as exc:
            lost.append(f"{gap}: {exc}")
    return lost


def test_no_post_lost_behind_a_reset_forwarding_proxy_first_contact_included() -> None:
    # The server closes connections idle 0.5 s; 20 ms away. Gaps that cross the close while
    # the FIN is on its way, from the very first request: nothing learned yet.
    with (
        TestServer(idle_close_after=0.5) as server,
        DelayProxy(("127.0.0.1", server.port), delay=0.02) as proxy,
        ConnectionPool("127.0.0.1", proxy.port, timeout=5.0) as pool,
    ):
        pool.request("POST", "/echo", body=b"first")
        lost = _race(pool, [0.47, 0.48, 0.49] * 2)
    assert lost == []
    posts = [e for e in server.exchanges if e.method == "POST"]
    assert len(posts) == 7  # every POST arrived exactly once


def test_over_tls_too(ca: trustme.CA) -> None:
    # The server closes idle 0.3 s, 0.1 s away: a request sent 0.2 s after the response
    # reaches it 0.1 s after its close, while its FIN (close_notify first) is still on the way.
    # The TLS record of a small request goes out in one send that fits one segment.
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with (
        TestServer(idle_close_after=0.3, ssl_context=server_ctx) as server,
        DelayProxy(("127.0.0.1", server.port), delay=DELAY) as proxy,
        ConnectionPool("127.0.0.1", proxy.port, "https", verify=client_ctx, timeout=5.0) as pool,
    ):
        pool.request("POST", "/echo", body=b"first")
        time.sleep(0.2)
        r = pool.request("POST", "/echo", body=b"second")
        assert r.status == 200 and r.connection_info.retries == 1
        assert pool.stats().closes.get("SERVER_CLOSED_BEFORE_REQUEST") == 1
    assert [e.body for e in server.exchanges if e.method == "POST"] == [b"first", b"second"]


def test_reused_connection_retries_are_bounded_by_the_pool_size() -> None:
    # Go retries while each failure is on a reused connection; tether too, maxsize + 1 times.
    for maxsize, bound in ((1, 2), (3, 4), (1000, MAX_REUSED_RETRIES)):
        attempts = Attempts(maxsize)
        retried = 0
        for _ in range(100):
            dead = Exchange(None, request_number=2, in_flight=1, idle_time=0.0)
            if not attempts.retry(dead, True, ReadError("reused, dead")):
                break
            retried += 1
        assert retried == bound
    fresh = Exchange(None, request_number=1, in_flight=1, idle_time=0.0)
    assert not Attempts(3).retry(fresh, True, ReadError("a new connection failed"))
    post = Exchange(None, request_number=2, in_flight=1, idle_time=0.0)
    post.wrote_any = True
    assert not Attempts(3).retry(post, False, ReadError("maybe processed"))
    post.eof_first = post.reset_after_eof = post.one_segment = True
    assert Attempts(3).retry(post, False, ReadError("provably never arrived"))


@pytest.mark.parametrize(
    ("scripted", "expected"),
    [
        ("closed_idle", ("EOF", True)),
        ("read_then_close", ("EOF", False)),
        ("half_close_read", ("EOF", False)),
        ("abort_after_read", ("ECONNRESET", False)),
    ],
    indirect=["scripted"],
)
def test_what_the_client_kernel_sees(
    scripted: tuple[ScriptedServer, DelayProxy], expected: tuple[str, bool]
) -> None:
    # The argument of docs/lifecycle.md section 7a, read with a raw socket (io.resets).
    server, proxy = scripted
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(post % (5, b"first"))
        got = b""
        while not got.endswith(b"ok"):
            got += sock.recv(1024)
        _second_post_at(server)
        sock.sendall(post % (6, b"second"))
        try:
            seen = "EOF" if sock.recv(1024) == b"" else "data"
        except ConnectionResetError:
            seen = "ECONNRESET"
        reset = seen == "EOF" and resets.wait_reset(sock, 4 * DELAY)
    assert (seen, reset) == expected
    assert server.posts.count(b"second") == (0 if server.case == "closed_idle" else 1)
