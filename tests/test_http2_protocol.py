"""tether's sans-I/O HTTP/2 client against h2's server side in memory: no sockets.

Each side's bytes are fed to the other; the server is h2 (a different implementation), so a
test passes only if both agree on the wire.
"""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from tether.exceptions import LocalProtocolError
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
    goaway = [e for e in events if isinstance(e, GoAway)][0]
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
    big = [("x-big-%d" % i, "v" * 1000) for i in range(40)]
    head = request_headers("GET", "https", "example.com", "/", big)
    stream_id, frames = pair.client.send_headers(head, True)
    pair.pump(frames)
    got = [e for e in pair.server_events if isinstance(e, h2.events.RequestReceived)][0]
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
