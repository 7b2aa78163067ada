"""Hand-written HTTP/2 client of raw frames over TLS: the HTTP/2 floor.

The least work an HTTP/2 client in Python can do per request, so that a library
row can be compared with what the protocol itself costs:

* the request HEADERS block is HPACK-encoded once, with no dynamic-table insertion
  (static-table indexed fields and literals *without indexing*), so the same bytes
  are valid on every stream; only the stream id in the 9-byte frame header changes;
* response frames are parsed with ``struct.unpack_from`` over one buffer;
* TLS runs through memory BIOs, so one ``recv`` system call takes every record the
  kernel holds and every queued frame leaves in one ``send``;
* response header blocks are decoded with jh2's Rust HPACK decoder (needed: nginx
  indexes its response headers, so the decoder's table must follow them);
* the connection window is raised to 1 GiB at start and stream windows via
  SETTINGS_INITIAL_WINDOW_SIZE, so consumed DATA is returned in rare batches;
* SETTINGS and PING are acknowledged, GOAWAY stops new streams, RST_STREAM fails.

``ctx.concurrency`` streams are kept in flight (1: sequential; 16: refilled as
each completes).  Every body is checked like the other rows.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from typing import Any

from jh2._hazmat import Decoder

from .drivers import BadResponse, Ctx, Params, check_full
from .util import info

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# frame types (RFC 9113 6)
DATA, HEADERS, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = 0, 1, 3, 4, 5, 6, 7
WINDOW_UPDATE = 8
CONTINUATION = 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT, SETTINGS_INITIAL_WINDOW = 0x2, 0x3, 0x4
WINDOW = 2**30  # 1 GiB: connection and stream receive windows
UPDATE_EVERY = 2**24  # return consumed DATA to the connection window every 16 MiB
FRAME_HEADER = struct.Struct(">HBBBI")  # 24-bit length as 16+8, type, flags, stream id


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return FRAME_HEADER.pack(n >> 8, n & 0xFF, ftype, flags, sid) + payload


def hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    """HPACK integer (RFC 7541 5.1) with ``first`` holding the pattern bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def request_block(path: str, authority: str) -> bytes:
    """GET header block that never touches the dynamic table (safe to resend)."""
    block = bytearray(b"\x82\x87")  # indexed static: ":method: GET", ":scheme: https"
    # literal without indexing, name from the static table (4 = :path, 1 = :authority)
    for name_index, value in ((4, path), (1, authority)):
        raw = value.encode()
        block += hpack_int(name_index, 4, 0x00) + hpack_int(len(raw), 7, 0x00) + raw
    return bytes(block)


class TLSPipe:
    """TLS over a raw socket through memory BIOs: one ``recv`` system call takes every
    TLS record the kernel holds (``SSLSocket.recv`` returns one record per call), and
    one ``sendall`` sends every frame queued."""

    def __init__(self, ctx: Ctx) -> None:
        self.raw = socket.create_connection((ctx.host, ctx.port), timeout=30)
        try:
            self.raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Blocking calls bounded by the kernel (30 s) rather than a Python timeout,
            # which would add a poll() system call before every recv and send.
            self.raw.settimeout(None)
            for opt in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
                self.raw.setsockopt(socket.SOL_SOCKET, opt, struct.pack("ll", 30, 0))
            self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self.tls = ctx.ssl_context(["h2"]).wrap_bio(
                self.incoming, self.outgoing, server_hostname=ctx.host
            )
            self._handshake()
        except BaseException:
            self.raw.close()
            raise

    def _handshake(self) -> None:
        for _ in range(100):  # a TLS handshake takes a few round trips, never 100
            try:
                self.tls.do_handshake()
                self.raw.sendall(self.outgoing.read())
                return
            except ssl.SSLWantReadError:
                self.raw.sendall(self.outgoing.read())
                self._fill()
        raise BadResponse("TLS handshake did not finish in 100 round trips")

    def _fill(self) -> None:
        try:
            data = self.raw.recv(262144)
        except BlockingIOError:  # SO_RCVTIMEO expired
            raise TimeoutError("no data from the server for 30 s") from None
        if not data:
            raise ConnectionError("server closed the connection")
        self.incoming.write(data)

    def selected_alpn_protocol(self) -> str | None:
        return self.tls.selected_alpn_protocol()

    def recv(self) -> bytes:
        """Block for data, then return all the plaintext that arrived with it."""
        read = self.tls.read
        chunks: list[bytes] = []
        while not chunks:
            self._fill()
            while True:
                try:
                    chunks.append(read(262144))
                except ssl.SSLWantReadError:
                    break
        return b"".join(chunks) if len(chunks) > 1 else chunks[0]

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self.raw.sendall(self.outgoing.read())

    def close(self) -> None:
        self.raw.close()


class H2Loop:
    """One HTTP/2 connection driven by hand; ``pump`` runs the bounded request loop."""

    def __init__(self, ctx: Ctx, expected: bytes) -> None:
        self.sock = TLSPipe(ctx)
        self.expected = expected
        self.concurrency = ctx.concurrency
        self.block = request_block(ctx.path, ctx.authority)
        self.decoder = Decoder()
        self.buf = b""
        self.next_sid = 1
        self.unacked = 0  # DATA bytes consumed and not yet returned to the connection window
        self.goaway: str | None = None
        self.server_max = 2**31 - 1
        self.settings_acked = False
        self.server_settings = False
        self.status: dict[int, int] = {}
        self.bodies: dict[int, list[bytes]] = {}
        self.completed = 0
        self.full_every = 1

    def close(self) -> None:
        self.sock.close()

    def handshake(self) -> None:
        if self.sock.selected_alpn_protocol() != "h2":
            raise BadResponse(f"ALPN gave {self.sock.selected_alpn_protocol()!r}, not h2")
        settings = struct.pack(">HIHI", SETTINGS_ENABLE_PUSH, 0, SETTINGS_INITIAL_WINDOW, WINDOW)
        self.sock.sendall(
            PREFACE
            + frame(SETTINGS, 0, 0, settings)
            + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", WINDOW - 65535))
        )
        deadline = time.perf_counter() + 10
        while not (self.settings_acked and self.server_settings):
            if time.perf_counter() > deadline:
                raise TimeoutError("no SETTINGS exchange within 10 s")
            self._receive()

    def _receive(self) -> None:
        """Read once from the socket and handle every complete frame in the buffer."""
        data = self.sock.recv()
        buf = self.buf + data if self.buf else data
        pos, end = 0, len(buf)
        unpack = FRAME_HEADER.unpack_from
        out: list[bytes] = []
        while end - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            length = (hi << 8) | lo
            if end - pos - 9 < length:
                break
            payload = buf[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if ftype == DATA:
                self.unacked += length
                if flags & PADDED:
                    payload = payload[1 : length - payload[0]]
                self.bodies[sid].append(payload)
                if flags & END_STREAM:
                    self._complete(sid)
            elif ftype == HEADERS:
                self._headers(sid, flags, payload)
                if flags & END_HEADERS and flags & END_STREAM:
                    self._complete(sid)
            elif ftype == SETTINGS:
                self._settings(flags, payload, out)
            elif ftype == PING and not flags & ACK:
                out.append(frame(PING, ACK, 0, payload))
            elif ftype == GOAWAY:
                last, code = struct.unpack_from(">II", payload)
                self.goaway = f"GOAWAY last_stream_id={last & 0x7FFFFFFF} error={code}"
            elif ftype == RST_STREAM:
                raise BadResponse(f"stream {sid} reset: error {struct.unpack('>I', payload)[0]}")
            elif ftype in (PUSH_PROMISE, CONTINUATION):
                raise BadResponse(f"unexpected frame type {ftype} on stream {sid}")
        self.buf = buf[pos:]
        if self.unacked >= UPDATE_EVERY:
            out.append(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self.unacked)))
            self.unacked = 0
        if out:
            self.sock.sendall(b"".join(out))

    def _headers(self, sid: int, flags: int, payload: bytes) -> None:
        if flags & PADDED:
            payload = payload[1 : len(payload) - payload[0]]
        if flags & PRIORITY:
            payload = payload[5:]
        if not flags & END_HEADERS:
            # CONTINUATION frames would follow; nginx never splits a 13-byte response.
            raise BadResponse(f"HEADERS without END_HEADERS on stream {sid}")
        fields = self.decoder.decode(payload)
        if self.status.get(sid):
            return  # trailers: decoded for the HPACK state, nothing else to do
        for name, value, _ in fields:
            if name == b":status":
                self.status[sid] = int(value)
                break

    def _settings(self, flags: int, payload: bytes, out: list[bytes]) -> None:
        if flags & ACK:
            self.settings_acked = True
            return
        for i in range(0, len(payload) - 5, 6):
            ident, value = struct.unpack_from(">HI", payload, i)
            if ident == SETTINGS_MAX_CONCURRENT:
                self.server_max = value
        self.server_settings = True
        out.append(frame(SETTINGS, ACK, 0))

    def _complete(self, sid: int) -> None:
        body = b"".join(self.bodies.pop(sid))
        status = self.status.pop(sid)
        expected = self.expected
        if status != 200 or len(body) != len(expected) or not self.completed % self.full_every:
            check_full(status, body, expected)
        self.completed += 1

    def pump(self, total: int, seconds: float, full_every: int) -> int:
        """Complete up to ``total`` requests within ``seconds``; return how many."""
        perf = time.perf_counter
        deadline = perf() + seconds
        self.completed = 0
        self.full_every = full_every
        started = 0
        window = min(self.concurrency, self.server_max)
        block = self.block
        # length, type and flags of the request HEADERS frame; the stream id follows
        head = frame(HEADERS, END_STREAM | END_HEADERS, 0, block)[:5]
        pack_sid = struct.Struct(">I").pack
        while True:
            burst: list[bytes] = []
            while (
                started - self.completed < window
                and started < total
                and self.goaway is None
                and perf() < deadline
            ):
                sid = self.next_sid
                self.next_sid += 2
                burst.append(head + pack_sid(sid) + block)
                self.status[sid] = 0
                self.bodies[sid] = []
                started += 1
            if burst:
                self.sock.sendall(b"".join(burst))
            if self.completed == started:
                return self.completed  # done, time is up, or GOAWAY with nothing in flight
            self._receive()


def run(ctx: Ctx, p: Params) -> dict[str, Any]:
    loop = H2Loop(ctx, p.expected)
    try:
        loop.handshake()
        loop.pump(p.warmup, 30.0, 1)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        done = loop.pump(p.n, p.t, 64)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        loop.close()
    res: dict[str, Any] = {
        "ok": True,
        "requests": done,
        "wall_s": wall,
        "cpu_s": cpu,
        "warmup": p.warmup,
        "client_connections": 1,
        "info": info("jh2") | {"http_versions": "h2"},
    }
    if loop.goaway:
        res["note"] = f"server sent {loop.goaway}"
    return res
