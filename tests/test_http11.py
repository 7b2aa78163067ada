"""ResponseReader and encode_request: bytes in, events out. No socket, no clock."""

from __future__ import annotations

from collections.abc import Iterable

import httptools
import pytest

from tether.exceptions import RemoteProtocolError
from tether.protocol.http11 import (
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    ResponseReader,
    encode_chunk,
    encode_request,
    parse_keep_alive,
)


def pieces(data: bytes, size: int | None) -> list[bytes]:
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def read(
    data: bytes, *, split: int | None = None, eof: bool = False, head_request: bool = False
) -> tuple[ResponseReader, bytes]:
    """Feed ``data`` (whole, or in ``split``-byte pieces), optionally EOF; return reader, body."""
    reader = ResponseReader(head_request=head_request)
    body = bytearray()
    for piece in pieces(data, split):
        reader.feed(piece)
        body += reader.take_body()
    if eof:
        reader.feed_eof()
        body += reader.take_body()
    return reader, bytes(body)


def snapshot(reader: ResponseReader, body: bytes) -> tuple[object, ...]:
    head = reader.head
    assert head is not None
    return (
        head.status,
        head.reason,
        head.http_version,
        head.raw_headers,
        head.keep_alive,
        body,
        reader.complete,
        reader.reusable,
    )


SIMPLE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 11\r\n"
    b"X-Multi: a\r\n"
    b"x-multi:  b \r\n"
    b"\r\n"
    b"hello world"
)


# -- a normal response ---------------------------------------------------------------------------


@pytest.mark.parametrize("split", [None, 1, 2, 7, 64])
def test_content_length_response(split: int | None) -> None:
    reader, body = read(SIMPLE, split=split)
    head = reader.head
    assert head is not None
    assert head.status == 200
    assert head.reason == "OK"
    assert head.http_version == "HTTP/1.1"
    assert head.raw_headers == [
        (b"Content-Type", b"text/plain"),
        (b"Content-Length", b"11"),
        (b"X-Multi", b"a"),
        (b"x-multi", b"b"),
    ]
    assert head.content_length == 11
    assert head.keep_alive is True
    assert body == b"hello world"
    assert reader.complete is True
    assert reader.reusable is True


def test_whole_and_byte_at_a_time_agree() -> None:
    assert snapshot(*read(SIMPLE)) == snapshot(*read(SIMPLE, split=1))


def test_complete_only_at_last_body_byte() -> None:
    reader = ResponseReader()
    reader.feed(SIMPLE[:-1])
    assert reader.head is not None
    assert reader.complete is False
    assert reader.take_body() == b"hello worl"
    reader.feed(SIMPLE[-1:])
    assert reader.complete is True
    assert reader.take_body() == b"d"


def test_head_not_available_before_end_of_headers() -> None:
    reader = ResponseReader()
    end = SIMPLE.index(b"\r\n\r\n")
    reader.feed(SIMPLE[: end + 3])
    assert reader.head is None
    reader.feed(SIMPLE[end + 3 : end + 4])
    assert reader.head is not None
    assert reader.head.status == 200


def test_take_body_returns_only_new_bytes() -> None:
    reader = ResponseReader()
    reader.feed(SIMPLE[:-5])
    assert reader.take_body() == b"hello "
    assert reader.take_body() == b""
    reader.feed(SIMPLE[-5:])
    assert reader.take_body() == b"world"


@pytest.mark.parametrize(
    ("status_line", "status", "reason"),
    [
        (b"HTTP/1.1 404 Not Found", 404, "Not Found"),
        (b"HTTP/1.1 200", 200, ""),
        (b"HTTP/1.1 503 Service  Temporarily Unavailable", 503, "Service  Temporarily Unavailable"),
    ],
)
def test_status_and_reason(status_line: bytes, status: int, reason: str) -> None:
    reader, _ = read(status_line + b"\r\nContent-Length: 0\r\n\r\n")
    assert reader.head is not None
    assert (reader.head.status, reader.head.reason) == (status, reason)
    assert reader.complete


# -- chunked ---------------------------------------------------------------------------------------

CHUNKED = (
    b"HTTP/1.1 200 OK\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"5;name=value;flag\r\nhello\r\n"
    b"1\r\n \r\n"
    b"A\r\n0123456789\r\n"
    b"0\r\n"
    b"X-Trailer: t\r\n"
    b"\r\n"
)


