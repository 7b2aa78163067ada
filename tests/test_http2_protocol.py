"""tether's sans-I/O HTTP/2 client against h2's server side in memory: no sockets.

Each side's bytes are fed to the other; the server is h2 (a different implementation), so a
test passes only if both agree on the wire.
"""

from __future__ import annotations

import struct

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jh2._hazmat import Encoder

from tether.exceptions import H2ProtocolError, LocalProtocolError
from tether.protocol.h2frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PRIORITY,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
)
from tether.protocol.http2 import (
    Data,
    ErrorCode,
    GoAway,
    H2Protocol,
    PingAcked,
    ResponseHeaders,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
    request_headers,
)


class Pair:
    """A tether client and an h2 server joined in memory."""

    def __init__(self, server_settings: dict[int, int] | None = None, **client: int) -> None:
        self.client = H2Protocol(**client)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.server = h2.connection.H2Connection(config=config)
        self.server.initiate_connection()
        if server_settings:
            self.server.update_settings(server_settings)
        self.server_events: list[h2.events.Event] = []
        self.server_events += self.server.receive_data(self.client.initiate())
        self.events = self.pump()

    def pump(self, client_bytes: bytes = b"") -> list[object]:
        """Exchange bytes until both sides are quiet; the client's events."""
        events: list[object] = []
        out = client_bytes
        for _ in range(100):
            out += self.client.data_to_send()
            if out:
                self.server_events += self.server.receive_data(out)
                out = b""
            back = self.server.data_to_send()
            if not back and not self.client.data_to_send():
                return events
            if back:
                events += self.client.receive(back)
        raise AssertionError("the pair never went quiet")

    def request(self, method: str = "GET", path: str = "/", end: bool = True) -> int:
        head = request_headers(method, "https", "example.com", path, [("Accept", "*/*")])
        stream_id, frames = self.client.send_headers(head, end)
        self.pump(frames)
        return stream_id

    def respond(self, stream_id: int, body: bytes, status: int = 200, **kw: object) -> list[object]:
        headers = [(":status", str(status)), ("content-length", str(len(body)))]
        self.server.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.server.send_data(stream_id, body, end_stream=True)
        return self.pump()


def body_of(events: list[object], stream_id: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data) and e.stream_id == stream_id)


def test_get_gives_status_headers_and_body_and_closes_the_stream() -> None:
    pair = Pair()
    assert any(isinstance(e, SettingsChanged) for e in pair.events)
    stream_id = pair.request()
    assert pair.client.open_streams == 1
    got = [e for e in pair.server_events if isinstance(e, h2.events.RequestReceived)]
    assert dict(got[0].headers)[b":authority"] == b"example.com"
    events = pair.respond(stream_id, b"Hello, world!")
    head = events[0]
    assert isinstance(head, ResponseHeaders)
    assert (head.status, head.end_stream) == (200, False)
    assert (b"content-length", b"13") in head.headers
    assert all(not name.startswith(b":") for name, _ in head.headers)
    assert body_of(events, stream_id) == b"Hello, world!"
    assert isinstance(events[-1], Data) and events[-1].end_stream
    assert pair.client.open_streams == 0


def test_post_body_arrives_at_the_server() -> None:
    pair = Pair()
    stream_id = pair.request("POST", "/upload", end=False)
    pair.pump(pair.client.send_data(stream_id, b"x" * 1000, end_stream=False))
    pair.pump(pair.client.end_stream(stream_id))
    received = b"".join(e.data for e in pair.server_events if isinstance(e, h2.events.DataReceived))
    assert received == b"x" * 1000
    assert any(isinstance(e, h2.events.StreamEnded) for e in pair.server_events)
    pair.respond(stream_id, b"ok")
    assert pair.client.open_streams == 0


def test_sixteen_concurrent_streams_interleaved() -> None:
    pair = Pair()
    ids = [pair.request(path=f"/{i}") for i in range(16)]
    assert pair.client.open_streams == 16
    for stream_id in reversed(ids):
        pair.server.send_headers(stream_id, [(":status", "200")])
    for stream_id in ids:
        pair.server.send_data(stream_id, b"part1-%d" % stream_id)
    for stream_id in ids[::2] + ids[1::2]:
        pair.server.send_data(stream_id, b"|end", end_stream=True)
    events = pair.pump()
    for stream_id in ids:
        assert body_of(events, stream_id) == b"part1-%d|end" % stream_id
    assert pair.client.open_streams == 0


