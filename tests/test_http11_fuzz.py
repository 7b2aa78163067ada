"""Property tests for ResponseReader: whatever the bytes and however they are split, the outcome
is a complete response or RemoteProtocolError, the same outcome for every split, and the
smuggling shapes are never accepted."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tether.exceptions import RemoteProtocolError
from tether.protocol.http11 import ResponseReader

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Outcome = tuple[object, ...]


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into non-empty pieces of ``sizes`` (cycled); [] means one piece."""
    if not sizes:
        return [data] if data else []
    out = []
    pos = step = 0
    while pos < len(data):
        size = sizes[step % len(sizes)]
        out.append(data[pos : pos + size])
        pos += size
        step += 1
    return out


def feed_all(data: bytes, sizes: list[int], *, head_request: bool = False) -> Outcome:
    """Feed ``data`` in pieces of ``sizes`` (cycled; [] means whole), then EOF.

    Returns ("error",) or ("complete", status, raw_headers, body). Any exception other than
    RemoteProtocolError escapes and fails the test.
    """
    reader = ResponseReader(head_request=head_request)
    body = bytearray()
    try:
        for piece in split(data, sizes):
            reader.feed(piece)
            body += reader.take_body()
        reader.feed_eof()
        body += reader.take_body()
    except RemoteProtocolError:
        assert reader.complete is False or reader.reusable is False
        return ("error",)
    # feed_eof returned without error: the response must be complete.
    assert reader.complete is True
    assert reader.reusable is False  # after EOF, never
    head = reader.head
    assert head is not None
    assert not 100 <= head.status < 200
    if head_request or head.status in (204, 304):
        assert body == b""
    lengths = [v for n, v in head.raw_headers if n.lower() == b"content-length"]
    has_te = any(n.lower() == b"transfer-encoding" for n, _ in head.raw_headers)
    assert len(lengths) <= 1, "a repeated Content-Length was accepted"
    assert not (lengths and has_te), "Content-Length with Transfer-Encoding was accepted"
    if lengths and not head_request and head.status not in (204, 304):
        assert len(body) == int(lengths[0])
    return ("complete", head.status, head.raw_headers, bytes(body))


# -- strategies -----------------------------------------------------------------------------------

