"""Raw HTTP/2 frames for H2TestServer's ``/bad/*`` routes: the faults ``h2`` refuses to send.

Pure: each fault is a function from the stream and the client's settings to an iterator of
byte chunks and what the server does afterwards; ``h2server`` writes the chunks. Header
blocks use only HPACK "literal without indexing, new name" fields without Huffman, so they
never touch the dynamic table and the client's HPACK decoder stays in step with the
server's ``h2`` encoder.

Routes: ``no-status``, ``two-status``, ``conn-header`` (connection: keep-alive),
``upper-name`` (``X-Upper``), ``big-headers?kb=128`` (HEADERS + CONTINUATION),
``content-length`` (says 10, sends 5), ``data-after-end``: one malformed response each.
``continuation-flood``: HEADERS without END_HEADERS, then CONTINUATION until 10 MiB or the
client leaves, then close. ``settings-flood`` / ``ping-flood``: 50,000 frames, then the
normal answer. ``invalid-frame``: a 7-byte PING, then close. ``window-violation``: DATA one
byte past the send window (a violation only if the client sends no WINDOW_UPDATE for it
meanwhile, i.e. while nobody reads the body).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "FAULTS",
    "After",
    "BadArgument",
    "Fault",
    "FaultInput",
    "arg_int",
    "encode_literal",
    "frame",
]

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS = 0x1, 0x4

FLOOD_FRAMES = 50_000  # SETTINGS or PING frames in one flood
CONTINUATION_LIMIT = 10 * 1024 * 1024  # bytes of CONTINUATION before the server gives up
MAX_KB = 16 * 1024  # cap for /bad/big-headers?kb=
_BATCH = 1000  # frames per chunk handed to the writer


class BadArgument(ValueError):
    """A route's query or path argument is malformed; the server answers 400 naming it."""


class After(enum.Enum):
    """What the server does once a fault's bytes are written."""

    NOTHING = "nothing"  # the stream counts as answered; keep serving the connection
    RESPOND = "respond"  # answer the stream normally (the fault was connection-level noise)
    CLOSE = "close"  # the connection cannot continue: close it (FIN)


@dataclass(frozen=True, slots=True)
class FaultInput:
    """What a fault needs to know: the stream, the query and the client's settings."""

    stream_id: int
    args: dict[str, list[str]]
    max_frame_size: int
    send_window: int  # what the server may send on the stream now (stream and connection)


