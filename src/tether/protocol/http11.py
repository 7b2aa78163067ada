"""HTTP/1.1 for a client, sans-I/O: request bytes out, response bytes in, no socket, no clock.

`encode_request` turns a validated request into the bytes to write. `ResponseReader` takes the
bytes a server sends (in pieces of any size) and says, through its attributes, what it has
understood so far: ``head`` once the final status line and headers are complete, the body in
``take_body()``, ``complete`` at the end of the message, and ``reusable`` whether the connection
may carry another request afterwards.

Framing is llhttp's (through httptools), which refuses the smuggling shapes: both
Content-Length and Transfer-Encoding, repeated or invalid Content-Length, bad chunk sizes, bare
LF line ends. What llhttp cannot know is ours: a response to HEAD has no body whatever its
headers say, 1xx interim responses are skipped, and the limits on the header block.
"""

from __future__ import annotations

from collections.abc import Iterable

import httptools

from ..exceptions import RemoteProtocolError
from ..models import URL, Request

__all__ = [
    "ResponseHead",
    "ResponseReader",
    "absolute_target",
    "encode_request",
    "parse_keep_alive",
    "request_bytes",
]

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "DELETE", "CONNECT"})


def encode_request(
    method: str,
    target: str,
    host: str,
    header_block: bytes,
    body: bytes | Iterable[bytes] | None,
    *,
    has_host: bool = False,
    has_length: bool = False,
    body_length: int | None = None,
) -> bytes:
    """The request line and header block (and a bytes body) ready to write.

    ``header_block`` is already validated and encoded (see ``Headers.encode``). A bytes body gets
    a Content-Length, an iterable one is sent chunked (see ``encode_chunk``) unless its
    ``body_length`` is known (a file), and a method that normally carries a body gets
    ``Content-Length: 0`` when it has none.
    """
    head = f"{method} {target} HTTP/1.1\r\n"
    if not has_host:
        head += f"Host: {host}\r\n"
    if isinstance(body, bytes):
        if not has_length:
            head += f"Content-Length: {len(body)}\r\n"
        return b"".join((head.encode("latin-1"), header_block, b"\r\n", body))
    if body is not None:
        if not has_length:
            if body_length is None:
                head += "Transfer-Encoding: chunked\r\n"
            else:
                head += f"Content-Length: {body_length}\r\n"
    elif method not in BODYLESS_METHODS and not has_length:
        head += "Content-Length: 0\r\n"
    return b"".join((head.encode("latin-1"), header_block, b"\r\n"))


def request_bytes(
    request: Request, proxy_head: bytes | None = None
) -> tuple[bytes, bool, int | None]:
    """What both drivers write for ``request``: (bytes, wants_close, declared length).

    The framing is checked here, where the bytes are made: headers may have changed since the
    Request was built, and a Content-Length that lies about the body would smuggle a request.
    ``proxy_head``: the connection goes to a forward proxy, so the target is absolute-form and
    the proxy's own headers (its credentials) are added.
    """
    block, has_host, has_length, wants_close, declared = request.framing()
    url = request.url
    target = url.target
    if proxy_head is not None:
        target, block = absolute_target(url), block + proxy_head
    data = encode_request(
        request.method,
        target,
        url.host_header,
        block,
        request.body,
        has_host=has_host,
        has_length=has_length,
        body_length=None if has_length else declared,
    )
    return data, wants_close, declared


