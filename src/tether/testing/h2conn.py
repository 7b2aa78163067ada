"""One H2TestServer connection: a single-threaded event loop over ``h2``'s server side.

Everything of one connection runs on its own thread: reading, ``h2`` state, timers (for
``/slow`` and delayed WINDOW_UPDATEs) and bodies waiting for flow-control credit. Writes
are non-blocking and keep reading while the client's window is full, so a client that
writes while we write (SETTINGS ACKs during a flood, an upload during a download) never
deadlocks with us. Nothing blocks longer than ``_STALL`` without progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import json
import selectors
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from .h2faults import FAULTS, GOAWAY, After, BadArgument, FaultInput, arg_int, frame
from .testserver import _raw_shutdown, pattern_bytes

if TYPE_CHECKING:
    from .h2server import H2TestServer

__all__ = ["Session"]

Header = tuple[bytes, bytes]

_STALL = 10.0  # a write that makes no progress this long ends the connection
_LINGER = 1.0  # after our FIN, drain the client's bytes this long so the close is not a RST
_HANDSHAKE = 5.0
_MAX_INBOX = 16 * 1024 * 1024  # bytes read during a long write, not yet given to h2
_MAX_BODY = 64 * 1024 * 1024
_MAX_MS = 60_000
_GRANT = 65535  # credit per request stream when initial_window_size is 0
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Stop(Exception):
    """stop() was called: leave the connection loop now."""


class _CloseNow(Exception):
    """The route wants the connection closed (FIN) right after what it sent."""


class _Stream:
    """One request stream as the server sees it."""

    __slots__ = (
        "answered",
        "authority",
        "headers",
        "id",
        "ignored",
        "length",
        "method",
        "path",
        "sha",
    )

    def __init__(self, sid: int, method: str, path: str, headers: list[Header]) -> None:
        self.id = sid
        self.method = method
        self.path = path
        self.headers = headers
        self.length = 0
        self.authority = ""
        self.sha = hashlib.sha256()
        self.answered = False  # the server is done with it (END_STREAM, RST or a fault)
        self.ignored = False  # beyond a GOAWAY's last stream id: never answered


class _Body:
    """A response body waiting for flow-control credit, then optional trailers."""

    __slots__ = ("data", "offset", "stream", "trailers")

    def __init__(self, stream: _Stream, data: bytes, trailers: list[Header] | None) -> None:
        self.stream = stream
        self.data = data
        self.offset = 0
        self.trailers = trailers


class Session:
    """Server side of one TCP connection; ``run()`` returns when it should be closed."""

    def __init__(self, server: H2TestServer, sock: socket.socket, cid: int) -> None:
        self.server = server
        self.sock = sock
        self.id = cid
        config = h2.config.H2Configuration(
            client_side=False, validate_inbound_headers=True, header_encoding=None
        )
        self.h2 = h2.connection.H2Connection(config)
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=server._settings)
        self.streams: dict[int, _Stream] = {}
        self.bodies: dict[int, _Body] = {}
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.inbox = bytearray()
        self.eof = False
        self.goaway_last: int | None = None
        self.first_authority: str | None = None  # the host whose request opened it
        self.seen = 0
        self.sel: selectors.BaseSelector = selectors.DefaultSelector()

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until the client leaves, a GOAWAY's streams are done, or stop()."""
        if not self._handshake():
            return
        self.sock.setblocking(False)
        wake = self.server._wake
        assert wake is not None
        with self.sel:
            self.sel.register(self.sock, selectors.EVENT_READ)
            self.sel.register(wake[0], selectors.EVENT_READ)
            self.h2.initiate_connection()
            self._flush()
            try:
                self._loop()
            except _CloseNow:
                self._flush()
            self._linger()

    def _loop(self) -> None:
        while True:  # each pass waits for the socket or a timer; stop() wakes it
            self._receive(self._wait_readable(self._next_timer()))
            if self.eof:
                return
            self._run_timers()
            self._pump()
            self._flush()
            if self.goaway_last is not None and self._goaway_done():
                return

    def _handshake(self) -> bool:
        tls = self.server._tls
        if tls is None:
            return True
        with self.server._lock:  # swap atomically with respect to stop()'s shutdown
            wrapped = tls.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock = wrapped
        wrapped.settimeout(_HANDSHAKE)
        wrapped.do_handshake()
        return wrapped.selected_alpn_protocol() == "h2"  # no h2, no service (like nghttpd)

    def _wait_readable(self, timeout: float | None) -> bool:
        if self.server._stopping.is_set():
            raise Stop
        if self.inbox or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return True
        ready = False
        for key, _ in self.sel.select(timeout):
            if key.fileobj is not self.sock:
                raise Stop
            ready = True
        return ready

    def _recv(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except _WOULD_BLOCK:
            return b""
        if not data:
            self.eof = True
        return data

    def _receive(self, ready: bool) -> None:
        data = bytes(self.inbox)
        self.inbox.clear()
        if ready:
            data += self._recv()
        if not data:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()  # the client broke the protocol: h2 queued our GOAWAY
            self.eof = True
            return
        for event in events:
            self._handle(event)

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + _STALL
        while view:
            try:
                sent = self.sock.send(view[: 256 * 1024])
            except _WOULD_BLOCK:
                sent = 0
            if sent:
                view = view[sent:]
                deadline = time.monotonic() + _STALL
            else:
                self._wait_writable(deadline)

    def _wait_writable(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("client stopped reading")
        reading = len(self.inbox) < _MAX_INBOX
        events = selectors.EVENT_WRITE | (selectors.EVENT_READ if reading else 0)
        self.sel.modify(self.sock, events)
        try:
            for key, mask in self.sel.select(left):
                if key.fileobj is not self.sock:
                    raise Stop
                if mask & selectors.EVENT_READ:
                    self.inbox += self._recv()
                    if self.eof:
                        raise ConnectionResetError("client closed while the server wrote")
        finally:
            self.sel.modify(self.sock, selectors.EVENT_READ)

    def _flush(self) -> None:
        if data := self.h2.data_to_send():
            self._send(data)

    def _linger(self) -> None:
        # Closing with unread input makes the kernel send RST, which can destroy what we
        # sent last; so FIN first and drain until the client closes too (bounded).
        _raw_shutdown(self.sock, socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER
        while not self.eof and (left := deadline - time.monotonic()) > 0:
            if self._wait_readable(left):
                self.inbox.clear()
                self._recv()

    # -- timers ------------------------------------------------------------------------------

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.seq), action))

    def _next_timer(self) -> float | None:
        return max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            heapq.heappop(self.timers)[2]()

    # -- h2 events ---------------------------------------------------------------------------

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.StreamEnded):
            if (stream := self.streams.get(event.stream_id)) is not None:
                self._dispatch(stream)
        elif isinstance(event, h2.events.StreamReset):
            self.bodies.pop(event.stream_id, None)
            if (stream := self.streams.get(event.stream_id)) is not None:
                stream.answered = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.eof = True  # the client said goodbye; h2 will send nothing more

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        assert event.stream_id is not None and event.headers is not None
        fields = [(bytes(n), bytes(v)) for n, v in event.headers]
        pseudo = {n: v.decode("latin-1") for n, v in fields if n.startswith(b":")}
        regular = [(n, v) for n, v in fields if not n.startswith(b":")]
        sid = event.stream_id
        stream = _Stream(sid, pseudo.get(b":method", ""), pseudo.get(b":path", ""), regular)
        stream.authority = pseudo.get(b":authority", "")
        self.streams[sid] = stream
        self.seen += 1
        self.server._count(streams=1)
        if self.goaway_last is not None and sid > self.goaway_last:
            stream.ignored = True
        elif self.server._goaway_after == self.seen:
            self._goaway(sid, ErrorCodes.NO_ERROR)
        if event.stream_ended is None and self.h2.local_settings.initial_window_size == 0:
            self._later(self.server._upload_delay, lambda: self._grant(sid))

    def _grant(self, sid: int) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self.h2.increment_flow_control_window(_GRANT, stream_id=sid)

    def _on_data(self, event: h2.events.DataReceived) -> None:
        assert event.stream_id is not None and event.data is not None
        sid, size = event.stream_id, event.flow_controlled_length or 0
        if (stream := self.streams.get(sid)) is not None:
            stream.length += len(event.data)
            stream.sha.update(event.data)
        self._later(self.server._upload_delay, lambda: self._ack(size, sid))

    def _ack(self, size: int, sid: int) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self.h2.acknowledge_received_data(size, sid)

    def _goaway(self, last: int, code: int) -> None:
        if self.goaway_last is not None:
            last = min(last, self.goaway_last)
        self.goaway_last = last
        self._flush()  # what h2 queued goes first; h2 must not know (it would stop sending)
        self._send(frame(GOAWAY, 0, 0, struct.pack(">II", last, code)))
        self.server._count(goaways=1)
        for stream in self.streams.values():
            stream.ignored = stream.ignored or stream.id > last

    def _goaway_done(self) -> bool:
        return not self.bodies and all(s.answered or s.ignored for s in self.streams.values())

    # -- responses ---------------------------------------------------------------------------

    def _respond(
        self,
        stream: _Stream,
        status: int = 200,
        headers: list[Header] | None = None,
        body: bytes = b"",
        trailers: list[Header] | None = None,
    ) -> None:
        if stream.answered:
            return  # the client reset it while we waited
        length = str(len(body)).encode()
        head = [(b":status", str(status).encode()), *(headers or []), (b"content-length", length)]
        end = not body and not trailers
        self.h2.send_headers(stream.id, head, end_stream=end)
        if end:
            stream.answered = True
        else:
            self.bodies[stream.id] = _Body(stream, body, trailers)
            self._pump()

    def _hello(self, stream: _Stream) -> None:
        body = f"hello conn={self.id} stream={stream.id}\n".encode()
        headers = [(b"content-type", b"text/plain"), (b"x-conn", str(self.id).encode())]
        self._respond(stream, 200, headers, body)

    def _pump(self) -> None:
        for sid, body in list(self.bodies.items()):
            try:
                self._pump_one(body)
            except h2.exceptions.StreamClosedError:
                del self.bodies[sid]
                body.stream.answered = True

    def _pump_one(self, body: _Body) -> None:
        sid = body.stream.id
        while body.offset < len(body.data):
            room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size)
            if room <= 0:
                return  # wait for WINDOW_UPDATE (or a SETTINGS raising the window)
            chunk = body.data[body.offset : body.offset + room]
            body.offset += len(chunk)
            last = body.offset == len(body.data) and body.trailers is None
            self.h2.send_data(sid, chunk, end_stream=last)
        if body.trailers is not None:
            self.h2.send_headers(sid, body.trailers, end_stream=True)
        del self.bodies[sid]
        body.stream.answered = True

    def _partial(self, stream: _Stream) -> None:
        """A head announcing 1000 bytes and the first 100 (or what the window allows)."""
        head = [(b":status", b"200"), (b"content-length", b"1000")]
        self.h2.send_headers(stream.id, head)
        room = min(100, self.h2.local_flow_control_window(stream.id))
        if room > 0:
            self.h2.send_data(stream.id, pattern_bytes(room))

    # -- routes ------------------------------------------------------------------------------

    def _dispatch(self, stream: _Stream) -> None:
        if self.first_authority is None:
            self.first_authority = stream.authority
        with self.server._lock:
            record = (self.id, stream.id, stream.method, stream.path, stream.length)
            self.server.requests.append(record)
        if stream.ignored:
            return
        path, _, query = stream.path.partition("?")
        try:
            self._route(stream, path, parse_qs(query, keep_blank_values=True))
        except BadArgument as exc:
            self._respond(stream, 400, [(b"content-type", b"text/plain")], f"{exc}\n".encode())

    def _route(self, stream: _Stream, path: str, args: dict[str, list[str]]) -> None:
        sid = stream.id
        if path in FAULTS:
            self._fault(stream, path, args)
        elif path == "/echo":
            self._respond(stream, 200, [(b"content-type", b"application/json")], self._echo(stream))
        elif path == "/slow":
            ms = arg_int(args, "ms", 200, _MAX_MS)
            self._later(ms / 1000, lambda: self._hello(stream))
        elif path.startswith("/bytes/"):
            n = arg_int({"n": [path[len("/bytes/") :]]}, "n", 0, _MAX_BODY)
            self._respond(
                stream, 200, [(b"content-type", b"application/octet-stream")], pattern_bytes(n)
            )
        elif path == "/trailers":
            data = pattern_bytes(arg_int(args, "n", 1000, _MAX_BODY))
            trailers = [(b"x-checksum", hashlib.sha256(data).hexdigest().encode())]
            self._respond(stream, 200, [(b"trailer", b"x-checksum")], data, trailers)
        elif path == "/goaway":
            back = arg_int(args, "last", 0, sid // 2)
            self._goaway(sid - 2 * back, arg_int(args, "code", 0, 0xFFFFFFFF))
            if back == 0:
                self._hello(stream)
        elif path == "/refuse" or (path == "/refuse-once" and self.server._first_sighting(path)):
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            stream.answered = True
        elif path == "/rst-mid-body":
            self._partial(stream)
            self.h2.reset_stream(sid, ErrorCodes.INTERNAL_ERROR)
            stream.answered = True
        elif path == "/lower-streams":
            to = arg_int(args, "to", 1, 2**31 - 1)
            self.h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: to})
            self._hello(stream)
        elif path == "/misdirected":  # 421 when another host opened this connection
            if stream.authority != self.first_authority:
                self._respond(stream, 421, [(b"content-type", b"text/plain")], b"misdirected\n")
            else:
                self._hello(stream)
        elif path == "/close-mid-stream":
            self._partial(stream)
            raise _CloseNow
        else:
            self._hello(stream)

    def _echo(self, stream: _Stream) -> bytes:
        doc = {
            "method": stream.method,
            "path": stream.path,
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in stream.headers],
            "body_length": stream.length,
            "body_sha256": stream.sha.hexdigest(),
            "connection_id": self.id,
            "stream_id": stream.id,
        }
        return json.dumps(doc).encode()

    def _fault(self, stream: _Stream, path: str, args: dict[str, list[str]]) -> None:
        window = self.h2.local_flow_control_window(stream.id)
        given = FaultInput(stream.id, args, self.h2.max_outbound_frame_size, window)
        chunks, after = FAULTS[path](given)  # arguments are checked before a byte is sent
        self._flush()  # raw bytes bypass h2: what it queued goes first
        for chunk in chunks:  # a client that closes or stops reading ends this (OSError)
            self._send(chunk)
        stream.answered = after is not After.RESPOND
        if after is After.RESPOND:
            self._hello(stream)
        elif after is After.CLOSE:
            raise _CloseNow
