"""Test-only HTTP/2 clients over real sockets: ``H2Client`` (h2's client side) and
``RawH2Client`` (hand-made frames, for watching exactly what a faulty server sends).

Neither is tether: they exist to test ``tether.testing.H2TestServer`` before tether has an
HTTP/2 client. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass
class Response:
    """What one stream received."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    trailers: dict[str, str] = field(default_factory=dict)
    ended: bool = False
    reset: int | None = None  # RST_STREAM error code


def _connect(port: int, tls: ssl.SSLContext | None, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, port), timeout=5.0)
    if tls is None:
        return sock
    try:
        return tls.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


class H2Client:
    """h2's client side on a socket; ``pump(until)`` reads and dispatches events."""

    def __init__(
        self,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        window: int | None = None,
        auto_ack: bool = True,
    ) -> None:
        self.sock = _connect(port, tls)
        config = h2.config.H2Configuration(client_side=True, header_encoding="latin-1")
        self.h2 = h2.connection.H2Connection(config)
        self.h2.initiate_connection()
        if window is not None:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.auto_ack = auto_ack
        self.responses: dict[int, Response] = {}
        self.goaways: list[tuple[int, int]] = []  # (last_stream_id, error_code)
        self.uploads: dict[int, bytes] = {}
        self.error: h2.exceptions.ProtocolError | None = None
        self.eof = False
        self.unacked: dict[int, int] = {}
        self._flush()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, path: str, method: str = "GET", body: bytes = b"") -> int:
        """Open a stream for ``path``; the body is sent as flow control allows."""
        sid = self.h2.get_next_available_stream_id()
        head = [(":method", method), (":scheme", "http"), (":authority", "t"), (":path", path)]
        if body:
            head.append(("content-length", str(len(body))))
        self.h2.send_headers(sid, head, end_stream=not body)
        self.responses[sid] = Response()
        if body:
            self.uploads[sid] = body
        self._send_uploads()
        self._flush()
        return sid

    def pump(self, until: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Read until ``until()`` holds, EOF, a protocol error, or ``timeout``; return until()."""
        deadline = time.monotonic() + timeout
        while not until() and not self.eof and self.error is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                break
            self._receive(data)
        return until()

    def done(self, *sids: int) -> Callable[[], bool]:
        """A predicate: every stream in ``sids`` ended or was reset."""
        return lambda: all(
            self.responses[s].ended or self.responses[s].reset is not None for s in sids
        )

    def ack(self) -> None:
        """Give back the flow-control credit for everything received so far."""
        for sid, size in self.unacked.items():
            self.h2.acknowledge_received_data(size, sid)
        self.unacked.clear()
        self._flush()

    def _receive(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.error = exc  # h2 queued a GOAWAY: send it, like a real client would
            self._flush()
            return
        for event in events:
            self._handle(event)
        self._send_uploads()
        self._flush()

    def _handle(self, event: h2.events.Event) -> None:
        sid = getattr(event, "stream_id", None)
        resp = self.responses.get(sid) if sid else None
        if isinstance(event, h2.events.ResponseReceived) and resp is not None:
            headers = dict(event.headers or [])
            resp.status = int(headers.pop(":status"))
            resp.headers = headers
        elif isinstance(event, h2.events.DataReceived) and resp is not None:
            resp.data += event.data or b""
            size = event.flow_controlled_length or 0
            if self.auto_ack:
                self.h2.acknowledge_received_data(size, event.stream_id or 0)
            else:
                sid = event.stream_id or 0
                self.unacked[sid] = self.unacked.get(sid, 0) + size
        elif isinstance(event, h2.events.TrailersReceived) and resp is not None:
            resp.trailers = dict(event.headers or [])
        elif isinstance(event, h2.events.StreamEnded) and resp is not None:
            resp.ended = True
        elif isinstance(event, h2.events.StreamReset) and resp is not None:
            resp.reset = int(event.error_code or 0)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaways.append((event.last_stream_id or 0, int(event.error_code or 0)))

    def _send_uploads(self) -> None:
        for sid, body in list(self.uploads.items()):
            while body:
                room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
                if room <= 0:
                    break
                chunk, body = body[:room], body[room:]
                self.h2.send_data(sid, chunk, end_stream=not body)
            if body:
                self.uploads[sid] = body
            else:
                del self.uploads[sid]

    def _flush(self) -> None:
        if data := self.h2.data_to_send():
            self.sock.sendall(data)


@dataclass
class Frame:
    """One frame as read off the wire; ``headers`` decoded for a complete HEADERS block."""

    type: int
    flags: int
    stream_id: int
    payload: bytes
    headers: dict[str, str] | None = None


class RawH2Client:
    """Sends a preface, an empty SETTINGS and a GET per path; reads frames as they come.

    It never answers SETTINGS or PINGs and never sends WINDOW_UPDATE: what arrives is
    exactly what the server chose to send.
    """

    def __init__(self, port: int, *paths: str, host: str = "127.0.0.1") -> None:
        self.sock = _connect(port, None, host)
        self.decoder = hpack.Decoder()
        self.buf = bytearray()
        self.eof = False
        encoder = hpack.Encoder()
        out = PREFACE + _frame(4, 0, 0)
        for i, path in enumerate(paths):
            head = [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", path)]
            out += _frame(1, 0x5, 1 + 2 * i, encoder.encode(head))
        self.sock.sendall(out)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawH2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(self, timeout: float = 10.0) -> list[Frame]:
        """Every frame until EOF or ``timeout``, in order."""
        return list(self.iter_frames(timeout))

    def iter_frames(self, timeout: float = 10.0) -> Iterator[Frame]:
        """Yield frames until EOF or ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            while (f := self._next_frame()) is not None:
                yield f
            left = deadline - time.monotonic()
            if self.eof or left <= 0:
                return
            self.sock.settimeout(min(left, 0.5))
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
            self.buf += data

    def _next_frame(self) -> Frame | None:
        if len(self.buf) < 9:
            return None
        length = int.from_bytes(self.buf[:3], "big")
        if len(self.buf) < 9 + length:
            return None
        ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
        f = Frame(ftype, flags, sid & 0x7FFFFFFF, bytes(self.buf[9 : 9 + length]))
        del self.buf[: 9 + length]
        if ftype == 1 and flags & 0x4 and not flags & 0x28:  # no padding, no priority
            f.headers = {}
            for name, value in self.decoder.decode(f.payload):
                f.headers.setdefault(str(name), str(value))
        return f


def _frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload
