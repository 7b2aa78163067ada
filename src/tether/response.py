"""The response a user gets: status, headers, body (whole or streamed) and connection facts."""

from __future__ import annotations

import io
import json as jsonlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, AnyStr, Literal, Protocol, Self, overload

from .closing import Closing
from .cookiejar import Cookies
from .decoding import (
    DecodeLimits,
    Decoder,
    LineSplitter,
    Rechunker,
    TextDecoder,
    charset_of,
    check_chunk_size,
    codings_of,
    decode_all,
    decode_text,
    detect_charset,
    known_codec,
)
from .exceptions import DecodingError, HTTPStatusError, StreamClosed, StreamConsumed, StreamError
from .models import URL, Headers, Request

__all__ = [
    "AsyncBodySource",
    "AsyncResponse",
    "BodySource",
    "ConnectionFacts",
    "ConnectionInfo",
    "RawBody",
    "Response",
    "ResponseHead",
    "Timings",
    "has_raw_header",
]


_DEFAULT_LIMITS = DecodeLimits()


class ConnectionFacts(Protocol):
    """What ``ConnectionInfo`` reads from the connection that carried a response."""

    id: int
    protocol: str
    timings: Any
    local_address: tuple[str, int]
    remote_address: tuple[str, int]
    tls: tuple[str | None, str | None, str | None]


class ResponseHead(Protocol):
    """What a response needs from its protocol's parsed head (HTTP/1.1 or HTTP/2)."""

    @property
    def status(self) -> int: ...

    @property
    def http_version(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]: ...

    def has_header(self, name: bytes) -> bool:
        """Is there a header ``name`` (lower case)? Cheaper than parsing them all."""
        ...


def has_raw_header(raw: list[tuple[bytes, bytes]], name: bytes) -> bool:
    """``has_header`` over (name, value) pairs: ``name`` is lower case."""
    size = len(name)
    return any(len(n) == size and n.lower() == name for n, _ in raw)


@dataclass(frozen=True, slots=True)
class Timings:
    """Where a request's time went, in seconds (``response.timings``).

    ``dns``, ``connect`` and ``tls`` are 0.0 when the request rode a reused connection (it
    skipped them); ``pool`` is the wait for a connection or stream beyond dialing one (and any
    earlier attempt a retry replaced); ``request`` from having the connection to the request
    written (the liveness check included); ``ttfb`` from then to the first response byte;
    ``body`` reading the body to its end (0.0 until a streamed body is read); ``total`` from
    the call into the pool to the end of the body (or the head, while a stream is unread).
    """

    dns: float
    connect: float
    tls: float
    pool: float
    request: float
    ttfb: float
    body: float
    total: float


