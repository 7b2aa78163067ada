"""What ``H2Protocol.receive`` reports: one small immutable object per fact, in wire order.

The end of a response stream is carried by ``end_stream`` on ``ResponseHeaders`` and ``Data``,
and implied by ``Trailers``; there is no separate "stream ended" event.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Data",
    "Event",
    "GoAway",
    "PingAcked",
    "ResponseHeaders",
    "SettingsChanged",
    "StreamReset",
    "Trailers",
    "WindowUpdated",
]


@dataclass(frozen=True, slots=True)
class ResponseHeaders:
    """The final (non-1xx) response head. Names are lowercase; pseudo-headers are removed."""

    stream_id: int
    status: int
    headers: list[tuple[bytes, bytes]]
    end_stream: bool


@dataclass(frozen=True, slots=True)
class Trailers:
    """Trailing headers; the stream has ended."""

    stream_id: int
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Data:
    """Body bytes. ``flow_length`` (data plus padding) is what to pass to ``acknowledge``."""

    stream_id: int
    data: bytes
    flow_length: int
    end_stream: bool


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The stream failed. ``remote``: the peer sent RST_STREAM; otherwise we found a stream
    error in what it sent (``message`` says what) and queued RST_STREAM ourselves."""

    stream_id: int
    error_code: int
    remote: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class GoAway:
    """The peer is closing: streams above ``last_stream_id`` were not processed (and are
    already closed here); no new stream may be opened."""

    last_stream_id: int
    error_code: int
    debug: bytes


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The peer's SETTINGS was applied (and its ACK queued). A change of the initial window
    moves the send window of every open stream, so a waiting sender should look again."""

    max_concurrent_streams: int
    initial_window_size: int
    max_frame_size: int


@dataclass(frozen=True, slots=True)
class WindowUpdated:
    """Send credit grew on ``stream_id`` (0: the connection)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PingAcked:
    """The peer answered our ``ping()`` with this opaque payload."""

    opaque: bytes


Event = (
    ResponseHeaders
    | Trailers
    | Data
    | StreamReset
    | GoAway
    | SettingsChanged
    | WindowUpdated
    | PingAcked
)
