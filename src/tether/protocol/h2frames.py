"""HTTP/2 frame layout (RFC 9113 section 4 and 6): codes, flags and the frames a client writes.

Only what tether's client side needs. Every builder returns the complete frame bytes; the
9-byte header is packed with one ``struct`` call (24-bit length and type share a 32-bit word).
"""

from __future__ import annotations

import enum
import struct

__all__ = [
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_MAX_HEADER_LIST_SIZE",
    "DEFAULT_STREAM_WINDOW",
    "ErrorCode",
]

DEFAULT_STREAM_WINDOW = 4 * 1024 * 1024  # our SETTINGS_INITIAL_WINDOW_SIZE (Go's value)
DEFAULT_CONNECTION_WINDOW = 1 << 30  # raised with a WINDOW_UPDATE on stream 0 at start
DEFAULT_MAX_HEADER_LIST_SIZE = 64 * 1024

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_WINDOW = (1 << 31) - 1
MAX_STREAM_ID = (1 << 31) - 1
SPEC_WINDOW = 65535  # the initial window of every stream and of the connection (RFC 9113 6.9.2)
OUR_MAX_FRAME_SIZE = 16384  # we never raise SETTINGS_MAX_FRAME_SIZE, so this is what we accept
MAX_FRAME_SIZE_LIMIT = (1 << 24) - 1

# frame types
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# settings identifiers
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6

HEAD = struct.Struct(">IBI")  # (length << 8 | type), flags, stream id
U32 = struct.Struct(">I")
SETTING = struct.Struct(">HI")
GOAWAY_HEAD = struct.Struct(">II")
_pack_head = HEAD.pack


class ErrorCode(enum.IntEnum):
    """HTTP/2 error codes, as carried by RST_STREAM and GOAWAY (RFC 9113 section 7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-byte header and its payload."""
    return _pack_head(len(payload) << 8 | kind, flags, stream_id) + payload


def settings_frame(pairs: list[tuple[int, int]]) -> bytes:
    """A SETTINGS frame carrying ``pairs`` of (identifier, value)."""
    return frame(SETTINGS, 0, 0, b"".join(SETTING.pack(k, v) for k, v in pairs))


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE granting ``increment`` more bytes on ``stream_id`` (0: the connection)."""
    return _pack_head(4 << 8 | WINDOW_UPDATE, 0, stream_id) + U32.pack(increment)


def rst_stream(stream_id: int, error_code: int) -> bytes:
    """A RST_STREAM closing ``stream_id`` with ``error_code``."""
    return _pack_head(4 << 8 | RST_STREAM, 0, stream_id) + U32.pack(error_code)


def goaway(last_stream_id: int, error_code: int, debug: bytes = b"") -> bytes:
    """A GOAWAY: no stream above ``last_stream_id`` was or will be processed."""
    return frame(GOAWAY, 0, 0, GOAWAY_HEAD.pack(last_stream_id, error_code) + debug)


def split_frames(
    kind: int, follow: int, flags: int, last_flags: int, stream_id: int, body: bytes, size: int
) -> bytes:
    """``body`` as frames of at most ``size`` bytes: the first of type ``kind`` with ``flags``,
    the rest of type ``follow``, and ``last_flags`` added to the last one."""
    if len(body) <= size:
        return _pack_head(len(body) << 8 | kind, flags | last_flags, stream_id) + body
    parts = []
    for start in range(0, len(body), size):
        chunk = body[start : start + size]
        end = start + size >= len(body)
        parts.append(
            _pack_head(len(chunk) << 8 | kind, flags | (last_flags if end else 0), stream_id)
        )
        parts.append(chunk)
        kind, flags = follow, flags if follow == kind else 0
    return b"".join(parts)
