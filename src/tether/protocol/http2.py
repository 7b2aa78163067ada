"""HTTP/2 for a client, sans-I/O: frames out as bytes, bytes in as events. No socket, no clock.

Our own framing (one ``struct`` call per frame header, a bytearray input buffer) over jh2's
HPACK, because a whole request must cost well under 40 us of Python (bench/h2_engines.py).

The rules that decide state live here:

- A stream is *open* from ``send_headers`` until both sides ended it, or it was reset (by
  either side, or by a stream error we found), or a GOAWAY refused it. ``open_streams`` counts
  exactly those; the pool's capacity rests on it.
- Output is pulled: each ``send_*`` call returns its frames, and the frames ``receive`` owes the
  peer (ACKs, RST_STREAM, WINDOW_UPDATE, GOAWAY) wait in ``data_to_send()``.
- A *stream error* in what the peer sent queues RST_STREAM and reports ``StreamReset(remote=
  False)``; a *connection error* queues GOAWAY, closes this object and raises H2ProtocolError.
- Flow control: credit goes back to the peer only through ``acknowledge`` (the application
  took the bytes), or at once for bytes of a stream that is reset or ignored (RFC 9113 6.9).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import NoReturn

from jh2._hazmat import Decoder, Encoder, HPACKError, OversizedHeaderListError

from ..exceptions import H2ProtocolError, LocalProtocolError
from . import h2frames as f
from .h2events import (
    Data,
    Event,
    GoAway,
    PingAcked,
    ResponseHeaders,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)
from .h2frames import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_MAX_HEADER_LIST_SIZE,
    DEFAULT_STREAM_WINDOW,
    ErrorCode,
)
from .h2headers import (
    SENSITIVE,
    MalformedHeaders,
    content_length,
    parse_response_head,
    parse_trailers,
    request_headers,
)

__all__ = [
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_MAX_HEADER_LIST_SIZE",
    "DEFAULT_STREAM_WINDOW",
    "Data",
    "ErrorCode",
    "Event",
    "GoAway",
    "H2Protocol",
    "H2ProtocolError",
    "LocalProtocolError",
    "PingAcked",
    "ResponseHeaders",
    "SettingsChanged",
    "StreamReset",
    "Trailers",
    "WindowUpdated",
    "request_headers",
]

CONTROL_BUDGET = 10_000  # control frames allowed beyond the useful ones (flood guard)
MAX_CONTINUATIONS = 256  # frames in one header block
BLOCK_SLACK = 16_384  # compressed block bytes allowed beyond max_header_list_size
RESET_MEMORY = 4096  # how many reset stream ids we remember, to ignore their late frames
_unpack_head = f.HEAD.unpack_from


class _Stream:
    """One stream we opened: its windows and how far each side got."""

    __slots__ = (
        "expected",
        "head_done",
        "head_request",
        "id",
        "local_ended",
        "owed",
        "received",
        "recv_window",
        "remote_ended",
        "send_window",
    )

    def __init__(self, stream_id: int, send_window: int, recv_window: int, head: bool) -> None:
        self.id = stream_id
        self.send_window = send_window  # what the peer lets us send
        self.recv_window = recv_window  # what we let the peer send
        self.owed = 0  # acknowledged bytes not yet returned with a WINDOW_UPDATE
        self.local_ended = False
        self.remote_ended = False
        self.head_done = False  # the final (non-1xx) head arrived
        self.head_request = head  # a response to HEAD has no body, whatever content-length says
        self.expected: int | None = None  # content-length
        self.received = 0


class H2Protocol:
    """One HTTP/2 client connection's state (see the module docstring for its rules).

    Not thread-safe: the driver serialises calls (it holds its write lock across
    ``send_headers`` and the socket write, so stream ids, HPACK state and wire order agree).
    After ``closed`` every method raises LocalProtocolError except ``data_to_send`` and
    ``close``.
    """

    def __init__(
        self,
        *,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        max_header_list_size: int = DEFAULT_MAX_HEADER_LIST_SIZE,
    ) -> None:
        if not 1 <= stream_window <= f.MAX_WINDOW:
            raise ValueError(f"stream_window must be 1..2**31-1, not {stream_window}")
        if not f.SPEC_WINDOW <= connection_window <= f.MAX_WINDOW:
            raise ValueError(f"connection_window must be 65535..2**31-1, not {connection_window}")
        if max_header_list_size < 1:
            raise ValueError(f"max_header_list_size must be positive, not {max_header_list_size}")
        self.peer_max_concurrent_streams = 100
        self.peer_settings_received = False
        self.goaway: GoAway | None = None
        self.closed = False
        self.open_streams = 0
        self.last_stream_id = 0
        self._stream_window = stream_window
        self._connection_window = connection_window
        self._max_header_list_size = max_header_list_size
        self._encoder = Encoder()
        self._decoder = Decoder(max_header_list_size)
        self._buffer = bytearray()
        self._outbox: list[bytes] = []
        self._events: list[Event] = []
        self._streams: dict[int, _Stream] = {}
        self._reset: dict[int, None] = {}  # ids reset or refused: their late frames are ignored
        self._unacked: dict[int, int] = {}  # per stream: flow bytes received, not acknowledged
        self._initiated = False
        self._settings_acked = False
        self._peer_window = f.SPEC_WINDOW  # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self._peer_max_frame = 16_384
        self._conn_send = f.SPEC_WINDOW
        self._conn_recv = f.SPEC_WINDOW
        self._conn_owed = 0
        self._budget = CONTROL_BUDGET
        self._block: bytearray | None = None  # a header block waiting for CONTINUATION
        self._block_stream = 0
        self._block_end = 0
        self._block_frames = 0
        self._handlers: dict[int, Callable[[int, int, bytes], None]] = {
            f.DATA: self._on_data,
            f.HEADERS: self._on_headers,
            f.PRIORITY: self._on_priority,
            f.RST_STREAM: self._on_rst_stream,
            f.SETTINGS: self._on_settings,
            f.PUSH_PROMISE: self._on_push_promise,
            f.PING: self._on_ping,
            f.GOAWAY: self._on_goaway,
            f.WINDOW_UPDATE: self._on_window_update,
            f.CONTINUATION: self._on_continuation,
        }

    # ---- sending -------------------------------------------------------------------------

    def initiate(self) -> bytes:
        """The client preface: magic, our SETTINGS, and the connection window raise."""
        self._check_usable()
        if self._initiated:
            raise LocalProtocolError("initiate() was already called")
        self._initiated = True
        settings = f.settings_frame(
            [
                (f.ENABLE_PUSH, 0),
                (f.INITIAL_WINDOW_SIZE, self._stream_window),
                (f.MAX_HEADER_LIST_SIZE, self._max_header_list_size),
            ]
        )
        out = f.PREFACE + settings
        if self._connection_window > f.SPEC_WINDOW:
            out += f.window_update(0, self._connection_window - f.SPEC_WINDOW)
            self._conn_recv = self._connection_window
        return out

    def send_headers(
        self,
        headers: list[tuple[bytes, bytes]],
        end_stream: bool,
        sensitive: frozenset[bytes] = SENSITIVE,
    ) -> tuple[int, bytes]:
        """Open the next stream with ``headers`` (see ``request_headers``): its id and frames.

        Fields named in ``sensitive`` are encoded never-indexed. The block is split into
        HEADERS and CONTINUATION frames of the peer's maximum frame size.
        """
        self._check_usable()
        if not self._initiated:
            raise LocalProtocolError("initiate() must come before the first stream")
        if self.goaway is not None:
            raise LocalProtocolError("the server sent GOAWAY: no new stream may be opened")
        stream_id = self.last_stream_id + 2 if self.last_stream_id else 1
        if stream_id > f.MAX_STREAM_ID:
            raise LocalProtocolError("stream ids are exhausted: open a new connection")
        block = self._encoder.encode([(n, v, n in sensitive) for n, v in headers])
        head = any(n == b":method" and v == b"HEAD" for n, v in headers[:4])
        stream = _Stream(stream_id, self._peer_window, self._stream_window, head)
        stream.local_ended = end_stream
        self._streams[stream_id] = stream
        self.open_streams += 1
        self.last_stream_id = stream_id
        flags = f.END_STREAM if end_stream else 0
        return stream_id, f.split_frames(
            f.HEADERS, f.CONTINUATION, flags, f.END_HEADERS, stream_id, block, self._peer_max_frame
        )

    def send_data(self, stream_id: int, data: bytes, end_stream: bool) -> bytes:
        """DATA frames for ``data``; ``len(data)`` must fit ``send_window(stream_id)``."""
        stream = self._sending(stream_id)
        size = len(data)
        if size > stream.send_window or size > self._conn_send:
            raise LocalProtocolError(
                f"{size} bytes exceed the send window ({self.send_window(stream_id)}) "
                f"of stream {stream_id}"
            )
        stream.send_window -= size
        self._conn_send -= size
        # Each DATA frame we send may earn WINDOW_UPDATEs back: they are not a flood.
        self._budget = min(CONTROL_BUDGET, self._budget + 2 + 2 * (size // self._peer_max_frame))
        if not end_stream:
            return f.split_frames(f.DATA, f.DATA, 0, 0, stream_id, data, self._peer_max_frame)
        self._end_local(stream)
        return f.split_frames(
            f.DATA, f.DATA, 0, f.END_STREAM, stream_id, data, self._peer_max_frame
        )

    def end_stream(self, stream_id: int) -> bytes:
        """An empty DATA frame with END_STREAM: we have nothing more to send on the stream."""
        return self.send_data(stream_id, b"", True)

    def send_window(self, stream_id: int) -> int:
        """How many bytes ``send_data`` accepts now: the smaller of stream and connection credit.
        May be negative after the peer shrank its initial window."""
        stream = self._sending(stream_id)
        return min(stream.send_window, self._conn_send)

    def acknowledge(self, stream_id: int, n: int) -> bytes:
        """The application consumed ``n`` flow-controlled bytes (``Data.flow_length``) of the
        stream: WINDOW_UPDATE frames once half a window is owed, else b"". A stream that has
        ended only credits the connection; one that was reset was refunded already."""
        self._check_usable()
        if n < 0:
            raise LocalProtocolError(f"cannot acknowledge a negative byte count ({n})")
        unacked = self._unacked.get(stream_id, 0)
        if n > unacked:
            if stream_id in self._reset:
                return b""
            raise LocalProtocolError(
                f"acknowledged {n} bytes on stream {stream_id}; only {unacked} are unacknowledged"
            )
        if n == unacked:
            self._unacked.pop(stream_id, None)
        else:
            self._unacked[stream_id] = unacked - n
        out = b""
        stream = self._streams.get(stream_id)
        if stream is not None and not stream.remote_ended:
            stream.owed += n
            if stream.owed >= max(1, self._stream_window >> 1):
                out = f.window_update(stream_id, stream.owed)
                stream.recv_window += stream.owed
                stream.owed = 0
        return out + self._credit_connection(n)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> bytes:
        """RST_STREAM for an open stream (its unacknowledged credit goes back to the
        connection; its later frames are ignored). A stream already closed needs no frame."""
        self._check_usable()
        stream = self._streams.get(stream_id)
        if stream is not None:
            return f.rst_stream(stream_id, error_code) + self._forget(stream)
        if stream_id % 2 == 0 or stream_id > self.last_stream_id:
            raise LocalProtocolError(f"stream {stream_id} was never opened")
        return self._refund(stream_id)

    def ping(self, opaque: bytes = b"\0" * 8) -> bytes:
        """A PING; the answer arrives as ``PingAcked(opaque)``."""
        self._check_usable()
        if len(opaque) != 8:
            raise LocalProtocolError(f"a PING carries exactly 8 bytes, not {len(opaque)}")
        return f.frame(f.PING, 0, 0, opaque)

    def close(self, error_code: int = ErrorCode.NO_ERROR, debug: bytes = b"") -> bytes:
        """GOAWAY (after any queued frames); the connection is finished. b"" if already closed."""
        if self.closed:
            return b""
        self._shut()
        # last_stream_id names streams the *peer* opened that we processed: a client accepts
        # none (push is off), so it is 0.
        return self.data_to_send() + f.goaway(0, error_code, debug)

    def data_to_send(self) -> bytes:
        """The frames queued by ``receive`` (ACKs, RST_STREAM, WINDOW_UPDATE, GOAWAY), or b""."""
        if not self._outbox:
            return b""
        out = b"".join(self._outbox)
        self._outbox.clear()
        return out

    def stream_ended_remote(self, stream_id: int) -> bool:
        """Whether the peer has finished sending on this stream (or it is closed)."""
        stream = self._streams.get(stream_id)
        return stream is None or stream.remote_ended

    # ---- receiving -----------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """Feed bytes from the socket (split anywhere); the events they complete, in order."""
        self._check_usable()
        buf = self._buffer
        buf += data
        events: list[Event] = []
        self._events = events
        handlers = self._handlers
        pos = 0
        end = len(buf)
        while end - pos >= 9:
            word, flags, stream_id = _unpack_head(buf, pos)
            length = word >> 8
            if length > f.OUR_MAX_FRAME_SIZE:
                self._fail(ErrorCode.FRAME_SIZE_ERROR, f"a {length}-byte frame exceeds 16384")
            if end - pos - 9 < length:
                break
            payload = bytes(buf[pos + 9 : pos + 9 + length])
            pos += 9 + length
            kind = word & 0xFF
            if self._block is not None and kind != f.CONTINUATION:
                self._fail(ErrorCode.PROTOCOL_ERROR, "a header block was interrupted")
            if not self.peer_settings_received and kind != f.SETTINGS:
                self._fail(
                    ErrorCode.PROTOCOL_ERROR, "the server preface did not start with SETTINGS"
                )
            handler = handlers.get(kind)
            if handler is None:
                self._spend()  # unknown frame types are ignored (RFC 9113 4.1), within budget
            else:
                handler(flags, stream_id & f.MAX_STREAM_ID, payload)
        del buf[:pos]
        return events

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            self._fail(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        flow = len(payload)
        data = self._unpad(payload) if flags & f.PADDED else payload
        self._conn_recv -= flow
        if self._conn_recv < 0:
            self._fail(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        end = flags & f.END_STREAM
        stream = self._streams.get(stream_id)
        if stream is None:
            self._on_missing(stream_id, "DATA")
            self._queue(self._credit_connection(flow))
            return
        if data:
            self._budget = min(CONTROL_BUDGET, self._budget + 1)
        elif not end:
            self._spend()
        stream.recv_window -= flow
        if stream.recv_window < self._early_slack():
            self._fail(
                ErrorCode.FLOW_CONTROL_ERROR, f"DATA beyond the window of stream {stream_id}"
            )
        if flow:
            self._unacked[stream_id] = self._unacked.get(stream_id, 0) + flow
        if stream.remote_ended:
            return self._stream_error(stream, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM")
        if not stream.head_done:
            return self._stream_error(stream, ErrorCode.PROTOCOL_ERROR, "DATA before HEADERS")
        stream.received += len(data)
        expected = stream.expected
        if expected is not None and (
            stream.received > expected or (end and stream.received != expected)
        ):
            message = f"{stream.received} body bytes for content-length {expected}"
            return self._stream_error(stream, ErrorCode.PROTOCOL_ERROR, message)
        self._events.append(Data(stream_id, data, flow, bool(end)))
        if end:
            self._end_remote(stream)

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            self._fail(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
        block = self._unpad(payload) if flags & f.PADDED else payload
        if flags & f.PRIORITY_FLAG:
            if len(block) < 5:
                self._fail(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its priority")
            block = block[5:]
        if flags & f.END_HEADERS:
            return self._on_header_block(stream_id, block, flags & f.END_STREAM)
        self._block = bytearray(block)
        self._block_stream = stream_id
        self._block_end = flags & f.END_STREAM
        self._block_frames = 1

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        block = self._block
        if block is None or stream_id != self._block_stream:
            self._fail(ErrorCode.PROTOCOL_ERROR, f"unexpected CONTINUATION on stream {stream_id}")
        block += payload
        self._block_frames += 1
        if self._block_frames > MAX_CONTINUATIONS or (
            len(block) > self._max_header_list_size + BLOCK_SLACK
        ):
            self._fail(ErrorCode.ENHANCE_YOUR_CALM, "endless CONTINUATION")
        if not payload:
            self._spend()
        if flags & f.END_HEADERS:
            self._block = None
            self._on_header_block(stream_id, bytes(block), self._block_end)

    def _on_header_block(self, stream_id: int, block: bytes, end: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            self._on_missing(stream_id, "HEADERS")
            self._decode(block)  # ignored, but HPACK state must follow it
            return
        fields = self._decode(block)
        self._budget = min(CONTROL_BUDGET, self._budget + 1)
        if stream.remote_ended:
            return self._stream_error(stream, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM")
        try:
            if stream.head_done:
                if not end:
                    raise MalformedHeaders("trailers without END_STREAM")
                trailers = parse_trailers(fields)
                self._check_length(stream)
                self._events.append(Trailers(stream_id, trailers))
                return self._end_remote(stream)
            status, headers = parse_response_head(fields)
            if status < 200:
                if status == 101 or end:
                    raise MalformedHeaders(f"interim status {status} is not valid here")
                return  # 1xx heads are consumed silently
            if not (stream.head_request or status in (204, 304)):
                stream.expected = content_length(headers)
            if end:
                self._check_length(stream)
        except MalformedHeaders as exc:
            return self._stream_error(stream, ErrorCode.PROTOCOL_ERROR, str(exc))
        stream.head_done = True
        self._events.append(ResponseHeaders(stream_id, status, headers, bool(end)))
        if end:
            self._end_remote(stream)

    def _on_rst_stream(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._need_stream(stream_id, "RST_STREAM", len(payload) == 4)
        self._spend()
        stream = self._streams.get(stream_id)
        if stream is None:
            return self._on_missing(stream_id, "RST_STREAM", tolerate_closed=True)
        (code,) = f.U32.unpack(payload)
        self._queue(self._forget(stream))
        message = f"the server reset the stream ({_code_name(code)})"
        self._events.append(StreamReset(stream_id, code, True, message))

    def _on_priority(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._need_stream(stream_id, "PRIORITY", len(payload) == 5)
        self._spend()  # priorities are advisory; we ignore them

    def _on_push_promise(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._fail(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE although we sent ENABLE_PUSH=0")

    def _on_ping(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._need_connection(stream_id, "PING", len(payload) == 8)
        self._spend()
        if flags & f.ACK:
            self._events.append(PingAcked(payload))
        else:
            self._outbox.append(f.frame(f.PING, f.ACK, 0, payload))

    def _on_goaway(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._need_connection(stream_id, "GOAWAY", len(payload) >= 8)
        self._spend()
        last, code = f.GOAWAY_HEAD.unpack_from(payload)
        event = GoAway(last & f.MAX_STREAM_ID, code, payload[8:])
        self.goaway = event
        for stream in [s for s in self._streams.values() if s.id > event.last_stream_id]:
            self._queue(self._forget(stream))  # not processed: the GoAway event says so
        self._events.append(event)

    def _on_window_update(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            self._fail(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes")
        self._spend()
        increment = f.U32.unpack(payload)[0] & f.MAX_WINDOW
        if stream_id == 0:
            if increment == 0:
                self._fail(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
            self._conn_send += increment
            if self._conn_send > f.MAX_WINDOW:
                self._fail(ErrorCode.FLOW_CONTROL_ERROR, "connection window beyond 2**31-1")
            self._events.append(WindowUpdated(0))
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return self._on_missing(stream_id, "WINDOW_UPDATE", tolerate_closed=True)
        if increment == 0:
            return self._stream_error(stream, ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
        stream.send_window += increment
        if stream.send_window > f.MAX_WINDOW:
            message = "stream window beyond 2**31-1"
            return self._stream_error(stream, ErrorCode.FLOW_CONTROL_ERROR, message)
        if not stream.local_ended:
            self._events.append(WindowUpdated(stream_id))

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._need_connection(stream_id, "SETTINGS", len(payload) % 6 == 0)
        self._spend()
        if flags & f.ACK:
            if payload:
                self._fail(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            self._settings_acked = True
            return
        for offset in range(0, len(payload), 6):
            self._apply_setting(*f.SETTING.unpack_from(payload, offset))
        self.peer_settings_received = True
        self._outbox.append(f.frame(f.SETTINGS, f.ACK, 0))
        self._events.append(
            SettingsChanged(
                self.peer_max_concurrent_streams, self._peer_window, self._peer_max_frame
            )
        )

    def _apply_setting(self, ident: int, value: int) -> None:
        if ident == f.HEADER_TABLE_SIZE:
            self._encoder.header_table_size = min(value, 4096)  # a bigger table buys little
        elif ident == f.ENABLE_PUSH and value != 0:
            self._fail(ErrorCode.PROTOCOL_ERROR, f"a server may not set ENABLE_PUSH={value}")
        elif ident == f.MAX_CONCURRENT_STREAMS:
            self.peer_max_concurrent_streams = value
        elif ident == f.INITIAL_WINDOW_SIZE:
            if value > f.MAX_WINDOW:
                self._fail(ErrorCode.FLOW_CONTROL_ERROR, f"INITIAL_WINDOW_SIZE {value} > 2**31-1")
            delta = value - self._peer_window
            self._peer_window = value
            for stream in self._streams.values():
                stream.send_window += delta  # may go negative (RFC 9113 6.9.2)
                if stream.send_window > f.MAX_WINDOW:
                    self._fail(ErrorCode.FLOW_CONTROL_ERROR, "a stream window beyond 2**31-1")
        elif ident == f.MAX_FRAME_SIZE:
            if not f.OUR_MAX_FRAME_SIZE <= value <= f.MAX_FRAME_SIZE_LIMIT:
                self._fail(ErrorCode.PROTOCOL_ERROR, f"MAX_FRAME_SIZE {value} is out of range")
            self._peer_max_frame = value

    # ---- helpers -------------------------------------------------------------------------

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes, bool]]:
        """Decode a header block; a failure ends the connection, since the HPACK context
        can no longer be trusted (the decoder may have stopped halfway through the block)."""
        try:
            fields: list[tuple[bytes, bytes, bool]] = self._decoder.decode(block)
        except OversizedHeaderListError:
            # Not COMPRESSION_ERROR: the block was valid HPACK, but the peer ignored the
            # MAX_HEADER_LIST_SIZE we advertised, which is excess load by its choice.
            limit = self._max_header_list_size
            self._fail(ErrorCode.ENHANCE_YOUR_CALM, f"a header list larger than {limit} bytes")
        except HPACKError as exc:
            self._fail(ErrorCode.COMPRESSION_ERROR, f"undecodable header block: {exc}")
        except BaseException as exc:
            # jh2 turns a Rust panic (e.g. a truncated integer) into pyo3's PanicException,
            # a BaseException: treat that as a bad block too, and nothing else.
            if type(exc).__name__ != "PanicException":
                raise
            self._fail(ErrorCode.COMPRESSION_ERROR, "undecodable header block")
        return fields

    def _unpad(self, payload: bytes) -> bytes:
        if not payload or payload[0] >= len(payload):
            self._fail(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame")
        return payload[1 : len(payload) - payload[0]]

    def _need_stream(self, stream_id: int, kind: str, size_ok: bool) -> None:
        if stream_id == 0:
            self._fail(ErrorCode.PROTOCOL_ERROR, f"{kind} on stream 0")
        if not size_ok:
            self._fail(ErrorCode.FRAME_SIZE_ERROR, f"{kind} with a wrong length")

    def _need_connection(self, stream_id: int, kind: str, size_ok: bool) -> None:
        if stream_id != 0:
            self._fail(ErrorCode.PROTOCOL_ERROR, f"{kind} on stream {stream_id}, not 0")
        if not size_ok:
            self._fail(ErrorCode.FRAME_SIZE_ERROR, f"{kind} with a wrong length")

    def _on_missing(self, stream_id: int, kind: str, tolerate_closed: bool = False) -> None:
        """A frame for a stream that is not open: never opened is a connection error; one we
        reset (or GOAWAY refused) is ignored; DATA/HEADERS after a normal close is an error."""
        if stream_id % 2 == 0 or stream_id > self.last_stream_id:
            self._fail(ErrorCode.PROTOCOL_ERROR, f"{kind} on stream {stream_id}, never opened")
        if not tolerate_closed and stream_id not in self._reset:
            self._fail(ErrorCode.STREAM_CLOSED, f"{kind} on stream {stream_id}, already closed")

    def _check_length(self, stream: _Stream) -> None:
        if stream.expected is not None and stream.received != stream.expected:
            raise MalformedHeaders(
                f"{stream.received} body bytes for content-length {stream.expected}"
            )

    def _early_slack(self) -> int:
        # Until our SETTINGS is acknowledged the peer may assume the spec's 65535 window.
        if self._settings_acked or self._stream_window >= f.SPEC_WINDOW:
            return 0
        return self._stream_window - f.SPEC_WINDOW

    def _sending(self, stream_id: int) -> _Stream:
        self._check_usable()
        stream = self._streams.get(stream_id)
        if stream is None:
            raise LocalProtocolError(f"stream {stream_id} is not open")
        if stream.local_ended:
            raise LocalProtocolError(f"stream {stream_id} was already ended by us")
        return stream

    def _end_local(self, stream: _Stream) -> None:
        stream.local_ended = True
        if stream.remote_ended:
            self._close_stream(stream)

    def _end_remote(self, stream: _Stream) -> None:
        stream.remote_ended = True
        if stream.local_ended:
            self._close_stream(stream)

    def _close_stream(self, stream: _Stream) -> None:
        del self._streams[stream.id]
        self.open_streams -= 1

    def _forget(self, stream: _Stream) -> bytes:
        """Close a stream that was reset or refused; remember it; return its credit."""
        self._close_stream(stream)
        self._reset[stream.id] = None
        if len(self._reset) > RESET_MEMORY:
            for old in list(islice(self._reset, RESET_MEMORY // 2)):
                del self._reset[old]
        return self._refund(stream.id)

    def _refund(self, stream_id: int) -> bytes:
        owed = self._unacked.pop(stream_id, 0)
        return self._credit_connection(owed) if owed else b""

    def _credit_connection(self, n: int) -> bytes:
        self._conn_owed += n
        if self._conn_owed < max(1, self._connection_window >> 1):
            return b""
        increment, self._conn_owed = self._conn_owed, 0
        self._conn_recv += increment
        return f.window_update(0, increment)

    def _queue(self, frames: bytes) -> None:
        if frames:
            self._outbox.append(frames)

    def _stream_error(self, stream: _Stream, code: ErrorCode, message: str) -> None:
        self._outbox.append(f.rst_stream(stream.id, code))
        self._queue(self._forget(stream))
        self._events.append(StreamReset(stream.id, code, False, message))

    def _spend(self) -> None:
        self._budget -= 1
        if self._budget < 0:
            self._fail(ErrorCode.ENHANCE_YOUR_CALM, "too many control frames")

    def _check_usable(self) -> None:
        if self.closed:
            raise LocalProtocolError("the HTTP/2 connection is closed")

    def _shut(self) -> None:
        self.closed = True
        self._streams.clear()
        self.open_streams = 0

    def _fail(self, code: ErrorCode, message: str) -> NoReturn:
        """A connection error: queue GOAWAY, close, raise (with the events parsed so far)."""
        self._shut()
        self._outbox[:] = [f.goaway(0, code, message.encode()[:128])]  # queued ACKs are moot
        raise H2ProtocolError(message, error_code=code, events=self._events)


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error code {code}"
