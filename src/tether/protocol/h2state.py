"""The state of one HTTP/2 client connection and the rules that change it.

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

from itertools import islice
from typing import NoReturn

from jh2._hazmat import Decoder, Encoder, HPACKError, OversizedHeaderListError

from ..exceptions import H2ProtocolError, LocalProtocolError
from . import h2frames as f
from .h2events import Event, GoAway, StreamReset
from .h2frames import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_MAX_HEADER_LIST_SIZE,
    DEFAULT_STREAM_WINDOW,
    ErrorCode,
)
from .h2headers import MalformedHeaders

CONTROL_BUDGET = 10_000  # control frames allowed beyond the useful ones (flood guard)
RESET_MEMORY = 4096  # how many reset stream ids we remember, to ignore their late frames


class StreamState:
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


class ConnectionState:
    """Windows, streams and queued frames of one connection, and the bookkeeping rules:
    how a stream closes, how credit returns, how errors are raised. No frame parsing here."""

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
        self._streams: dict[int, StreamState] = {}
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

    def _check_length(self, stream: StreamState) -> None:
        if stream.expected is not None and stream.received != stream.expected:
            raise MalformedHeaders(
                f"{stream.received} body bytes for content-length {stream.expected}"
            )

    def _early_slack(self) -> int:
        # Until our SETTINGS is acknowledged the peer may assume the spec's 65535 window.
        if self._settings_acked or self._stream_window >= f.SPEC_WINDOW:
            return 0
        return self._stream_window - f.SPEC_WINDOW

    def _sending(self, stream_id: int) -> StreamState:
        self._check_usable()
        stream = self._streams.get(stream_id)
        if stream is None:
            raise LocalProtocolError(f"stream {stream_id} is not open")
        if stream.local_ended:
            raise LocalProtocolError(f"stream {stream_id} was already ended by us")
        return stream

    def _end_local(self, stream: StreamState) -> None:
        stream.local_ended = True
        if stream.remote_ended:
            self._close_stream(stream)

    def _end_remote(self, stream: StreamState) -> None:
        stream.remote_ended = True
        if stream.local_ended:
            self._close_stream(stream)

    def _close_stream(self, stream: StreamState) -> None:
        del self._streams[stream.id]
        self.open_streams -= 1

    def _forget(self, stream: StreamState) -> bytes:
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

    def _stream_error(self, stream: StreamState, code: ErrorCode, message: str) -> None:
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
