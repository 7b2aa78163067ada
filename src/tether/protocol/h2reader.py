"""Reading the peer's frames: bytes in (split anywhere), events out, errors by the rules.

Each frame type has one handler; what a handler may not decide alone (closing a stream,
returning credit, a stream or connection error) goes through ``ConnectionState``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

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
from .h2frames import ErrorCode
from .h2headers import MalformedHeaders, content_length, parse_response_head, parse_trailers
from .h2state import CONTROL_BUDGET, ConnectionState, _code_name

MAX_CONTINUATIONS = 256  # frames in one header block
BLOCK_SLACK = 16_384  # compressed block bytes allowed beyond max_header_list_size
_unpack_head = f.HEAD.unpack_from


class FrameReader(ConnectionState):
    """``receive`` and one handler per frame type."""

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
                handler(self, flags, stream_id & f.MAX_STREAM_ID, payload)
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

    _handlers: ClassVar[dict[int, Callable[[FrameReader, int, int, bytes], None]]] = {
        f.DATA: _on_data,
        f.HEADERS: _on_headers,
        f.PRIORITY: _on_priority,
        f.RST_STREAM: _on_rst_stream,
        f.SETTINGS: _on_settings,
        f.PUSH_PROMISE: _on_push_promise,
        f.PING: _on_ping,
        f.GOAWAY: _on_goaway,
        f.WINDOW_UPDATE: _on_window_update,
        f.CONTINUATION: _on_continuation,
    }