Fault = Callable[[FaultInput], tuple[Iterator[bytes], After]]


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload (no checks)."""
    return (
        struct.pack(">I", len(payload))[1:]
        + struct.pack(">BBI", ftype, flags, stream_id)
        + (payload)
    )


def _integer(value: int, prefix_bits: int, first: int = 0) -> bytes:
    # RFC 7541 5.1: an integer with an N-bit prefix; ``first`` holds the bits above it.
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


def encode_literal(headers: list[tuple[bytes, bytes]]) -> bytes:
    """HPACK block of literal fields without indexing, new names, no Huffman (RFC 7541 6.2.2)."""
    out = bytearray()
    for name, value in headers:
        out += b"\x00" + _integer(len(name), 7) + name + _integer(len(value), 7) + value
    return bytes(out)


def _header_frames(sid: int, block: bytes, max_frame: int, end_stream: bool) -> bytes:
    """HEADERS then as many CONTINUATION frames as ``block`` needs; END_HEADERS on the last."""
    pieces = [block[i : i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
    out = bytearray()
    for i, piece in enumerate(pieces):
        flags = END_HEADERS if i == len(pieces) - 1 else 0
        if i == 0:
            out += frame(HEADERS, flags | (END_STREAM if end_stream else 0), sid, piece)
        else:
            out += frame(CONTINUATION, flags, sid, piece)
    return bytes(out)


def _head(f: FaultInput, headers: list[tuple[bytes, bytes]], end_stream: bool) -> bytes:
    return _header_frames(f.stream_id, encode_literal(headers), f.max_frame_size, end_stream)


_OK = [(b":status", b"200")]


def _fixed(headers: list[tuple[bytes, bytes]]) -> Fault:
    """A fault that is one complete, malformed response head."""

    def fault(f: FaultInput) -> tuple[Iterator[bytes], After]:
        return iter([_head(f, headers, end_stream=True)]), After.NOTHING

    return fault


def _big_headers(f: FaultInput) -> tuple[Iterator[bytes], After]:
    kb = arg_int(f.args, "kb", 128, MAX_KB)
    target = kb * 1024  # RFC 9113 header list size: name + value + 32 per field
    headers = list(_OK)
    size = 32 + 7 + 3
    i = 0
    while size < target:
        name, value = b"x-big-%05d" % i, b"v" * 1000
        headers.append((name, value))
        size += len(name) + len(value) + 32
        i += 1
    return iter([_head(f, headers, end_stream=True)]), After.NOTHING


def _continuation_flood(f: FaultInput) -> tuple[Iterator[bytes], After]:
    def chunks() -> Iterator[bytes]:
        yield frame(HEADERS, 0, f.stream_id, encode_literal(_OK))
        field = encode_literal([(b"x-flood", b"f" * 100)])
        payload = field * max(1, f.max_frame_size // len(field))
        one = frame(CONTINUATION, 0, f.stream_id, payload)
        for _ in range(CONTINUATION_LIMIT // len(one) + 1):
            yield one

    return chunks(), After.CLOSE


def _flood(ftype: int) -> Fault:
    def fault(f: FaultInput) -> tuple[Iterator[bytes], After]:
        def chunks() -> Iterator[bytes]:
            for start in range(0, FLOOD_FRAMES, _BATCH):
                count = min(_BATCH, FLOOD_FRAMES - start)
                if ftype == PING:
                    yield b"".join(
                        frame(PING, 0, 0, struct.pack(">Q", start + i)) for i in range(count)
                    )
                else:
                    yield frame(SETTINGS, 0, 0) * count

        return chunks(), After.RESPOND

    return fault


def _window_violation(f: FaultInput) -> tuple[Iterator[bytes], After]:
    def chunks() -> Iterator[bytes]:
        yield _head(f, _OK, end_stream=False)
        # One byte more than the client allowed: a violation unless the client sends
        # WINDOW_UPDATE while the burst is in flight (so: while its body is not being read).
        left = f.send_window + 1
        block = b"w" * f.max_frame_size
        while left > 0:
            n = min(left, f.max_frame_size)
            left -= n
            yield frame(DATA, END_STREAM if left == 0 else 0, f.stream_id, block[:n])

    return chunks(), After.NOTHING


def _data_after_end(f: FaultInput) -> tuple[Iterator[bytes], After]:
    head = _head(f, [*_OK, (b"content-length", b"0")], end_stream=True)
    return iter([head + frame(DATA, END_STREAM, f.stream_id, b"late")]), After.NOTHING


def _invalid_frame(f: FaultInput) -> tuple[Iterator[bytes], After]:
    return iter([frame(PING, 0, 0, b"1234567")]), After.CLOSE  # a PING must carry 8 bytes


def _content_length(f: FaultInput) -> tuple[Iterator[bytes], After]:
    head = _head(f, [*_OK, (b"content-length", b"10")], end_stream=False)
    return iter([head + frame(DATA, END_STREAM, f.stream_id, b"12345")]), After.NOTHING


def arg_int(args: dict[str, list[str]], name: str, default: int, high: int) -> int:
    """Query argument ``name`` as an int in 0..high; ValueError naming it when it is not."""
    text = args.get(name, [str(default)])[0]
    if not text.isdigit() or int(text) > high:
        raise BadArgument(f"query argument {name}={text!r}: expected an integer 0..{high}")
    return int(text)


FAULTS: dict[str, Fault] = {
    "/bad/no-status": _fixed([(b"content-type", b"text/plain")]),
    "/bad/two-status": _fixed([*_OK, *_OK]),
    "/bad/conn-header": _fixed([*_OK, (b"connection", b"keep-alive")]),
    "/bad/upper-name": _fixed([*_OK, (b"X-Upper", b"yes")]),
    "/bad/big-headers": _big_headers,
    "/bad/continuation-flood": _continuation_flood,
    "/bad/settings-flood": _flood(SETTINGS),
    "/bad/ping-flood": _flood(PING),
    "/bad/window-violation": _window_violation,
    "/bad/data-after-end": _data_after_end,
    "/bad/invalid-frame": _invalid_frame,
    "/bad/content-length": _content_length,
}
"""Path -> fault. Each returns the bytes to write (lazily) and what follows them."""
