"""TLSTransport (io/tlsbio.py): TLS over memory BIOs, against scripted TLS servers.

Each server is a thread on 127.0.0.1 that runs a script per accepted connection: send many
small records, a large body, nothing at all, bytes that are not TLS, a handshake one byte at a
time. What the client sees is what a user would: how many bytes one read returns, which error
and how soon, that a ragged EOF ends a body.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from helpers import fd_count

import tether
from tether.io.sockets import connect, idle_socket_state
from tether.io.tlsbio import TLSTransport
from tether.models import Origin

Script = Callable[[socket.socket], None]


class ScriptServer:
    """Accepts connections one at a time and runs ``script`` on each (then closes it)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.finished = threading.Semaphore(0)  # released as each connection is closed
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            with conn:
                conn.settimeout(5.0)  # no script waits longer for the client
                try:
                    self.script(conn)
                except Exception as exc:
                    self.errors.append(exc)
            self.finished.release()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
def client_ctx(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


@pytest.fixture
def serve() -> Iterator[Callable[[Script], ScriptServer]]:
    servers: list[ScriptServer] = []

    def start(script: Script) -> ScriptServer:
        servers.append(ScriptServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def dial(server: ScriptServer, ctx: ssl.SSLContext, timeout: float = 5.0) -> TLSTransport:
    sock, _ = connect(Origin("https", "127.0.0.1", server.port), timeout, ctx)
    assert isinstance(sock, TLSTransport)
    return sock


def wait_for_fin(sock: socket.socket) -> None:
    """Return once the peer's FIN is queued: every byte sent before it is in our buffer."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLRDHUP)
    assert poller.poll(5000), "the server never closed its side"


def until_client_closes(tls: ssl.SSLSocket) -> None:
    """Server side: wait for the client's FIN. Read below TLS: after a ragged EOF the client's
    OpenSSL sends a decode_error alert (ssl.SSLSocket's does too), which is no server error."""
    socket.socket.settimeout(tls, 5.0)
    for _ in range(100):
        if not socket.socket.recv(tls, 4096):
            return


def close_notify(tls: ssl.SSLSocket) -> None:
    """Server side: send close_notify and FIN without waiting for the client's close_notify
    (tether sends none), then wait for the client to close."""
    tls.setblocking(False)
    try:
        tls.unwrap()
    except ssl.SSLWantReadError:  # close_notify sent; the second step would wait for the peer's
        pass
    socket.socket.shutdown(tls, socket.SHUT_WR)
    until_client_closes(tls)


def read_to_eof(sock: socket.socket, limit: int) -> bytes:
    chunks: list[bytes] = []
    for _ in range(limit):
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
    raise AssertionError(f"no EOF within {limit} reads")


# -- reading ------------------------------------------------------------------------------


def test_one_read_returns_every_record_that_arrived(
    serve: Callable[[Script], ScriptServer],
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> None:
    pieces = [f"record {i:04d};".encode() for i in range(300)]

    def many_records(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            for piece in pieces:
                tls.sendall(piece)  # one TLS record each
            # The TCP FIN, no close_notify: a ragged EOF after the records.
            socket.socket.shutdown(tls, socket.SHUT_WR)
            until_client_closes(tls)

    server = serve(many_records)
    with dial(server, client_ctx) as sock:
        wait_for_fin(sock)
        assert sock.recv(65536) == b"".join(pieces)  # ssl.SSLSocket would give one record
        assert sock.recv(65536) == b""  # a ragged EOF is EOF
        assert sock.recv(65536) == b""  # and stays so
    assert server.errors == []


def test_recv_respects_bufsize_and_keeps_the_rest(
    serve: Callable[[Script], ScriptServer],
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> None:
    def two_records(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"abcdef")
            tls.sendall(b"ghij")
            close_notify(tls)

    server = serve(two_records)
    with dial(server, client_ctx) as sock:
        wait_for_fin(sock)
        first = sock.recv(4)
        assert first == b"abcd"
        assert sock.pending() > 0  # buffered here, invisible to a poll of the socket
        rest = read_to_eof(sock, 10)
        assert first + rest == b"abcdefghij"  # then close_notify: a clean EOF
    assert server.errors == []


def test_large_bodies_both_ways(
    serve: Callable[[Script], ScriptServer],
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> None:
    body = os.urandom(3 * 1024 * 1024 + 17)

    def echo_digest(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            size = struct.unpack("!Q", tls.recv(8))[0]
            digest, got = hashlib.sha256(), 0
            while got < size:
                data = tls.recv(65536)
                if not data:
                    raise AssertionError(f"EOF after {got} of {size} bytes")
                digest.update(data)
                got += len(data)
            tls.sendall(digest.digest() + body)
            socket.socket.shutdown(tls, socket.SHUT_WR)
            until_client_closes(tls)

    server = serve(echo_digest)
    with dial(server, client_ctx) as sock:
        sock.sendall(struct.pack("!Q", len(body)))
        sent = sock.send(body)
        assert 0 < sent <= 16384  # one record's worth: what send took is what it says
        sock.sendall(memoryview(body)[sent:])
        received = read_to_eof(sock, 10_000)
    assert received[:32] == hashlib.sha256(body).digest()
    assert received[32:] == body
    assert server.errors == []


def test_reads_and_writes_on_two_threads(
    serve: Callable[[Script], ScriptServer],
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> None:
    # HTTP/2 reads on one thread while others write: the records must stay in order.
    total = 2 * 1024 * 1024

    def echo(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            got = 0
            while got < total:
                data = tls.recv(65536)
                if not data:
                    break
                tls.sendall(data)
                got += len(data)

    server = serve(echo)
    payload = os.urandom(total)
    received: list[bytes] = []
    with dial(server, client_ctx) as sock:

        def reader() -> None:
            got = 0
            while got < total:
                data = sock.recv(65536)
                if not data:
                    return
                received.append(data)
                got += len(data)

        thread = threading.Thread(target=reader)
        thread.start()
        for start in range(0, total, 1000):  # many small records, as HTTP/2 frames are
            sock.sendall(payload[start : start + 1000])
        thread.join(30)
        assert not thread.is_alive()
    assert b"".join(received) == payload
    assert server.errors == []


def test_non_blocking_recv_raises_blocking_io_error(
    serve: Callable[[Script], ScriptServer],
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> None:
    release = threading.Event()

    def tickets_then_wait(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            release.wait(5)
            tls.sendall(b"late")
            tls.recv(1)

    server = serve(tickets_then_wait)
    with dial(server, client_ctx) as sock:
        assert sock.version() == "TLSv1.3"  # so the server sends session tickets first
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # tickets carry no data: not ssl.SSLWantReadError
            sock.recv(100)
        with pytest.raises(BlockingIOError):
            sock.recv(100, socket.MSG_DONTWAIT)
        release.set()
        sock.settimeout(5.0)
        assert sock.recv(100) == b"late"
        with pytest.raises(ValueError, match="only MSG_DONTWAIT"):
            sock.recv(1, socket.MSG_PEEK)


def test_read_timeouts_python_and_kernel(
    serve: Callable[[Script], ScriptServer],
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> None:
    def silent(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)  # until the client closes

    server = serve(silent)
    with dial(server, client_ctx) as sock:
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200_000))
        with pytest.raises(BlockingIOError):  # the kernel's timeout surfaces: no retry loop
            sock.recv(100)


# -- through a Session ----------------------------------------------------------------------


def test_session_read_timeout_against_a_silent_tls_server(
    serve: Callable[[Script], ScriptServer], server_ctx: ssl.SSLContext, ca_file: str
) -> None:
    def handshake_then_silence(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)  # the request
            tls.recv(1)  # then nothing until the client gives up

    server = serve(handshake_then_silence)
    with tether.Session(verify=ca_file) as s:
        started = time.monotonic()
        with pytest.raises(tether.ReadTimeout) as excinfo:
            s.get(f"https://127.0.0.1:{server.port}/", timeout=tether.Timeout(read=0.3))
        elapsed = time.monotonic() - started
    assert excinfo.value.may_have_reached_server
    assert elapsed < 5, f"the read timeout of 0.3 s took {elapsed:.1f} s"
    assert server.accepted == 1


def test_session_reads_a_body_ended_by_a_ragged_eof(
    serve: Callable[[Script], ScriptServer], server_ctx: ssl.SSLContext, ca_file: str
) -> None:
    body = b"x" * 100_000

    def close_delimited(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
            socket.socket.shutdown(tls, socket.SHUT_RDWR)  # no close_notify

    server = serve(close_delimited)
    with tether.Session(verify=ca_file) as s:
        r = s.get(f"https://127.0.0.1:{server.port}/")
        assert (r.status, r.content) == (200, body)
    assert server.errors == []


def test_handshake_timeout_when_the_server_never_speaks_tls(
    serve: Callable[[Script], ScriptServer], ca_file: str
) -> None:
    def mute(conn: socket.socket) -> None:
        conn.recv(65536)  # the ClientHello, never answered
        conn.recv(1)

    server = serve(mute)
    fds = fd_count()
    with tether.Session(verify=ca_file) as s:
        started = time.monotonic()
        with pytest.raises(tether.ConnectTimeout, match="TLS handshake") as excinfo:
            s.get(f"https://127.0.0.1:{server.port}/", timeout=tether.Timeout(connect=0.3))
        elapsed = time.monotonic() - started
        assert s.stats().open == 0
    assert excinfo.value.may_have_reached_server is False
    assert elapsed < 5
    assert server.finished.acquire(timeout=5)  # its end of the connection is closed too
    assert fd_count() == fds


def test_handshake_has_one_deadline_for_a_trickling_server(
    serve: Callable[[Script], ScriptServer], ca_file: str
) -> None:
    # A record header announcing 16 KiB, then a byte every 20 ms: each read succeeds, so only
    # a deadline over the whole handshake stops it (per-read timeouts would take minutes).
    def trickle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"\x16\x03\x03\x40\x00")
        for _ in range(500):
            if server.stopping():
                return
            try:
                conn.sendall(b"\x02")
            except OSError:
                return  # the client gave up
            time.sleep(0.02)

    server = serve(trickle)
    with tether.Session(verify=ca_file) as s:
        started = time.monotonic()
        with pytest.raises(tether.ConnectTimeout):
            s.get(f"https://127.0.0.1:{server.port}/", timeout=tether.Timeout(connect=0.4))
        assert time.monotonic() - started < 3


def test_server_speaking_plain_http_is_a_tls_error(
    serve: Callable[[Script], ScriptServer], ca_file: str
) -> None:
    def plain_http(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    server = serve(plain_http)
    with tether.Session(verify=ca_file) as s, pytest.raises(tether.TLSError) as excinfo:
        s.get(f"https://127.0.0.1:{server.port}/")
    assert "handshake" in str(excinfo.value)
    assert str(server.port) in str(excinfo.value)


# -- the idle check -------------------------------------------------------------------------


def test_idle_state_tells_tickets_from_data_and_close(
    serve: Callable[[Script], ScriptServer],
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> None:
    step = threading.Event()

    def scripted(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"0")  # flushes the session tickets ahead of it
            step.wait(5)
            step.clear()
            tls.sendall(b"unsolicited")
            step.wait(5)
            close_notify(tls)

    server = serve(scripted)
    with dial(server, client_ctx) as sock:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        sock.settimeout(5.0)
        assert sock.recv(1) == b"0"
        # What is left readable can only be tickets (TLS 1.3): not data, not a close.
        assert idle_socket_state(sock, poller) == "ok"
        step.set()
        assert poller.poll(5000)
        assert idle_socket_state(sock, poller) == "data"
        step.set()
        wait_for_fin(sock)
        sock.recv(65536)  # the rest of the unsolicited bytes
        assert idle_socket_state(sock, poller) == "closed"