def absolute_target(url: URL) -> str:
    """The absolute-form request-target a forward proxy needs (RFC 9112 §3.2.2)."""
    return f"{url.origin.scheme}://{url.host_header}{url.target}"


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked request body; ``b""`` gives the last chunk."""
    if not data:
        return b"0\r\n\r\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def parse_keep_alive(value: bytes) -> tuple[float | None, int | None]:
    """Read ``Keep-Alive: timeout=5, max=100`` into (timeout, max); unknown parts are ignored."""
    timeout: float | None = None
    max_requests: int | None = None
    for part in value.split(b","):
        key, _, number = part.partition(b"=")
        key = key.strip().lower()
        try:
            if key == b"timeout":
                timeout = max(0.0, float(number.strip(b' "')))
            elif key == b"max":
                max_requests = max(0, int(number.strip(b' "')))
        except ValueError:
            continue
    return timeout, max_requests


class ResponseHead:
    """The final status line and headers of a response, with what framing learnt from them.

    The header block is kept as received and split into (name, value) pairs only when someone
    asks (``raw_headers``): most responses on the hot path never need more than status and
    the framing headers, which are found by a search of the lowered block.
    """

    __slots__ = (
        "_block",
        "_lower",
        "_pairs",
        "has_body",
        "http_version",
        "keep_alive",
        "keep_alive_max",
        "keep_alive_timeout",
        "status",
    )

    def __init__(
        self, status: int, block: bytes, http_version: str, keep_alive: bool, has_body: bool
    ) -> None:
        self.status = status
        self._block = block  # status line and header lines, CRLF-separated, no final CRLFCRLF
        self._pairs: list[tuple[bytes, bytes]] | None = None
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.has_body = has_body  # False for HEAD, 1xx, 204 and 304 whatever the headers say
        self.keep_alive_timeout: float | None = None
        self.keep_alive_max: int | None = None
        lower = self._lower = block.lower()
        if b"\r\nkeep-alive:" in lower:
            value = _value_of(block, lower, b"\r\nkeep-alive:")
            self.keep_alive_timeout, self.keep_alive_max = parse_keep_alive(value)

    def has_header(self, name: bytes) -> bool:
        """Is there a header ``name`` (lower case)? A search of the lowered block."""
        return b"\r\n" + name + b":" in self._lower

    @property
    def content_length(self) -> int | None:
        """The announced body length (None: chunked, close-delimited, or no body)."""
        if not self.has_body or b"\r\ncontent-length:" not in self._lower:
            return None
        return int(_value_of(self._block, self._lower, b"\r\ncontent-length:"))

    @property
    def chunked(self) -> bool:
        """Is the body framed by chunked transfer coding (the last coding of all TE lines)?"""
        if not self.has_body or b"\r\ntransfer-encoding:" not in self._lower:
            return False
        codings = [v for n, v in self.raw_headers if n.lower() == b"transfer-encoding"]
        return b",".join(codings).rsplit(b",", 1)[-1].strip().lower() == b"chunked"

    @property
    def reason(self) -> str:
        line = self._block.split(b"\r\n", 1)[0]
        parts = line.split(b" ", 2)
        return parts[2].decode("latin-1") if len(parts) > 2 else ""

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as (name, value) byte pairs, in the order received."""
        if self._pairs is None:
            pairs: list[tuple[bytes, bytes]] = []
            for line in self._block.split(b"\r\n")[1:]:
                if line[:1] in (b" ", b"\t") and pairs:  # obsolete line folding
                    name, value = pairs[-1]
                    pairs[-1] = (name, value + b" " + line.strip(b" \t"))
                    continue
                name, _, value = line.partition(b":")
                pairs.append((name, value.strip(b" \t")))
            self._pairs = pairs
        return self._pairs


def _value_of(block: bytes, lower: bytes, marker: bytes) -> bytes:
    """The value of the first header line ``marker`` starts (found in the lowered copy)."""
    start = lower.index(marker) + len(marker)
    end = lower.find(b"\r\n", start)
    return block[start : end if end >= 0 else len(block)].strip(b" \t")


_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


class _HeadDone(Exception):
    """Raised from the parser callback to stop at the end of a HEAD response's headers."""