def test_response_trailers_end_the_stream() -> None:
    pair = Pair()
    stream_id = pair.request()
    pair.server.send_headers(stream_id, [(":status", "200")])
    pair.server.send_data(stream_id, b"body")
    pair.server.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
    events = pair.pump()
    assert isinstance(events[-1], Trailers)
    assert events[-1].headers == [(b"grpc-status", b"0")]
    assert pair.client.open_streams == 0


def test_interim_responses_are_skipped() -> None:
    pair = Pair()
    stream_id = pair.request()
    pair.server.send_headers(stream_id, [(":status", "103"), ("link", "</a>")])
    events = pair.respond(stream_id, b"done")
    heads = [e for e in events if isinstance(e, ResponseHeaders)]
    assert [h.status for h in heads] == [200]


def test_large_body_beyond_the_window_needs_acknowledge() -> None:
    window = 65_535
    pair = Pair(stream_window=window, connection_window=window)
    stream_id = pair.request()
    pair.server.send_headers(stream_id, [(":status", "200")])
    total = 5 * window
    sent = received = 0
    for _ in range(200):
        allowed = min(pair.server.local_flow_control_window(stream_id), total - sent, 16384)
        if allowed > 0:
            sent += allowed
            pair.server.send_data(stream_id, b"a" * allowed, end_stream=sent == total)
        events = pair.pump()
        chunks = [e for e in events if isinstance(e, Data)]
        if not chunks and sent == received == total:
            break
        for chunk in chunks:
            received += len(chunk.data)
            pair.pump(pair.client.acknowledge(stream_id, chunk.flow_length))
    assert received == total
    assert pair.client.open_streams == 0


def test_unacknowledged_data_stalls_the_server() -> None:
    window = 65_535
    pair = Pair(stream_window=window, connection_window=window)
    stream_id = pair.request()
    pair.server.send_headers(stream_id, [(":status", "200")])
    for size in (16384, 16384, 16384, 16383):
        pair.server.send_data(stream_id, b"a" * size)
    events = pair.pump()
    assert sum(e.flow_length for e in events if isinstance(e, Data)) == window
    assert pair.server.local_flow_control_window(stream_id) == 0


def test_server_lowering_max_concurrent_streams() -> None:
    pair = Pair()
    assert pair.client.peer_max_concurrent_streams == 100 or pair.client.peer_settings_received
    pair.server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 3})
    events = pair.pump()
    changed = [e for e in events if isinstance(e, SettingsChanged)]
    assert changed[-1].max_concurrent_streams == 3
    assert pair.client.peer_max_concurrent_streams == 3


def test_goaway_closes_streams_above_last_stream_id() -> None:
    pair = Pair()
    ids = [pair.request() for _ in range(4)]
    pair.server.close_connection(error_code=0, last_stream_id=ids[1])
    events = pair.pump()
    goaway = next(e for e in events if isinstance(e, GoAway))
    assert goaway.last_stream_id == ids[1]
    assert pair.client.goaway == goaway
    assert pair.client.open_streams == 2
    with pytest.raises(LocalProtocolError, match="GOAWAY"):
        pair.client.send_headers(request_headers("GET", "https", "a", "/", []), True)


def test_refused_stream_is_reset_and_closed() -> None:
    pair = Pair()
    stream_id = pair.request()
    pair.server.reset_stream(stream_id, error_code=ErrorCode.REFUSED_STREAM)
    events = pair.pump()
    assert events == [
        StreamReset(stream_id, ErrorCode.REFUSED_STREAM, True, events[0].message)  # type: ignore[attr-defined]
    ]
    assert "REFUSED_STREAM" in events[0].message  # type: ignore[attr-defined]
    assert pair.client.open_streams == 0


def test_ping_is_answered_both_ways() -> None:
    pair = Pair()
    pair.server.ping(b"12345678")
    pair.pump()
    acks = [e for e in pair.server_events if isinstance(e, h2.events.PingAckReceived)]
    assert acks[0].ping_data == b"12345678"
    events = pair.pump(pair.client.ping(b"abcdefgh"))
    assert events == [PingAcked(b"abcdefgh")]