@pytest.mark.parametrize("split", [None, 1, 3, 16])
def test_chunked_body_with_extensions_and_trailers(split: int | None) -> None:
    reader, body = read(CHUNKED, split=split)
    assert reader.head is not None
    assert reader.head.chunked is True
    assert reader.head.content_length is None
    assert body == b"hello 0123456789"
    assert reader.complete is True
    assert reader.reusable is True


def test_chunked_not_complete_before_final_crlf() -> None:
    reader = ResponseReader()
    reader.feed(CHUNKED[:-2])
    assert reader.complete is False
    reader.feed(CHUNKED[-2:])
    assert reader.complete is True


def test_chunked_without_trailers() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    reader, body = read(data, split=1)
    assert body == b"abc"
    assert reader.complete and reader.reusable


def test_encode_chunk_round_trips_through_reader() -> None:
    parts = [b"a", b"bc" * 100, b"\r\n0\r\n\r\n", b"x" * 4096]
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += b"".join(encode_chunk(p) for p in parts) + encode_chunk(b"")
    reader, body = read(data, split=5)
    assert body == b"".join(parts)
    assert reader.complete and reader.reusable


# -- close-delimited and persistence --------------------------------------------------------------


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/1.1"])
def test_close_delimited_body_completes_only_at_eof(version: bytes) -> None:
    reader = ResponseReader()
    reader.feed(version + b" 200 OK\r\nContent-Type: text/plain\r\n\r\nabc")
    reader.feed(b"def")
    assert reader.complete is False
    assert reader.take_body() == b"abcdef"
    reader.feed_eof()
    assert reader.complete is True
    assert reader.reusable is False
    assert reader.head is not None
    assert reader.head.keep_alive is False


def test_close_delimited_empty_body() -> None:
    reader, body = read(b"HTTP/1.0 200 OK\r\n\r\n", eof=True)
    assert body == b""
    assert reader.complete and not reader.reusable