class ConnectionInfo:
    """Which connection carried a response, and what that connection had been through.

    ``reused`` is True when the connection had carried an earlier request; ``request_number``
    says which request this was on it (1, 2, ...); ``idle_time`` how long it had sat idle in
    the pool before this request (0.0 for a new or busy connection). ``dns_time``,
    ``connect_time`` and ``tls_time`` are the set-up costs this request paid (0.0 on a reused
    connection), ``ttfb`` the seconds from the end of writing the request to the first
    response byte. ``retries`` counts how many times tether resent the request on another
    connection because it was safe (a reused one turned out dead, or an HTTP/2 server said it
    had not processed it). HTTP/2: ``protocol`` is ``"h2"``, ``stream_id`` the stream that
    carried it and ``streams_in_flight`` how many streams the connection carried (this one
    included) when it started; ``coalesced`` is True when the connection was made to another
    host name whose certificate covers this one (``Session(coalesce=True)``). Through a proxy:
    ``proxy`` is its URL without credentials (None when direct), ``tunneled`` is True when the
    connection is a tunnel (CONNECT or SOCKS) and ``tunnel_reused`` when that tunnel had
    carried an earlier request (no new handshake was paid for this one).
    """

    # Built on every response, so it copies a few numbers and reads the rest from the connection.
    __slots__ = (
        "_conn",
        "_exchange",
        "coalesced",
        "http_version",
        "idle_time",
        "proxy",
        "request_number",
        "retries",
        "started",
        "stream_id",
        "streams_in_flight",
        "ttfb",
        "tunneled",
    )

    def __init__(self, exchange: Any, retries: int, http_version: str) -> None:
        self._conn: ConnectionFacts = exchange.conn
        self._exchange = exchange  # its clock stamps make ``Response.timings``
        self.started = 0.0  # when the pool began this request (the pool sets it)
        self.request_number: int = exchange.request_number
        self.idle_time: float = exchange.idle_time
        self.ttfb: float = exchange.ttfb
        self.stream_id: int = exchange.stream_id
        self.streams_in_flight: int = exchange.streams_in_flight
        self.retries = retries
        self.http_version = http_version
        self.coalesced = False
        self.proxy: str | None = None
        self.tunneled = False

    @property
    def protocol(self) -> str:
        """``"http/1.1"`` or ``"h2"``."""
        return self._conn.protocol

    @property
    def connection_id(self) -> int:
        """A number unique to the connection within this process."""
        return self._conn.id

    @property
    def reused(self) -> bool:
        """Did this request ride a connection that had carried an earlier one?"""
        return self.request_number > 1

    @property
    def tunnel_reused(self) -> bool:
        """Did this request ride a proxy tunnel opened for an earlier one?"""
        return self.tunneled and self.request_number > 1

    @property
    def local_address(self) -> tuple[str, int]:
        return self._conn.local_address

    @property
    def remote_address(self) -> tuple[str, int]:
        return self._conn.remote_address

    @property
    def tls_version(self) -> str | None:
        return self._conn.tls[0]

    @property
    def tls_cipher(self) -> str | None:
        return self._conn.tls[1]

    @property
    def alpn_protocol(self) -> str | None:
        return self._conn.tls[2]

    @property
    def max_concurrent_streams(self) -> int:
        """How many requests the connection carries at once: 1 for HTTP/1.1, the server's
        ``SETTINGS_MAX_CONCURRENT_STREAMS`` for HTTP/2 (as it stands now)."""
        limit: int = getattr(self._conn, "stream_limit", 1)
        return limit

    @property
    def dns_time(self) -> float:
        return self._conn.timings.dns if self.request_number == 1 else 0.0

    @property
    def connect_time(self) -> float:
        return self._conn.timings.connect if self.request_number == 1 else 0.0

    @property
    def tls_time(self) -> float:
        return self._conn.timings.tls if self.request_number == 1 else 0.0

    @property
    def dial_attempts(self) -> tuple[Any, ...]:
        """How the connection was opened: every connection attempt of its dial, in the order
        started (happy eyeballs races a host's addresses), as ``DialAttempt`` records
        (``address``, ``started`` seconds into the dial, ``outcome``). The one whose outcome
        is ``"connected"`` won: it is ``remote_address``. Empty for a connection tether did
        not dial itself."""
        return tuple(getattr(self._conn.timings, "attempts", ()))

    def __repr__(self) -> str:
        stream = f" stream {self.stream_id}" if self.stream_id else ""
        return (
            f"<ConnectionInfo #{self.connection_id} {self.protocol}{stream} "
            f"request {self.request_number} "
            f"reused={self.reused} idle={self.idle_time:.3f}s ttfb={self.ttfb * 1000:.1f}ms "
            f"{self.remote_address[0]}:{self.remote_address[1]} retries={self.retries}"
            + (f" proxy={self.proxy} tunneled={self.tunneled}" if self.proxy else "")
            + ">"
        )


class BodySource(Protocol):
    """Where a streamed body comes from (the pool's hold on a connection)."""

    def read_chunk(self) -> bytes:
        """The next piece of the body; b"" at the end (the connection is then released)."""

    def close(self) -> None:
        """Give the connection back: drained and reused if cheap, otherwise closed."""

    def trailers(self) -> list[tuple[bytes, bytes]] | None:
        """The trailer fields that followed the body (HTTP/2), once it was read to the end."""


class Response(Closing):
    """An HTTP response.

    Unless it was requested with ``stream=True``, the body is already read and the connection
    is back in the pool. A streamed response holds its connection until the body is read to the
    end or the response is closed (``with`` closes it).

    The body is decoded as its Content-Encoding says (gzip, deflate, br, zstd; see
    `tether.decoding`) within ``decode_limits``: ``content``, ``text``, ``iter_bytes()`` and
    the rest give decoded bytes, ``iter_raw()`` and ``raw`` the bytes as received.
    ``bool(response)`` is ``response.ok``, as in requests.
    """

    __slots__ = (
        "_content",
        "_cookies",
        "_encoding",
        "_head",
        "_headers",
        "_raw",
        "_rawfile",
        "_source",
        "_stream_used",
        "_trailers",
        "connection_info",
        "decode_limits",
        "elapsed_seconds",
        "history",
        "http_version",
        "next",
        "request",
        "status",
    )

    def __init__(
        self,
        head: ResponseHead,
        request: Request,
        connection_info: ConnectionInfo,
        elapsed: float,
        source: BodySource | None = None,
        content: bytes | None = None,
        trailers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = head.status
        self.http_version = head.http_version
        self.request = request
        self.connection_info = connection_info
        self.elapsed_seconds = elapsed
        self.decode_limits = _DEFAULT_LIMITS
        self._head = head
        self._headers: Headers | None = None
        self._source = source
        self._raw = content  # the whole body as received (None: streamed)
        self._content: bytes | None = None  # the body decoded, once it was
        self._rawfile: RawBody | None = None
        self._encoding: str | None = None
        self._stream_used = False
        self._trailers = trailers
        self.history: list[Response] = []  # the redirects followed to get here (Session)
        self.next: Request | None = None  # the redirect's next request, when not followed
        self._cookies: Cookies | None = None

    # -- metadata -----------------------------------------------------------------------------

    @property
    def status_code(self) -> int:
        """The status, under requests' name."""
        return self.status

    def has_header(self, name: str) -> bool:
        """Did the response carry a header ``name`` (any case)? Cheaper than ``headers``."""
        if self._headers is not None:
            return name in self._headers
        return self._head.has_header(name.lower().encode("latin-1"))

    @property
    def headers(self) -> Headers:
        """Case-insensitive, multi-valued response headers."""
        if self._headers is None:
            self._headers = Headers.from_raw(self._head.raw_headers)
        return self._headers

    @property
    def trailers(self) -> Headers:
        """Trailer fields sent after the body (HTTP/2; empty when none, or not yet read)."""
        return Headers.from_raw(self._trailers or [])

    @property
    def reason(self) -> str:
        """The reason phrase of the status line (may be empty)."""
        return self._head.reason

    @property
    def url(self) -> URL:
        """The URL that was requested: a `URL`, which is a str."""
        return self.request.url

    @property
    def cookies(self) -> Cookies:
        """The cookies this response set (parsed by the Session that sent it), dict-like."""
        if self._cookies is None:
            self._cookies = Cookies()  # made when asked: most responses set none
        return self._cookies

    @property
    def next_request(self) -> Request | None:
        """httpx's name for ``next``."""
        return self.next

    @property
    def is_redirect(self) -> bool:
        """A 3xx with a Location (followed or not)."""
        return self.status in (301, 302, 303, 307, 308) and "location" in self.headers

    @property
    def timings(self) -> Timings:
        """Where this request's time went (see `Timings`): computed when asked."""
        info = self.connection_info
        ex = info._exchange
        sent = getattr(ex, "sent_at", 0.0)
        if not info.started or not sent:  # not sent by a pool (a MockTransport's response)
            return Timings(0.0, 0.0, 0.0, 0.0, 0.0, info.ttfb, 0.0, self.elapsed_seconds)
        setup = info.dns_time + info.connect_time + info.tls_time
        assigned = ex.assigned_at
        head_at = sent + info.ttfb
        done = ex.done_at
        end = done if done >= head_at else info.started + self.elapsed_seconds
        return Timings(
            info.dns_time,
            info.connect_time,
            info.tls_time,
            max(0.0, assigned - info.started - setup),
            max(0.0, sent - assigned),
            info.ttfb,
            max(0.0, done - head_at) if done >= head_at else 0.0,
            max(0.0, end - info.started),
        )

    @property
    def elapsed(self) -> timedelta:
        """From sending the request to the response head, as requests' ``timedelta``
        (``elapsed_seconds`` is the same as a float)."""
        return timedelta(seconds=self.elapsed_seconds)

    @property
    def ok(self) -> bool:
        """True unless the status is 4xx or 5xx."""
        return self.status < 400

    def __bool__(self) -> bool:
        return self.status < 400

    def raise_for_status(self) -> Response:
        """Raise HTTPStatusError for a 4xx or 5xx status (requests' message); return the
        response otherwise (so ``s.get(url).raise_for_status().json()`` works)."""
        if self.status >= 400:
            kind = "Client Error" if self.status < 500 else "Server Error"
            raise HTTPStatusError(
                f"{self.status} {kind}: {self.reason} for url: {self.url}", response=self
            )
        return self

    # -- body ---------------------------------------------------------------------------------

    @property
    def content(self) -> bytes:
        """The whole body, decoded (read now if streamed and not yet read)."""
        content = self._content
        return self.read() if content is None else content

    data = content  # urllib3's name

    @property
    def text(self) -> str:
        """The body decoded as a str; only a damaged compressed body makes it raise.

        With an ``encoding`` (set by you, or a charset in Content-Type that Python knows),
        bytes that do not decode become U+FFFD. Without one (no charset, or one Python does not
        know, such as ``x-unknown``): UTF-8 if the whole body is valid UTF-8, else the charset
        charset_normalizer detects if it is installed and the body is long enough to tell
        (256 bytes), else windows-1252, the WHATWG reading of "latin-1", with ISO-8859-1 for
        the five bytes windows-1252 leaves undefined, so every byte becomes a character.
        """
        return decode_text(self.content, self.encoding)

    @property
    def encoding(self) -> str | None:
        """The charset ``text`` decodes with: the one set here, else Content-Type's charset
        if Python knows it; None when neither (``text`` then guesses, see there).

        Setting it (requests' idiom: ``r.encoding = "iso-8859-2"``) refuses a charset Python
        does not know with LookupError; None goes back to the header and the guess.
        """
        if self._encoding is not None:
            return self._encoding
        return charset_of(self.headers.get("content-type", ""))

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        if value is not None and not known_codec(value):
            raise LookupError(f"unknown encoding {value!r}")
        self._encoding = value

    @property
    def apparent_encoding(self) -> str:
        """The charset ``text`` would guess for this body if none were declared."""
        content = self.content
        try:
            content.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            return detect_charset(content) or "windows-1252"

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.content, **kwargs)

    def read(self) -> bytes:
        """The whole body, decoded: a streamed one is read to the end (releasing the
        connection) and stored. DecodingError if it cannot be decoded."""
        if self._content is None:
            if self._raw is not None:
                self._content = self._decode_whole(self._raw)
            elif self._stream_used:
                raise StreamConsumed("the body was already consumed by iteration")
            else:
                self._content = b"".join(self._decoded(self._iter_source()))
        return self._content

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the decoded body in pieces as it arrives (re-chunked to ``chunk_size`` if
        given; ``chunk_size`` must be a positive int: ValueError now, not at the first next)."""
        return _rechunked(self._pieces(), check_chunk_size(chunk_size))

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body as received, Content-Encoding not undone (see ``iter_bytes``)."""
        return _rechunked(self._raw_pieces(), check_chunk_size(chunk_size))

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        """Yield the body as text as it arrives (``chunk_size``: bytes per piece decoded);
        the charset as ``text`` chooses it, from the first piece when none is declared."""
        return _texts(self.iter_bytes(chunk_size), self.encoding)

    @overload
    def iter_lines(
        self,
        chunk_size: int | None = ...,
        decode_unicode: Literal[False] = ...,
        delimiter: bytes | None = ...,
    ) -> Iterator[bytes]: ...

    @overload
    def iter_lines(
        self, chunk_size: int | None, decode_unicode: Literal[True], delimiter: str | None = ...
    ) -> Iterator[str]: ...

    @overload
    def iter_lines(
        self,
        chunk_size: int | None = ...,
        *,
        decode_unicode: Literal[True],
        delimiter: str | None = ...,
    ) -> Iterator[str]: ...

    def iter_lines(
        self,
        chunk_size: int | None = None,
        decode_unicode: bool = False,
        delimiter: str | bytes | None = None,
    ) -> Iterator[bytes] | Iterator[str]:
        """Yield the body line by line, line ends dropped: bytes, or str with
        ``decode_unicode=True`` (requests' API). Lines end at ``delimiter``, or where
        ``splitlines()`` says; a ``\r\n`` split across two reads is one line end. Each line
        is yielded as soon as it has arrived (``chunk_size`` only bounds each read).
        """
        if decode_unicode:
            return _lines(self.iter_text(chunk_size), _as_str(delimiter))
        return _lines(self.iter_bytes(chunk_size), _as_bytes(delimiter))

    @overload
    def iter_content(
        self, chunk_size: int | None = ..., decode_unicode: Literal[False] = ...
    ) -> Iterator[bytes]: ...

    @overload
    def iter_content(
        self, chunk_size: int | None, decode_unicode: Literal[True]
    ) -> Iterator[str]: ...

    @overload
    def iter_content(
        self, chunk_size: int | None = ..., *, decode_unicode: Literal[True]
    ) -> Iterator[str]: ...

    def iter_content(
        self, chunk_size: int | None = 1, decode_unicode: bool = False
    ) -> Iterator[bytes] | Iterator[str]:
        """requests' name: ``iter_bytes(chunk_size)`` (1 byte by default, as in requests;
        None: pieces as they arrive), or ``iter_text`` with ``decode_unicode=True``."""
        if decode_unicode:
            return self.iter_text(chunk_size)
        return self.iter_bytes(chunk_size)

    def __iter__(self) -> Iterator[bytes]:
        """The body in 128-byte chunks, as iterating a requests response gives it."""
        return self.iter_bytes(128)

    @property
    def raw(self) -> RawBody:
        """A binary file object over the body as received (requests' ``r.raw``: for
        ``r.raw.read(n)`` or ``shutil.copyfileobj``), Content-Encoding not undone unless its
        ``decode_content`` is set (see `RawBody`)."""
        if self._rawfile is None:
            self._rawfile = RawBody(self)
        return self._rawfile

    # -- inside -------------------------------------------------------------------------------

    def _codings(self) -> list[str]:
        """The Content-Encoding codings to undo (none for HEAD, 1xx, 204 and 304)."""
        if self.status in (204, 304) or self.status < 200 or self.request.method == "HEAD":
            return []
        if not self._head.has_header(b"content-encoding"):
            return []  # most responses: no header parsing at all
        values = [
            v.decode("latin-1")
            for n, v in self._head.raw_headers
            if len(n) == 16 and n.lower() == b"content-encoding"
        ]
        return codings_of(values) if values else []

    def _decode_whole(self, raw: bytes) -> bytes:
        codings = self._codings()
        if not codings:
            return raw
        try:
            return decode_all(raw, codings, self.decode_limits)
        except DecodingError as exc:
            raise self._decoding_failed(exc) from None

    def _decoding_failed(self, exc: DecodingError) -> DecodingError:
        exc.request = self.request
        exc.may_have_reached_server = True
        return exc

    def _pieces(self) -> Iterator[bytes]:
        if self._content is None and self._raw is not None:
            self.read()
        if self._content is not None:
            yield self._content
            return
        if self._stream_used:
            raise StreamConsumed("the body was already consumed by iteration")
        self._stream_used = True
        yield from self._decoded(self._iter_source())

    def _raw_pieces(self) -> Iterator[bytes]:
        if self._raw is not None:
            yield self._raw
            return
        if self._content is not None and not self._codings():
            yield self._content
            return
        if self._stream_used or self._content is not None:
            raise StreamConsumed("the body was already consumed; iter_raw() needs it unread")
        self._stream_used = True
        yield from self._iter_source()

    def _decoded(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        codings = self._codings()
        if not codings:
            yield from pieces
            return
        try:
            decoder = Decoder(codings, self.decode_limits)
            for piece in pieces:
                yield from decoder.feed(piece)
            decoder.finish()
        except DecodingError as exc:
            self.close()  # the rest is not wanted: the connection is closed (or drained)
            raise self._decoding_failed(exc) from None

    def _iter_source(self) -> Iterator[bytes]:
        source = self._source
        if source is None:
            raise StreamClosed("the response was closed before its body was read")
        while True:
            piece = source.read_chunk()
            if not piece:
                self._source = None
                self._trailers = source.trailers()
                return
            yield piece

    def close(self) -> None:
        """Release the connection: reused if the rest of the body is small, closed otherwise."""
        source = self._source
        if source is not None:
            self._source = None
            source.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.reason}]>"


def _rechunked(pieces: Iterator[bytes], size: int | None) -> Iterator[bytes]:
    chunker = Rechunker(size)
    for piece in pieces:
        yield from chunker.push(piece)
    yield from chunker.flush()


def _texts(pieces: Iterator[bytes], encoding: str | None) -> Iterator[str]:
    decoder = TextDecoder(encoding)
    for piece in pieces:
        if text := decoder.push(piece):
            yield text
    if text := decoder.flush():
        yield text


def _lines(pieces: Iterator[AnyStr], delimiter: AnyStr | None) -> Iterator[AnyStr]:
    splitter = LineSplitter(delimiter)
    for piece in pieces:
        yield from splitter.push(piece)
    yield from splitter.flush()


def _as_str(delimiter: str | bytes | None) -> str | None:
    return delimiter.decode("utf-8") if isinstance(delimiter, bytes) else delimiter


def _as_bytes(delimiter: str | bytes | None) -> bytes | None:
    return delimiter.encode("utf-8") if isinstance(delimiter, str) else delimiter


class RawBody(io.RawIOBase):
    """``Response.raw``: the body as received, as a readable binary file.

    As with urllib3's (requests' ``r.raw``), ``decode_content = True`` or
    ``read(n, decode_content=True)`` before the first read gives the decoded body instead
    (the requests idiom for ``shutil.copyfileobj(r.raw, f)``); once reading has begun it
    cannot change. ``close()`` closes the response (and so releases its connection).
    """

    def __init__(self, response: Response) -> None:
        super().__init__()
        self._response = response
        self._pieces: Iterator[bytes] | None = None
        self._piece = memoryview(b"")
        self.decode_content = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, decode_content: bool | None = None) -> bytes | None:
        """Up to ``size`` bytes (all that is left with -1); b"" at the end."""
        if decode_content is not None and decode_content != self.decode_content:
            if self._pieces is not None:
                raise StreamError("decode_content cannot change once the body is being read")
            self.decode_content = decode_content
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with up to its size of body bytes; 0 at the end."""
        if self._pieces is None:
            r = self._response
            self._pieces = r.iter_bytes() if self.decode_content else r.iter_raw()
        while not self._piece:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._piece = memoryview(piece)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._piece))
        view[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class AsyncBodySource(Protocol):
    """Where an asyncio streamed body comes from (the async pool's hold on a connection)."""

    async def read_chunk(self) -> bytes:
        """The next piece of the body; b"" at the end (the connection is then released)."""

    async def close(self) -> None:
        """Give the connection back: drained and reused if cheap, otherwise closed."""

    def trailers(self) -> list[tuple[bytes, bytes]] | None:
        """The trailer fields that followed the body (HTTP/2), once it was read to the end."""


_ASYNC_UNREAD = "a streamed async response is read with `await aread()` or `aiter_*()`"


class AsyncResponse(Response):
    """A response from the asyncio API: a `Response`, plus ``aread``, ``aiter_bytes``,
    ``aiter_text``, ``aiter_lines``, ``aiter_raw``, ``aclose`` and ``async with`` for
    ``stream=True``.

    A subclass rather than more methods on `Response`, so that the sync type's body source
    stays synchronous and a streamed async body can never be read by blocking calls: until
    it is read (``await r.aread()``), ``content``, ``read()``, the ``iter_*`` methods and
    ``raw`` raise `StreamError`. Once read, or when not streamed, it is used exactly like a
    `Response`.
    """

    __slots__ = ("_asource",)

    def __init__(
        self,
        head: ResponseHead,
        request: Request,
        connection_info: ConnectionInfo,
        elapsed: float,
        source: AsyncBodySource | None = None,
        content: bytes | None = None,
        trailers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(head, request, connection_info, elapsed, None, content, trailers)
        self._asource = source

    def _in_memory(self) -> bool:
        return self._content is not None or self._raw is not None

    def read(self) -> bytes:
        """The body, if it is in memory (a streamed async body needs ``await aread()``)."""
        if not self._in_memory():
            raise StreamError(_ASYNC_UNREAD)
        return super().read()

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if not self._in_memory():
            raise StreamError(_ASYNC_UNREAD)
        return super().iter_bytes(chunk_size)

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if not self._in_memory():
            raise StreamError(_ASYNC_UNREAD)
        return super().iter_raw(chunk_size)

    async def aread(self) -> bytes:
        """Read the rest of a streamed body, decode and store it and release the connection."""
        if self._in_memory():
            return self.read()
        if self._stream_used:
            raise StreamConsumed("the body was already consumed by aiter_bytes()")
        self._content = b"".join([piece async for piece in self._adecoded(self._aiter_source())])
        return self._content

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the decoded body in pieces as it arrives (re-chunked to ``chunk_size``)."""
        chunker = Rechunker(check_chunk_size(chunk_size))
        if self._in_memory():
            for piece in super().iter_bytes(chunk_size):
                yield piece
            return
        if self._stream_used:
            raise StreamConsumed("the body was already consumed by aiter_bytes()")
        self._stream_used = True
        async for piece in self._adecoded(self._aiter_source()):
            for chunk in chunker.push(piece):
                yield chunk
        for chunk in chunker.flush():
            yield chunk

    async def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the body as received, Content-Encoding not undone (see ``aiter_bytes``)."""
        chunker = Rechunker(check_chunk_size(chunk_size))
        if self._in_memory():
            for piece in super().iter_raw(chunk_size):
                yield piece
            return
        if self._stream_used:
            raise StreamConsumed("the body was already consumed; aiter_raw() needs it unread")
        self._stream_used = True
        async for piece in self._aiter_source():
            for chunk in chunker.push(piece):
                yield chunk
        for chunk in chunker.flush():
            yield chunk

    async def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        """Yield the body as text as it arrives (see ``Response.iter_text``)."""
        decoder = TextDecoder(self.encoding)
        async for piece in self.aiter_bytes(chunk_size):
            if text := decoder.push(piece):
                yield text
        if text := decoder.flush():
            yield text

    async def aiter_lines(
        self,
        chunk_size: int | None = None,
        decode_unicode: bool = True,
        delimiter: str | bytes | None = None,
    ) -> AsyncIterator[Any]:
        """Yield the body line by line (see ``Response.iter_lines``): str lines, as httpx's
        ``aiter_lines`` gives them; bytes with ``decode_unicode=False``."""
        if decode_unicode:
            splitter: LineSplitter[Any] = LineSplitter(_as_str(delimiter))
            pieces: AsyncIterator[Any] = self.aiter_text(chunk_size)
        else:
            splitter = LineSplitter(_as_bytes(delimiter))
            pieces = self.aiter_bytes(chunk_size)
        async for piece in pieces:
            for line in splitter.push(piece):
                yield line
        for line in splitter.flush():
            yield line

    async def _adecoded(self, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        codings = self._codings()
        if not codings:
            async for piece in pieces:
                yield piece
            return
        try:
            decoder = Decoder(codings, self.decode_limits)
            async for piece in pieces:
                for out in decoder.feed(piece):
                    yield out
            decoder.finish()
        except DecodingError as exc:
            await self.aclose()  # the rest is not wanted: the connection is closed (or drained)
            raise self._decoding_failed(exc) from None

    async def _aiter_source(self) -> AsyncIterator[bytes]:
        source = self._asource
        if source is None:
            raise StreamClosed("the response was closed before its body was read")
        while True:
            piece = await source.read_chunk()
            if not piece:
                self._asource = None
                self._trailers = source.trailers()
                return
            yield piece

    @property
    def raw(self) -> RawBody:
        """The undecoded body as a file (in memory only: a streamed one uses ``aiter_raw``)."""
        if not self._in_memory():
            raise StreamError(_ASYNC_UNREAD)
        return super().raw

    async def aclose(self) -> None:
        """Release the connection: reused if the rest of the body is small, closed otherwise."""
        source = self._asource
        if source is not None:
            self._asource = None
            await source.close()

    def close(self) -> None:
        if self._asource is not None:
            raise StreamError("a streamed async response is closed with `await response.aclose()`")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