def test_upload_respects_a_small_peer_window_and_resumes() -> None:
    pair = Pair(server_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    stream_id = pair.request("PUT", end=False)
    assert pair.client.send_window(stream_id) == 1000
    with pytest.raises(LocalProtocolError, match="send window"):
        pair.client.send_data(stream_id, b"b" * 1001, end_stream=False)
    pair.pump(pair.client.send_data(stream_id, b"b" * 1000, end_stream=False))
    assert pair.client.send_window(stream_id) == 0
    pair.server.increment_flow_control_window(500, stream_id=stream_id)
    events = pair.pump()
    assert WindowUpdated(stream_id) in events
    assert pair.client.send_window(stream_id) == 500
    pair.pump(pair.client.send_data(stream_id, b"c" * 500, end_stream=True))
    received = b"".join(e.data for e in pair.server_events if isinstance(e, h2.events.DataReceived))
    assert received == b"b" * 1000 + b"c" * 500


def test_settings_change_moves_open_stream_windows_even_below_zero() -> None:
    pair = Pair()
    stream_id = pair.request("PUT", end=False)
    pair.pump(pair.client.send_data(stream_id, b"d" * 60_000, end_stream=False))
    pair.server.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    pair.pump()
    assert pair.client.send_window(stream_id) == 1000 - 60_000


def test_early_response_then_our_end_closes_the_stream() -> None:
    pair = Pair()
    stream_id = pair.request("POST", end=False)
    pair.respond(stream_id, b"too big")
    assert pair.client.open_streams == 1  # we have not ended our side yet
    pair.pump(pair.client.end_stream(stream_id))
    assert pair.client.open_streams == 0


def test_reset_stream_refunds_the_connection_and_ignores_late_frames() -> None:
    window = 65_535
    pair = Pair(connection_window=window, stream_window=window)
    stream_id = pair.request()
    pair.server.send_headers(stream_id, [(":status", "200")])
    pair.server.send_data(stream_id, b"z" * 16384)
    pair.server.send_data(stream_id, b"z" * 16384)
    assert body_of(pair.pump(), stream_id) == b"z" * 32768  # never acknowledged
    pair.server.send_data(stream_id, b"z" * 10_000)
    late = pair.server.data_to_send()  # in flight when we reset
    rst = pair.client.reset_stream(stream_id)
    assert pair.client.open_streams == 0
    assert pair.client.receive(late) == []  # ignored, yet counted against the window
    pair.pump(rst)
    # the 32768 unacknowledged bytes came back at once; the late 10000 are owed
    assert pair.server.outbound_flow_control_window == window - 10_000
    assert pair.client.acknowledge(stream_id, 32768) == b""  # already refunded


def test_local_misuse_is_refused() -> None:
    pair = Pair()
    stream_id = pair.request()
    with pytest.raises(LocalProtocolError, match="already ended"):
        pair.client.send_data(stream_id, b"x", end_stream=False)
    with pytest.raises(LocalProtocolError, match="not open"):
        pair.client.send_data(99, b"x", end_stream=False)
    with pytest.raises(LocalProtocolError, match="only 0"):
        pair.client.acknowledge(stream_id, 5)
    pair.pump(pair.client.close())
    assert pair.client.closed and pair.client.open_streams == 0
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in pair.server_events)
    with pytest.raises(LocalProtocolError, match="closed"):
        pair.client.send_headers(request_headers("GET", "https", "a", "/", []), True)


def test_large_request_headers_are_split_into_continuation() -> None:
    pair = Pair()
    big = [(f"x-big-{i}", "v" * 1000) for i in range(40)]
    head = request_headers("GET", "https", "example.com", "/", big)
    stream_id, frames = pair.client.send_headers(head, True)
    pair.pump(frames)
    got = next(e for e in pair.server_events if isinstance(e, h2.events.RequestReceived))
    assert len(got.headers) == 44 and got.stream_id == stream_id


def test_request_headers_drop_connection_specific_fields() -> None:
    head = request_headers(
        "GET",
        "https",
        "",
        "/p?q=1",
        [
            ("Host", "example.com:8443"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("TE", "gzip, trailers"),
            ("Accept", "text/html"),
        ],
    )
    assert head == [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"example.com:8443"),
        (b":path", b"/p?q=1"),
        (b"te", b"trailers"),
        (b"accept", b"text/html"),
    ]


