"""The pure-Python floor: a hand-written HTTP/1.1 GET over a raw (or TLS) socket.

It sends a fixed request and parses just enough of the response (status line,
end of headers, Content-Length) to read the body.  Not a general client.
"""

from __future__ import annotations

import socket

from .drivers import Ctx, SyncClient
from .util import info


def _connect(ctx: Ctx, ssl_ctx: object | None) -> socket.socket:
    sock = socket.create_connection((ctx.host, ctx.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ssl_ctx is not None:
        sock = ssl_ctx.wrap_socket(sock, server_hostname=ctx.host)  # type: ignore[attr-defined]
    return sock


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytes, bytearray]:
    """Read one response from ``sock``; ``buf`` holds bytes already received.
    Returns (status, body, leftover bytes)."""
    recv = sock.recv
    while (end := buf.find(b"\r\n\r\n")) < 0:
        chunk = recv(262144)
        if not chunk:
            raise ConnectionError("connection closed before the headers ended")
        buf += chunk
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    i = head.find(b"\r\ncontent-length:")
    if i < 0:
        raise ValueError("no Content-Length in response")
    j = head.find(b"\r\n", i + 2)
    length = int(head[i + 17 : j if j >= 0 else len(head)])
    start = end + 4
    need = start + length
    while len(buf) < need:
        chunk = recv(262144)
        if not chunk:
            raise ConnectionError("connection closed in the body")
        buf += chunk
    return status, bytes(buf[start:need]), buf[need:]


def persistent(ctx: Ctx) -> SyncClient:
    request = f"GET {ctx.path} HTTP/1.1\r\nHost: {ctx.authority}\r\n\r\n".encode()
    ssl_ctx = ctx.ssl_context(["http/1.1"]) if ctx.tls else None
    sock = _connect(ctx, ssl_ctx)
    opened = [1]
    state = [bytearray()]

    def get() -> tuple[int, bytes]:
        sock.sendall(request)
        status, body, state[0] = _read_response(sock, state[0])
        return status, body

    return SyncClient(get=get, close=sock.close, connections=lambda: opened[0], info=info())


def cold(ctx: Ctx) -> SyncClient:
    request = (
        f"GET {ctx.path} HTTP/1.1\r\nHost: {ctx.authority}\r\nConnection: close\r\n\r\n"
    ).encode()
    ssl_ctx = ctx.ssl_context(["http/1.1"]) if ctx.tls else None
    opened = [0]

    def get() -> tuple[int, bytes]:
        sock = _connect(ctx, ssl_ctx)
        opened[0] += 1
        try:
            sock.sendall(request)
            status, body, _ = _read_response(sock, bytearray())
        finally:
            sock.close()
        return status, body

    return SyncClient(get=get, connections=lambda: opened[0], info=info())