splits = st.lists(st.integers(min_value=1, max_value=40), min_size=0, max_size=12)
TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
FRAMING_NAMES = {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"}
header_names = st.text(TOKEN, min_size=1, max_size=12).filter(
    lambda n: n.lower() not in FRAMING_NAMES
)
header_values = st.text("abcdefghijklmnopqrstuvwxyz0123456789 ;=,/\"'()<>:.-\t", max_size=24).map(
    lambda v: v.strip(" \t")
)
bodies = st.binary(max_size=120).filter(lambda b: b"HTTP/" not in b)


INTERIM = [
    b"",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n",
]


@dataclass
class Built:
    interim: bytes  # 1xx responses before the final one (may be empty)
    head: bytes  # the final status line and headers, up to and including the blank line
    payload: bytes  # the body as framed on the wire
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    framing: str

    @property
    def data(self) -> bytes:
        return self.interim + self.head + self.payload

    def with_header_line(self, line: bytes, index: int) -> bytes:
        """The message with ``line`` inserted among the final head's header lines."""
        lines = self.head[:-4].split(b"\r\n")
        lines.insert(1 + index % len(lines), line)
        return self.interim + b"\r\n".join(lines) + b"\r\n\r\n" + self.payload


@st.composite
def responses(draw: st.DrawFn, framings: tuple[str, ...] = ("length", "chunked", "close")) -> Built:
    """A valid response: Content-Length, chunked (with extensions and trailers) or close."""
    framing = draw(st.sampled_from(framings))
    version = b"1.1" if framing == "chunked" else draw(st.sampled_from([b"1.1", b"1.0"]))
    status = draw(st.sampled_from([200, 201, 203, 206, 301, 302, 400, 404, 418, 500, 503]))
    reason = draw(st.sampled_from([b"OK", b"", b"Some Reason"]))
    pairs = draw(st.lists(st.tuples(header_names, header_values), max_size=4))
    headers = [(n.encode(), v.encode()) for n, v in pairs]
    body = draw(bodies)
    interim = draw(st.sampled_from(INTERIM))
    if framing == "length":
        at = draw(st.integers(0, len(headers)))
        headers.insert(at, (b"Content-Length", str(len(body)).encode()))
    elif framing == "chunked":
        at = draw(st.integers(0, len(headers)))
        headers.insert(at, (b"Transfer-Encoding", b"chunked"))
    start = b"HTTP/" + version + b" %d" % status + (b" " + reason if reason else b"")
    head = start + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
    if framing == "chunked":
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        encoded = b""
        for chunk in chunks:
            if chunk:
                ext = draw(st.sampled_from([b"", b";a=b", b";x"]))
                encoded += b"%x%s\r\n%s\r\n" % (len(chunk), ext, chunk)
        trailer = draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"]))
        payload = encoded + b"0\r\n" + trailer + b"\r\n"
    else:
        payload = body
    return Built(interim, head, payload, status, headers, body, framing)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid response with one to four adversarial edits: to its final head's header lines
    (duplicate one, change Content-Length, add Transfer-Encoding or Content-Length), then to its
    bytes anywhere (insert CR, LF, NUL, space, tab or colon; delete; truncate)."""
    built = draw(responses())
    lines = built.head[:-4].split(b"\r\n")
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["dup-header", "flip-cl", "add-te", "add-cl"]))
        if kind == "dup-header" and len(lines) > 1:
            line = lines[draw(st.integers(1, len(lines) - 1))]
            lines.insert(draw(st.integers(1, len(lines))), line)
        elif kind == "flip-cl":
            value = draw(st.sampled_from([b"0", b"1", b"5", b"-1", b"1000", b"abc", b"2, 2", b""]))
            lines = [
                b"Content-Length: " + value if ln.lower().startswith(b"content-length:") else ln
                for ln in lines
            ]
        elif kind in ("add-te", "add-cl"):
            name = b"Transfer-Encoding" if kind == "add-te" else b"Content-Length"
            value = draw(st.sampled_from([b"chunked", b"gzip", b"identity", b"3", b"0"]))
            lines.insert(draw(st.integers(1, len(lines))), name + b": " + value)
    data = built.interim + b"\r\n".join(lines) + b"\r\n\r\n" + built.payload
    for _ in range(draw(st.integers(0 if data != built.data else 1, 2))):
        kind = draw(st.sampled_from(["insert", "insert", "delete", "truncate"]))
        if kind == "insert":
            what = draw(st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":"]))
            at = draw(st.integers(0, len(data)))
            data = data[:at] + what + data[at:]
        elif kind == "delete" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + data[at + draw(st.integers(1, 3)) :]
        elif kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
    return data


# -- properties -----------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300), sizes=splits, head_request=st.booleans())
def test_arbitrary_bytes_complete_or_protocol_error(
    data: bytes, sizes: list[int], head_request: bool
) -> None:
    feed_all(data, sizes, head_request=head_request)


@FUZZ
@given(tail=st.binary(max_size=200), sizes=splits, head_request=st.booleans())
def test_arbitrary_bytes_after_a_status_line_prefix(
    tail: bytes, sizes: list[int], head_request: bool
) -> None:
    data = b"HTTP/1.1 200 OK\r\n" + tail
    assert feed_all(data, sizes, head_request=head_request) == feed_all(
        data, [], head_request=head_request
    )


@FUZZ
@given(built=responses(), sizes=splits)
def test_valid_response_round_trips_for_any_split(built: Built, sizes: list[int]) -> None:
    outcome = feed_all(built.data, sizes)
    assert outcome == ("complete", built.status, built.headers, built.body)


@FUZZ
@given(built=responses(), sizes=splits)
def test_valid_response_to_head_has_no_body_and_completes_without_eof(
    built: Built, sizes: list[int]
) -> None:
    reader = ResponseReader(head_request=True)
    for piece in split(built.interim + built.head, sizes):
        reader.feed(piece)
    assert reader.complete is True
    assert reader.reusable is True
    assert reader.head is not None
    assert reader.head.status == built.status
    assert reader.head.raw_headers == built.headers
    assert reader.take_body() == b""


@FUZZ
@given(data=mutated(), sizes=splits, other=splits, head_request=st.booleans())
def test_mutated_response_same_outcome_for_any_split(
    data: bytes, sizes: list[int], other: list[int], head_request: bool
) -> None:
    whole = feed_all(data, [], head_request=head_request)
    assert feed_all(data, sizes, head_request=head_request) == whole
    assert feed_all(data, other, head_request=head_request) == whole
    assert feed_all(data, [1], head_request=head_request) == whole


CODINGS = [b"chunked", b"gzip, chunked", b"identity", b"gzip", b" chunked"]


def random_case(draw: st.DrawFn, name: bytes) -> bytes:
    mask = draw(st.integers(0, 2 ** len(name) - 1))
    return bytes(c ^ 0x20 if mask >> i & 1 and c >= 0x41 else c for i, c in enumerate(name))


@FUZZ
@given(data=st.data(), sizes=splits, head_request=st.booleans())
def test_content_length_with_transfer_encoding_is_never_accepted(
    data: st.DataObject, sizes: list[int], head_request: bool
) -> None:
    built = data.draw(responses(("length", "chunked")))
    if built.framing == "length":
        name, value = b"Transfer-Encoding", data.draw(st.sampled_from(CODINGS))
    else:
        name, value = b"Content-Length", b"%d" % data.draw(st.integers(0, 300))
    line = random_case(data.draw, name) + b": " + value
    message = built.with_header_line(line, data.draw(st.integers(0, 10)))
    assert feed_all(message, sizes, head_request=head_request) == ("error",)


@FUZZ
@given(data=st.data(), sizes=splits, head_request=st.booleans())
def test_repeated_content_length_is_never_accepted(
    data: st.DataObject, sizes: list[int], head_request: bool
) -> None:
    built = data.draw(responses(("length",)))
    value = data.draw(st.sampled_from([b"%d" % len(built.body), b"0", b"7"]))
    line = random_case(data.draw, b"Content-Length") + b": " + value
    message = built.with_header_line(line, data.draw(st.integers(0, 10)))
    assert feed_all(message, sizes, head_request=head_request) == ("error",)
