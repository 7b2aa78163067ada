"""HTTP/2 for a client, sans-I/O: frames out as bytes, bytes in as events. No socket, no clock.

Our own framing (one ``struct`` call per frame header, a bytearray input buffer) over jh2's
HPACK, because a whole request must cost well under 40 us of Python (bench/h2_engines.py).

The rules that decide state (kept in h2state.py, one place):

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
from .h2headers import SENSITIVE, request_headers
from .h2reader import FrameReader
from .h2state import CONTROL_BUDGET, StreamState

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


class H2Protocol(FrameReader):
    """One HTTP/2 client connection (see the module docstring for its rules).

    The constructor (``stream_window``, ``connection_window``, ``max_header_list_size``) and
    the read-only facts (``open_streams``, ``goaway``, ...) come from ``ConnectionState``;
    ``receive`` from ``FrameReader``; this class adds what we send.

    Not thread-safe: the driver serialises calls (it holds its write lock across
    ``send_headers`` and the socket write, so stream ids, HPACK state and wire order agree).
    After ``closed`` every method raises LocalProtocolError except ``data_to_send`` and
    ``close``.
    """

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
        stream = StreamState(stream_id, self._peer_window, self._stream_window, head)
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