class ResponseReader:
    """Parses one response. Feed it bytes and EOF; read ``head``, the body and ``complete``."""

    __slots__ = (
        "_block_start",
        "_body",
        "_current",
        "_is_head",
        "_parser",
        "body_received",
        "bytes_received",
        "complete",
        "head",
        "reusable",
    )

    def __init__(self, *, head_request: bool = False) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._is_head = head_request
        self._current = b""  # the bytes of the head received so far
        self._block_start = 0  # where the current header block starts (after any 1xx)
        self._body: list[bytes] = []
        self.head: ResponseHead | None = None
        self.complete = False
        self.reusable = True
        self.bytes_received = 0
        self.body_received = 0

    def restart(self, *, head_request: bool = False) -> None:
        """Get ready for the next response on the same connection.

        llhttp's state is kept when the last response ended cleanly (it is then at the start
        of the next message); after a HEAD response, an error or stray bytes it is replaced.
        """
        if not (self.complete and self.reusable) or self._is_head:
            self._parser = httptools.HttpResponseParser(self)
        self._is_head = head_request
        self._current = b""
        self._block_start = 0
        self._body = []
        self.head = None
        self.complete = False
        self.reusable = True
        self.bytes_received = 0
        self.body_received = 0

    # -- input -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take bytes from the server. Raises RemoteProtocolError on anything malformed."""
        self.bytes_received += len(data)
        if self.complete:
            # Bytes after the end of a response: the connection is in an unknown state
            # (empty lines excepted: llhttp skips those between messages too).
            if data.strip(b"\r\n"):
                self.reusable = False
            return
        if self.head is None:
            self._current = self._current + data if self._current else data
            if self._is_head:
                self._feed_head_response()
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._callback_failed(exc)
        except httptools.HttpParserUpgrade:
            raise RemoteProtocolError("server switched protocols (101) unasked") from None
        except httptools.HttpParserError as exc:
            self._parse_failed(exc)
        if self.head is None and len(self._current) > MAX_HEADER_BYTES:
            raise RemoteProtocolError(f"response header block exceeds {MAX_HEADER_BYTES} bytes")

    def feed_eof(self) -> None:
        """The server closed its side. Completes a close-delimited body, otherwise is an error."""
        self.reusable = False
        if self.complete:
            return
        head = self.head
        if head is None:
            if self.bytes_received == 0:
                raise RemoteProtocolError("server closed the connection without sending a response")
            raise RemoteProtocolError(
                f"server closed the connection in the middle of the response head "
                f"after {self.bytes_received} bytes"
            )
        if head.content_length is not None:
            raise RemoteProtocolError(
                f"response body shorter than announced: received {self.body_received} of "
                f"{head.content_length} bytes"
            )
        if head.chunked:
            raise RemoteProtocolError(
                f"server closed the connection inside a chunked body after "
                f"{self.body_received} bytes"
            )
        self.complete = True  # a close-delimited body ends at EOF

    def take_body(self) -> bytes:
        """The body bytes received since the last call."""
        body = self._body
        if not body:
            return b""
        self._body = []
        return body[0] if len(body) == 1 else b"".join(body)

    # -- failures ----------------------------------------------------------------------------

    def _callback_failed(self, exc: Exception) -> None:
        cause = exc.__context__
        if isinstance(cause, RemoteProtocolError):
            raise cause from None
        raise RemoteProtocolError(f"malformed response: {cause or exc}") from None

    def _parse_failed(self, exc: Exception) -> None:
        if self.complete:
            self.reusable = False  # garbage after a complete response: the response stands
            return
        raise RemoteProtocolError(f"malformed response: {exc}") from None

    def _feed_head_response(self) -> None:
        # llhttp cannot be told the request was HEAD, so it would wait for Content-Length bytes.
        # Feed it only whole header blocks and stop it at the end of the final one.
        data = self._current
        fed = self._block_start
        while not self.complete:
            end = data.find(b"\r\n\r\n", fed)
            if end < 0:
                if len(data) - fed > MAX_HEADER_BYTES:
                    raise RemoteProtocolError(
                        f"response header block exceeds {MAX_HEADER_BYTES} bytes"
                    )
                break
            block, fed = data[fed : end + 4], end + 4
            try:
                self._parser.feed_data(block)
            except httptools.HttpParserCallbackError as exc:
                if not isinstance(exc.__context__, _HeadDone):
                    self._callback_failed(exc)
            except httptools.HttpParserError as exc:
                self._parse_failed(exc)
        if self.complete and len(data) > fed:
            self.reusable = False  # bytes after a HEAD response: unknown state

    # -- httptools callbacks -----------------------------------------------------------------

    def on_headers_complete(self) -> None:
        if self.complete:
            return  # a second response nobody asked for (on_message_begin flagged it)
        parser = self._parser
        status = parser.get_status_code()
        data = self._current
        start = self._block_start
        while data[start : start + 1] in (b"\r", b"\n"):
            start += 1  # llhttp skips empty lines before a status line; so must we
        end = data.find(b"\r\n\r\n", start)
        if end + 4 > MAX_HEADER_BYTES:  # interim responses included: no endless 1xx stream
            raise RemoteProtocolError(f"response header block exceeds {MAX_HEADER_BYTES} bytes")
        if status < 100:
            raise RemoteProtocolError(f"invalid status code {status:03d}")
        if 100 <= status < 200:
            if status == 101:
                raise RemoteProtocolError("server switched protocols (101) unasked")
            self._block_start = end + 4  # interim response: skip it, the final one follows
            return
        block = data[start:end]
        if block.count(b"\r\n") > MAX_HEADERS:
            raise RemoteProtocolError(f"response has more than {MAX_HEADERS} headers")
        version = parser.get_http_version()
        head = ResponseHead(
            status,
            block,
            _VERSIONS.get(version) or "HTTP/" + version,
            parser.should_keep_alive(),
            not (self._is_head or status == 204 or status == 304),
        )
        self.head = head
        self._current = b""
        if self._is_head:
            self.complete = True
            raise _HeadDone()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.body_received += len(body)
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.head is not None:
            self.complete = True

    def on_message_begin(self) -> None:
        if self.complete:
            self.reusable = False  # a second response nobody asked for