# ---- hostile input: raw frames ------------------------------------------------------------


def raw(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IBI", len(payload) << 8 | kind, flags, stream_id) + payload


class Peer:
    """A scripted server: a tether client after the preface, with stream 1 open."""

    def __init__(self, method: bytes = b"GET", **client: int) -> None:
        self.client = H2Protocol(**client)
        self.client.initiate()
        self.encoder = Encoder()
        self.client.receive(raw(SETTINGS, 0, 0) + raw(SETTINGS, ACK, 0))
        self.client.data_to_send()
        self.stream = self.open(method)

    def open(self, method: bytes = b"GET", end: bool = True) -> int:
        head = [
            (b":method", method),
            (b":scheme", b"https"),
            (b":authority", b"a"),
            (b":path", b"/"),
        ]
        return self.client.send_headers(head, end)[0]

    def block(self, fields: list[tuple[bytes, bytes]]) -> bytes:
        return bytes(self.encoder.encode([(n, v, False) for n, v in fields]))

    def head(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool = False) -> bytes:
        flags = END_HEADERS | (END_STREAM if end else 0)
        return raw(HEADERS, flags, stream_id, self.block(fields))

    def ok_head(self, stream_id: int | None = None, end: bool = False) -> bytes:
        return self.head(
            self.stream if stream_id is None else stream_id, [(b":status", b"200")], end
        )

    def connection_error(self, data: bytes, code: ErrorCode) -> H2ProtocolError:
        with pytest.raises(H2ProtocolError) as info:
            self.client.receive(data)
        assert info.value.error_code == code
        sent = self.client.data_to_send()
        assert sent[3] == GOAWAY and struct.unpack(">I", sent[13:17])[0] == code
        assert self.client.closed and self.client.open_streams == 0
        with pytest.raises(LocalProtocolError):
            self.client.receive(b"")
        return info.value

    def stream_error(self, data: bytes, code: ErrorCode = ErrorCode.PROTOCOL_ERROR) -> str:
        before = self.client.open_streams
        events = self.client.receive(data)
        resets = [e for e in events if isinstance(e, StreamReset)]
        assert [(r.stream_id, r.error_code, r.remote) for r in resets] == [
            (self.stream, code, False)
        ]
        sent = self.client.data_to_send()
        assert sent[:13] == raw(RST_STREAM, 0, self.stream, struct.pack(">I", code))
        assert self.client.open_streams == before - 1
        # the connection lives on: a new stream works
        other = self.open()
        events = self.client.receive(self.ok_head(other, end=True))
        assert [type(e) for e in events] == [ResponseHeaders]
        return resets[0].message


@pytest.mark.parametrize(
    ("kind", "stream_id", "length"),
    [(SETTINGS, 0, 5), (PING, 0, 7), (WINDOW_UPDATE, 1, 3), (RST_STREAM, 1, 3), (PRIORITY, 1, 4)],
)
def test_frames_with_a_wrong_length(kind: int, stream_id: int, length: int) -> None:
    Peer().connection_error(raw(kind, 0, stream_id, b"\0" * length), ErrorCode.FRAME_SIZE_ERROR)


@pytest.mark.parametrize(
    ("kind", "stream_id", "payload"),
    [
        (DATA, 0, b"x"),
        (HEADERS, 0, b"\x88"),
        (RST_STREAM, 0, b"\0\0\0\0"),
        (PRIORITY, 0, b"\0" * 5),
        (SETTINGS, 1, b""),
        (PING, 1, b"\0" * 8),
        (GOAWAY, 1, b"\0" * 8),
        (CONTINUATION, 1, b""),
        (PUSH_PROMISE, 1, b"\0\0\0\x02\x88"),
    ],
)
def test_frames_on_the_wrong_stream(kind: int, stream_id: int, payload: bytes) -> None:
    Peer().connection_error(raw(kind, END_HEADERS, stream_id, payload), ErrorCode.PROTOCOL_ERROR)


def test_frame_larger_than_our_max_frame_size_fails_without_waiting_for_it() -> None:
    header_only = struct.pack(">IBI", 16385 << 8 | DATA, 0, 1)
    Peer().connection_error(header_only, ErrorCode.FRAME_SIZE_ERROR)


def test_preface_must_start_with_settings() -> None:
    client = H2Protocol()
    client.initiate()
    with pytest.raises(H2ProtocolError) as info:
        client.receive(raw(PING, 0, 0, b"\0" * 8))
    assert info.value.error_code == ErrorCode.PROTOCOL_ERROR


def test_connection_error_carries_earlier_events() -> None:
    peer = Peer()
    error = peer.connection_error(
        peer.ok_head() + raw(PING, 0, 0, b"short"), ErrorCode.FRAME_SIZE_ERROR
    )
    assert [type(e) for e in error.events] == [ResponseHeaders]


def test_header_list_over_the_limit_ends_the_connection() -> None:
    peer = Peer(max_header_list_size=1000)
    big = peer.head(peer.stream, [(b":status", b"200"), (b"x-big", b"v" * 2000)])
    peer.connection_error(big, ErrorCode.ENHANCE_YOUR_CALM)


def test_undecodable_header_block_is_a_compression_error() -> None:
    peer = Peer()
    peer.connection_error(raw(HEADERS, END_HEADERS, 1, b"\xff\x00"), ErrorCode.COMPRESSION_ERROR)
    peer = Peer()  # a truncated integer makes jh2's Rust decoder panic: caught all the same
    peer.connection_error(
        raw(HEADERS, END_HEADERS, 1, b"\xff\xff\xff"), ErrorCode.COMPRESSION_ERROR
    )


def test_endless_continuation_is_cut_off_by_size() -> None:
    peer = Peer(max_header_list_size=4096)
    flood = raw(HEADERS, 0, 1, b"\x88") + raw(CONTINUATION, 0, 1, b"\x00" * 16384) * 100
    peer.connection_error(flood, ErrorCode.ENHANCE_YOUR_CALM)


def test_endless_empty_continuation_is_cut_off_by_count() -> None:
    peer = Peer()
    flood = raw(HEADERS, 0, 1, b"\x88") + raw(CONTINUATION, 0, 1) * 10_000
    peer.connection_error(flood, ErrorCode.ENHANCE_YOUR_CALM)


def test_header_block_split_over_continuation_is_assembled() -> None:
    peer = Peer()
    block = peer.block([(b":status", b"200"), (b"x-a", b"1" * 100)])
    data = raw(HEADERS, END_STREAM, 1, block[:3]) + raw(CONTINUATION, 0, 1, block[3:50])
    data += raw(CONTINUATION, END_HEADERS, 1, block[50:])
    (event,) = peer.client.receive(data)
    assert isinstance(event, ResponseHeaders) and event.headers == [(b"x-a", b"1" * 100)]


def test_interrupted_header_block_is_a_protocol_error() -> None:
    peer = Peer()
    data = raw(HEADERS, 0, 1, b"\x88") + raw(PING, 0, 0, b"\0" * 8)
    peer.connection_error(data, ErrorCode.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    "frame",
    [
        raw(PING, 0, 0, b"\0" * 8),
        raw(SETTINGS, 0, 0),
        raw(RST_STREAM, 0, 1, b"\0\0\0\0"),
        raw(PRIORITY, 0, 1, b"\0" * 5),
        raw(0x42, 0, 0, b"unknown"),
    ],
)
def test_control_frame_flood_is_stopped(frame: bytes) -> None:
    peer = Peer()
    peer.connection_error(frame * 10_001, ErrorCode.ENHANCE_YOUR_CALM)


def test_empty_data_flood_is_stopped() -> None:
    peer = Peer()
    peer.connection_error(peer.ok_head() + raw(DATA, 0, 1) * 10_001, ErrorCode.ENHANCE_YOUR_CALM)


def test_control_budget_is_refilled_by_useful_frames() -> None:
    peer = Peer()
    peer.client.receive(peer.ok_head())
    ping = raw(PING, 0, 0, b"\0" * 8)
    for _ in range(3):
        events = peer.client.receive((ping + raw(DATA, 0, 1, b"x")) * 8_000)
        assert len(events) == 8_000
        peer.client.acknowledge(1, 8_000)
        peer.client.data_to_send()


def test_data_beyond_the_stream_window_is_a_flow_control_error() -> None:
    peer = Peer(stream_window=65_535)
    chunk = raw(DATA, 0, 1, b"x" * 16_384)
    peer.connection_error(
        peer.ok_head() + chunk * 4 + raw(DATA, 0, 1, b"x" * 10), ErrorCode.FLOW_CONTROL_ERROR
    )


def test_data_beyond_the_connection_window_is_a_flow_control_error() -> None:
    peer = Peer(connection_window=65_535)
    second = peer.open()
    data = peer.ok_head() + peer.ok_head(second) + raw(DATA, 0, 1, b"x" * 16_384) * 3
    data += raw(DATA, 0, second, b"x" * 16_384) + raw(DATA, 0, second, b"x")
    peer.connection_error(data, ErrorCode.FLOW_CONTROL_ERROR)


def test_window_update_of_zero_on_the_connection() -> None:
    Peer().connection_error(raw(WINDOW_UPDATE, 0, 0, b"\0\0\0\0"), ErrorCode.PROTOCOL_ERROR)


def test_window_update_of_zero_on_a_stream_resets_it() -> None:
    peer = Peer()
    peer.stream = peer.open(end=False)
    assert "WINDOW_UPDATE of 0" in peer.stream_error(
        raw(WINDOW_UPDATE, 0, peer.stream, b"\0\0\0\0")
    )


def test_window_overflow() -> None:
    big = struct.pack(">I", (1 << 31) - 1)
    Peer().connection_error(raw(WINDOW_UPDATE, 0, 0, big), ErrorCode.FLOW_CONTROL_ERROR)
    peer = Peer()
    peer.stream = peer.open(end=False)
    peer.stream_error(raw(WINDOW_UPDATE, 0, peer.stream, big), ErrorCode.FLOW_CONTROL_ERROR)


MALFORMED_HEADS = {
    "no :status": [(b"server", b"x")],
    "repeated :status": [(b":status", b"200"), (b":status", b"200")],
    "non-numeric :status": [(b":status", b"2xx")],
    "request pseudo-header": [(b":status", b"200"), (b":path", b"/")],
    "pseudo after regular": [(b"server", b"x"), (b":status", b"200")],
    "uppercase name": [(b":status", b"200"), (b"Server", b"x")],
    "connection-specific": [(b":status", b"200"), (b"connection", b"close")],
    "transfer-encoding": [(b":status", b"200"), (b"transfer-encoding", b"chunked")],
    "CR in value": [(b":status", b"200"), (b"x-a", b"a\rb")],
    "LF in value": [(b":status", b"200"), (b"x-a", b"a\nb")],
    "NUL in value": [(b":status", b"200"), (b"x-a", b"a\0b")],
    "bad content-length": [(b":status", b"200"), (b"content-length", b"1x")],
    "101 status": [(b":status", b"101")],
}


@pytest.mark.parametrize("name", list(MALFORMED_HEADS))
def test_malformed_response_head_resets_only_its_stream(name: str) -> None:
    peer = Peer()
    assert peer.stream_error(peer.head(1, MALFORMED_HEADS[name]))


def test_content_length_mismatch_resets_the_stream() -> None:
    head = [(b":status", b"200"), (b"content-length", b"5")]
    peer = Peer()
    peer.stream_error(peer.head(1, head) + raw(DATA, 0, 1, b"123456"))
    peer = Peer()
    assert "content-length" in peer.stream_error(
        peer.head(1, head) + raw(DATA, END_STREAM, 1, b"1234")
    )


def test_content_length_is_not_checked_for_head() -> None:
    peer = Peer(method=b"HEAD")
    head = peer.head(1, [(b":status", b"200"), (b"content-length", b"500")], end=True)
    (event,) = peer.client.receive(head)
    assert isinstance(event, ResponseHeaders) and event.end_stream


def test_data_before_headers_resets_the_stream() -> None:
    peer = Peer()
    assert "before HEADERS" in peer.stream_error(raw(DATA, 0, 1, b"x"))


def test_trailers_without_end_stream_reset_the_stream() -> None:
    peer = Peer()
    peer.stream_error(peer.ok_head() + peer.head(1, [(b"x-t", b"1")]))


def test_padding_is_stripped_and_counted_for_flow_control() -> None:
    peer = Peer()
    padded = raw(DATA, PADDED | END_STREAM, 1, b"\x03abc\0\0\0")
    events = peer.client.receive(peer.ok_head() + padded)
    assert events[-1] == Data(1, b"abc", 7, True)
    peer.connection_error(raw(DATA, PADDED, 3, b"\x09abc"), ErrorCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("stream_id", [2, 3, 101])
def test_frames_on_streams_never_opened(stream_id: int) -> None:
    peer = Peer()
    peer.connection_error(peer.ok_head(stream_id), ErrorCode.PROTOCOL_ERROR)


def test_data_on_a_stream_we_reset_is_ignored() -> None:
    peer = Peer()
    peer.client.receive(peer.ok_head())
    peer.client.reset_stream(1)
    assert (
        peer.client.receive(raw(DATA, 0, 1, b"late") + peer.head(1, [(b"x", b"1")], end=True)) == []
    )


def test_data_after_the_peer_ended_the_stream() -> None:
    peer = Peer()
    peer.stream = peer.open(end=False)
    peer.client.receive(peer.ok_head(peer.stream, end=True))
    peer.stream_error(raw(DATA, 0, peer.stream, b"more"), ErrorCode.STREAM_CLOSED)
    peer = Peer()
    peer.client.receive(peer.ok_head(end=True))  # stream 1 fully closed
    peer.connection_error(raw(DATA, 0, 1, b"more"), ErrorCode.STREAM_CLOSED)


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        (2, 1, ErrorCode.PROTOCOL_ERROR),
        (2, 2, ErrorCode.PROTOCOL_ERROR),
        (4, 1 << 31, ErrorCode.FLOW_CONTROL_ERROR),
        (5, 16_383, ErrorCode.PROTOCOL_ERROR),
        (5, 1 << 24, ErrorCode.PROTOCOL_ERROR),
    ],
)
def test_invalid_settings(setting: int, value: int, code: ErrorCode) -> None:
    Peer().connection_error(raw(SETTINGS, 0, 0, struct.pack(">HI", setting, value)), code)