def test_connection_close_is_not_keep_alive() -> None:
    reader, body = read(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
    assert reader.head is not None
    assert reader.head.keep_alive is False
    assert reader.complete and body == b"hi"


def test_http10_keep_alive_with_content_length() -> None:
    data = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi"
    reader, body = read(data)
    assert reader.head is not None
    assert reader.head.http_version == "HTTP/1.0"
    assert reader.head.keep_alive is True
    assert reader.complete and reader.reusable and body == b"hi"


def test_http10_without_keep_alive_is_not_persistent() -> None:
    reader, _ = read(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert reader.head is not None
    assert reader.head.keep_alive is False
    assert reader.complete


def test_eof_after_complete_response_marks_not_reusable_but_keeps_it() -> None:
    reader, body = read(SIMPLE, eof=True)
    assert reader.complete and body == b"hello world"
    assert reader.reusable is False


# -- HEAD ------------------------------------------------------------------------------------------

HEAD_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: x\r\n\r\n"


@pytest.mark.parametrize("split", [None, 1, 5])
def test_head_response_completes_at_end_of_headers(split: int | None) -> None:
    reader, body = read(HEAD_RESPONSE, split=split, head_request=True)
    assert reader.head is not None
    assert reader.head.status == 200
    assert reader.head.raw_headers == [(b"Content-Length", b"1000"), (b"ETag", b"x")]
    assert body == b""
    assert reader.complete is True
    assert reader.reusable is True


def test_same_bytes_without_head_request_wait_for_the_body() -> None:
    reader, _ = read(HEAD_RESPONSE)
    assert reader.complete is False


def test_head_response_with_chunked_has_no_body() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    reader, body = read(data, head_request=True)
    assert reader.complete and reader.reusable and body == b""


def test_head_response_not_complete_mid_headers() -> None:
    reader = ResponseReader(head_request=True)
    reader.feed(HEAD_RESPONSE[:-1])
    assert reader.head is None
    assert reader.complete is False
    reader.feed(HEAD_RESPONSE[-1:])
    assert reader.complete is True


@pytest.mark.parametrize("separate", [False, True])
def test_bytes_after_head_response_mark_not_reusable(separate: bool) -> None:
    reader = ResponseReader(head_request=True)
    if separate:
        reader.feed(HEAD_RESPONSE)
        assert reader.reusable is True
        reader.feed(b"X")
    else:
        reader.feed(HEAD_RESPONSE + b"X")
    assert reader.complete is True
    assert reader.take_body() == b""
    assert reader.reusable is False


def test_head_response_after_100_continue() -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD_RESPONSE
    reader, body = read(data, split=3, head_request=True)
    assert reader.head is not None
    assert reader.head.status == 200
    assert reader.complete and reader.reusable and body == b""


# -- 1xx, 204, 304 -------------------------------------------------------------------------------

FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nhi"


@pytest.mark.parametrize("split", [None, 1, 9])
def test_100_continue_is_skipped(split: int | None) -> None:
    reader, body = read(b"HTTP/1.1 100 Continue\r\n\r\n" + FINAL, split=split)
    assert reader.head is not None
    assert reader.head.status == 200
    assert reader.head.raw_headers == [(b"Content-Length", b"2"), (b"X-Final", b"1")]
    assert body == b"hi"
    assert reader.complete and reader.reusable


@pytest.mark.parametrize("split", [None, 1])
def test_103_early_hints_headers_do_not_leak_into_final_head(split: int | None) -> None:
    early = (
        b"HTTP/1.1 103 Early Hints\r\n"
        b"Link: </style.css>; rel=preload\r\n"
        b"Link: </app.js>; rel=preload\r\n"
        b"\r\n"
    )
    reader, body = read(early + early + FINAL, split=split)
    assert reader.head is not None
    assert reader.head.status == 200
    assert reader.head.reason == "OK"
    assert [name for name, _ in reader.head.raw_headers] == [b"Content-Length", b"X-Final"]
    assert body == b"hi"
    assert reader.complete


def test_only_an_interim_response_is_no_head_yet() -> None:
    reader = ResponseReader()
    reader.feed(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert reader.head is None
    assert reader.complete is False
    with pytest.raises(RemoteProtocolError):
        reader.feed_eof()


@pytest.mark.parametrize("head_request", [False, True])
def test_101_switching_protocols_is_an_error(head_request: bool) -> None:
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with pytest.raises(RemoteProtocolError, match="101"):
        read(data, head_request=head_request)


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_204_and_304_have_no_body_whatever_content_length_says(status: bytes) -> None:
    reader, body = read(b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\n")
    assert reader.head is not None
    assert reader.head.content_length is None
    assert body == b""
    assert reader.complete is True
    assert reader.reusable is True


def test_bytes_after_204_are_not_its_body() -> None:
    reader, body = read(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello")
    assert body == b""
    assert reader.complete is True
    assert reader.reusable is False


# -- framing errors and smuggling shapes ----------------------------------------------------------

BAD_RESPONSES = {
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    "te-and-cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
    b"0\r\n\r\n",
    "cl-and-te-lowercase": b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: identity"
    b"\r\n\r\nabc",
    "two-equal-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
    "two-different-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
    "cl-list": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi",
    "negative-cl": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    "plus-cl": b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi",
    "alpha-cl": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    "hex-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
    "empty-cl": b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
    "overflow-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nhi",
    "nul-in-value": b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
    "bare-cr-in-value": b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",
    "bare-lf-everywhere": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
    "bare-lf-status-line": b"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nhi",
    "bare-lf-header": b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nhi",
    "space-before-first-header": b"HTTP/1.1 200 OK\r\n X: a\r\nContent-Length: 0\r\n\r\n",
    "empty-header-name": b"HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n",
    "ssh-banner": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "html": b"<html><body>hello</body></html>\r\n\r\n",
    "http2-version": b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
    "alpha-status": b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
}
BAD_CHUNKED = {
    "chunk-size-alpha": b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": b"-5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-overflow": b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "chunk-size-space": b"5 \r\nhello\r\n0\r\n\r\n",
    "chunk-size-bare-lf": b"5\nhello\r\n0\r\n\r\n",
    "chunk-data-bare-lf": b"5\r\nhello\n0\r\n\r\n",
    "chunk-data-too-long": b"5\r\nhelloX\r\n0\r\n\r\n",
    "content-length-trailer": b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
}


@pytest.mark.parametrize("split", [None, 1])
@pytest.mark.parametrize("data", BAD_RESPONSES.values(), ids=BAD_RESPONSES.keys())
def test_malformed_response_is_refused(data: bytes, split: int | None) -> None:
    with pytest.raises(RemoteProtocolError):
        read(data, split=split, eof=True)


@pytest.mark.parametrize("split", [None, 1])
@pytest.mark.parametrize("chunks", BAD_CHUNKED.values(), ids=BAD_CHUNKED.keys())
def test_malformed_chunked_body_is_refused(chunks: bytes, split: int | None) -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    with pytest.raises(RemoteProtocolError):
        read(data, split=split, eof=True)


@pytest.mark.parametrize(
    "key", ["cl-and-te", "te-and-cl", "two-equal-cl", "two-different-cl", "negative-cl"]
)
def test_smuggling_shapes_refused_for_head_requests_too(key: str) -> None:
    with pytest.raises(RemoteProtocolError):
        read(BAD_RESPONSES[key], head_request=True)


def test_obs_fold_is_refused_not_split_into_two_headers() -> None:
    data = b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n"
    # llhttp refuses obsolete line folding; that is the safe outcome (a folded line must never
    # become a header of its own).
    for split in (None, 1):
        with pytest.raises(RemoteProtocolError):
            read(data, split=split)


def _big_header_response(size: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * size + b"\r\nContent-Length: 0\r\n\r\n"


def test_header_block_far_over_limit_arriving_in_pieces_is_refused() -> None:
    data = _big_header_response(2 * MAX_HEADER_BYTES)
    reader = ResponseReader()
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        for piece in pieces(data, 4096):
            reader.feed(piece)
    assert reader.bytes_received <= MAX_HEADER_BYTES + 4096


def test_header_block_over_limit_without_end_is_refused() -> None:
    reader = ResponseReader()
    reader.feed(b"HTTP/1.1 200 OK\r\nX-Big: ")
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        reader.feed(b"a" * (MAX_HEADER_BYTES + 1))


def test_head_request_header_block_far_over_limit_in_pieces_is_refused() -> None:
    data = _big_header_response(2 * MAX_HEADER_BYTES)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        read(data, split=4096, head_request=True)


@pytest.mark.parametrize("split", [None, 4096], ids=["whole", "4KiB-pieces"])
@pytest.mark.parametrize("head_request", [False, True])
def test_header_block_over_limit_is_refused(head_request: bool, split: int | None) -> None:
    with pytest.raises(RemoteProtocolError):
        read(_big_header_response(MAX_HEADER_BYTES + 1000), split=split, head_request=head_request)


def test_endless_interim_responses_in_one_feed_are_refused() -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n" * 5000
    with pytest.raises(RemoteProtocolError):
        read(early + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def test_header_block_under_limit_is_accepted() -> None:
    reader, _ = read(_big_header_response(MAX_HEADER_BYTES - 1000), split=4096)
    assert reader.complete
    assert reader.head is not None
    assert len(reader.head.raw_headers[0][1]) == MAX_HEADER_BYTES - 1000


def _many_headers(count: int) -> bytes:
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(count - 1))
    return b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n"


@pytest.mark.parametrize("head_request", [False, True])
def test_more_than_max_headers_is_refused(head_request: bool) -> None:
    with pytest.raises(RemoteProtocolError, match="headers"):
        read(_many_headers(MAX_HEADERS + 1), head_request=head_request)


def test_exactly_max_headers_is_accepted() -> None:
    reader, _ = read(_many_headers(MAX_HEADERS))
    assert reader.complete
    assert reader.head is not None
    assert len(reader.head.raw_headers) == MAX_HEADERS


# -- EOF -------------------------------------------------------------------------------------------


def test_eof_before_any_byte() -> None:
    reader = ResponseReader()
    with pytest.raises(RemoteProtocolError, match="without sending a response"):
        reader.feed_eof()


@pytest.mark.parametrize("head_request", [False, True])
def test_eof_mid_head(head_request: bool) -> None:
    reader = ResponseReader(head_request=head_request)
    reader.feed(b"HTTP/1.1 200 OK\r\nContent-Len")
    with pytest.raises(RemoteProtocolError, match="head"):
        reader.feed_eof()
    assert reader.complete is False


@pytest.mark.parametrize("split", [None, 1])
def test_eof_mid_body_reports_received_and_expected(split: int | None) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    with pytest.raises(RemoteProtocolError, match="received 3 of 10 bytes"):
        read(data, split=split, eof=True)


def test_eof_right_after_head_with_content_length() -> None:
    with pytest.raises(RemoteProtocolError, match="received 0 of 7 bytes"):
        read(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", eof=True)


@pytest.mark.parametrize(
    "tail",
    [b"", b"5\r\nhel", b"5\r\nhello\r\n", b"5\r\nhello\r\n0\r\n", b"5\r\nhello\r\n0\r\nX: 1\r\n"],
    ids=["no-chunk", "mid-chunk", "between-chunks", "after-last-chunk", "mid-trailers"],
)
def test_eof_inside_chunked_body(tail: bytes) -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tail
    reader = ResponseReader()
    reader.feed(data)
    with pytest.raises(RemoteProtocolError):
        reader.feed_eof()
    assert reader.complete is False


def test_eof_inside_chunked_body_with_two_transfer_encoding_lines() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n"
    )
    reader = ResponseReader()
    reader.feed(data)
    with pytest.raises(RemoteProtocolError):
        reader.feed_eof()


def test_close_delimited_when_chunked_is_not_the_final_coding_across_lines() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\nabc"
    reader, body = read(data, eof=True)
    assert reader.complete and body == b"abc"


def test_close_delimited_when_chunked_is_not_the_final_coding() -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc"
    reader, body = read(data)
    assert reader.complete is False
    reader.feed_eof()
    assert reader.complete and body + reader.take_body() == b"abc"


@pytest.mark.parametrize(
    "prefix", [b"\r\n\r\n", b"HTTP/1.1 100 Continue\r\n\r\n\r\n\r\n"], ids=["start", "after-1xx"]
)
def test_blank_lines_before_status_line_keep_the_framing(prefix: bytes) -> None:
    data = prefix + b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"
    reader = ResponseReader()
    reader.feed(data)
    assert reader.head is not None
    assert reader.head.raw_headers == [(b"Content-Length", b"10")]
    with pytest.raises(RemoteProtocolError, match="received 5 of 10 bytes"):
        reader.feed_eof()


# -- bytes after a complete response --------------------------------------------------------------

SECOND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad"


def test_second_response_in_a_later_feed_leaves_the_first_standing() -> None:
    reader = ResponseReader()
    reader.feed(FINAL)
    assert reader.reusable is True
    reader.feed(SECOND)
    assert reader.head is not None
    assert reader.head.status == 200
    assert reader.take_body() == b"hi"
    assert reader.complete is True
    assert reader.reusable is False


def test_second_response_in_the_same_feed_leaves_the_first_standing() -> None:
    reader, body = read(FINAL + SECOND)
    assert reader.head is not None
    assert reader.head.status == 200
    assert reader.head.raw_headers == [(b"Content-Length", b"2"), (b"X-Final", b"1")]
    assert body == b"hi"
    assert reader.complete is True
    assert reader.reusable is False


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("garbage", [b"garbage", b"\x00", b"hi", b"0\r\n\r\n"])
def test_garbage_after_response_leaves_it_standing(garbage: bytes, separate: bool) -> None:
    reader = ResponseReader()
    if separate:
        reader.feed(FINAL)
        reader.feed(garbage)
    else:
        reader.feed(FINAL + garbage)
    assert reader.head is not None
    assert reader.head.status == 200
    assert reader.take_body() == b"hi"
    assert reader.complete is True
    assert reader.reusable is False


def test_stray_crlf_after_response_same_verdict_however_fed() -> None:
    whole = ResponseReader()
    whole.feed(FINAL + b"\r\n")
    separate = ResponseReader()
    separate.feed(FINAL)
    separate.feed(b"\r\n")
    assert whole.complete and separate.complete
    assert whole.reusable == separate.reusable


def test_feeding_no_bytes_after_response_keeps_it_reusable() -> None:
    reader = ResponseReader()
    reader.feed(FINAL)
    reader.feed(b"")
    assert reader.reusable is True


# -- Keep-Alive ------------------------------------------------------------------------------------


def test_keep_alive_header_is_read_into_the_head() -> None:
    data = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n"
    reader, _ = read(data)
    assert reader.head is not None
    assert reader.head.keep_alive_timeout == 5.0
    assert reader.head.keep_alive_max == 100


def test_no_keep_alive_header_means_no_announced_limits() -> None:
    reader, _ = read(SIMPLE)
    assert reader.head is not None
    assert reader.head.keep_alive_timeout is None
    assert reader.head.keep_alive_max is None


def test_keep_alive_header_of_interim_response_is_ignored() -> None:
    data = b"HTTP/1.1 100 Continue\r\nKeep-Alive: timeout=1\r\n\r\n" + FINAL
    reader, _ = read(data)
    assert reader.head is not None
    assert reader.head.keep_alive_timeout is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"timeout=5, max=100", (5.0, 100)),
        (b"timeout=5,max=100", (5.0, 100)),
        (b"  TIMEOUT = 5 ,  Max=  100  ", (5.0, 100)),
        (b'timeout="7", max="3"', (7.0, 3)),
        (b"timeout=2.5", (2.5, None)),
        (b"max=10", (None, 10)),
        (b"", (None, None)),
        (b"timeout=abc, max=7", (None, 7)),
        (b"timeout=4, max=lots", (4.0, None)),
        (b"garbage, =, foo=bar, timeout=3", (3.0, None)),
        (b"timeout=-5, max=-1", (0.0, 0)),
        (b"max=1.5, timeout=1", (1.0, None)),
        (b"timeout", (None, None)),
    ],
)
def test_parse_keep_alive(value: bytes, expected: tuple[float | None, int | None]) -> None:
    assert parse_keep_alive(value) == expected


# -- encode_request --------------------------------------------------------------------------------


def parse_request(data: bytes) -> tuple[str, bytes, list[tuple[bytes, bytes]], bytes, bool]:
    """Parse request bytes with llhttp: (method, url, headers, body, complete)."""

    class Sink:
        def __init__(self) -> None:
            self.url = b""
            self.headers: list[tuple[bytes, bytes]] = []
            self.body = b""
            self.complete = False

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            self.complete = True

    sink = Sink()
    parser = httptools.HttpRequestParser(sink)
    parser.feed_data(data)
    return parser.get_method().decode(), sink.url, sink.headers, sink.body, sink.complete


def test_bytes_body_gets_content_length() -> None:
    data = encode_request("POST", "/submit?x=1", "example.com", b"X-A: 1\r\n", b"hello")
    assert data == (
        b"POST /submit?x=1 HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"Content-Length: 5\r\n"
        b"X-A: 1\r\n"
        b"\r\n"
        b"hello"
    )
    method, url, headers, body, complete = parse_request(data)
    assert (method, url, body, complete) == ("POST", b"/submit?x=1", b"hello", True)
    assert (b"Content-Length", b"5") in headers


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_method_without_body_gets_content_length_zero(method: str) -> None:
    data = encode_request(method, "/", "h", b"", None)
    assert data == f"{method} / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n".encode()
    assert parse_request(data)[4] is True


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "DELETE"])
def test_bodyless_method_without_body_gets_no_length(method: str) -> None:
    data = encode_request(method, "/x", "h:8080", b"Accept: */*\r\n", None)
    assert data == f"{method} /x HTTP/1.1\r\nHost: h:8080\r\nAccept: */*\r\n\r\n".encode()
    assert b"content-length" not in data.lower()
    assert b"transfer-encoding" not in data.lower()


def test_empty_bytes_body_gets_content_length_zero() -> None:
    data = encode_request("GET", "/", "h", b"", b"")
    assert b"\r\nContent-Length: 0\r\n" in data
    assert data.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("body", [[b"a", b"b"], iter([b"a"]), (b"x" for _ in range(2))])
def test_iterable_body_is_sent_chunked(body: Iterable[bytes]) -> None:
    data = encode_request("POST", "/up", "h", b"", body)
    assert data == b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    stream = data + encode_chunk(b"abc") + encode_chunk(b"de") + encode_chunk(b"")
    method, _, _, received, complete = parse_request(stream)
    assert (method, received, complete) == ("POST", b"abcde", True)


def test_user_supplied_host_and_length_are_not_duplicated() -> None:
    block = b"Host: other\r\nContent-Length: 3\r\n"
    data = encode_request("POST", "/", "h", block, b"abc", has_host=True, has_length=True)
    assert data == b"POST / HTTP/1.1\r\nHost: other\r\nContent-Length: 3\r\n\r\nabc"
    assert data.lower().count(b"host:") == 1
    assert data.lower().count(b"content-length:") == 1


def test_user_supplied_transfer_encoding_is_not_duplicated() -> None:
    block = b"Transfer-Encoding: chunked\r\n"
    data = encode_request("POST", "/", "h", block, [b"x"], has_length=True)
    assert data.lower().count(b"transfer-encoding:") == 1


def test_user_supplied_length_suppresses_content_length_zero() -> None:
    data = encode_request("POST", "/", "h", b"Content-Length: 0\r\n", None, has_length=True)
    assert data.lower().count(b"content-length:") == 1


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"hello", b"5\r\nhello\r\n"),
        (b"x" * 255, b"ff\r\n" + b"x" * 255 + b"\r\n"),
        (b"x" * 4096, b"1000\r\n" + b"x" * 4096 + b"\r\n"),
        (b"\r\n", b"2\r\n\r\n\r\n"),
        (b"", b"0\r\n\r\n"),
    ],
)
def test_encode_chunk(data: bytes, expected: bytes) -> None:
    assert encode_chunk(data) == expected