def test_settings_window_change_overflowing_a_stream() -> None:
    peer = Peer()
    peer.stream = peer.open(end=False)
    peer.client.receive(raw(WINDOW_UPDATE, 0, peer.stream, struct.pack(">I", (1 << 31) - 65_536)))
    grow = raw(SETTINGS, 0, 0, struct.pack(">HI", 4, 65_536))
    peer.connection_error(grow, ErrorCode.FLOW_CONTROL_ERROR)


def test_goaway_below_open_streams_then_late_frames_are_ignored() -> None:
    peer = Peer()
    refused = peer.open()
    events = peer.client.receive(raw(GOAWAY, 0, 0, struct.pack(">II", 1, 0) + b"bye"))
    assert events == [GoAway(1, 0, b"bye")]
    assert peer.client.open_streams == 1
    assert peer.client.receive(peer.ok_head(refused, end=True)) == []


# ---- any split of a valid byte stream -----------------------------------------------------


@given(st.lists(st.integers(min_value=0, max_value=25_000), max_size=12))
@settings(max_examples=60, deadline=None)
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    def fresh() -> tuple[H2Protocol, bytes]:
        pair = Pair()
        ids = [pair.request(path=f"/{i}") for i in range(3)]
        for stream_id in ids:
            pair.server.send_headers(stream_id, [(":status", "200"), ("x-id", str(stream_id))])
        pair.server.send_data(ids[0], b"a" * 16_000, end_stream=True)
        pair.server.send_data(ids[1], b"b" * 100, pad_length=20)
        pair.server.send_headers(ids[1], [("x-trailer", "1")], end_stream=True)
        pair.server.reset_stream(ids[2], error_code=ErrorCode.CANCEL)
        pair.server.ping(b"pingpong")
        return pair.client, pair.server.data_to_send()

    whole_client, stream = fresh()
    expected = whole_client.receive(stream)
    split_client, same = fresh()
    assert same == stream
    events: list[object] = []
    points = sorted({min(c, len(stream)) for c in cuts})
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        events += split_client.receive(stream[start:end])
    assert events == expected
    assert split_client.open_streams == whole_client.open_streams == 0
