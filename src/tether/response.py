"""The response a user gets: status, headers, body (whole or streamed) and connection facts."""

from __future__ import annotations

import codecs
import json as jsonlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol, Self

from .closing import Closing
from .exceptions import HTTPStatusError, StreamClosed, StreamConsumed, StreamError
from .models import URL, Headers, Request

__all__ = [
    "AsyncBodySource",
    "AsyncResponse",
    "BodySource",
    "ConnectionFacts",
    "ConnectionInfo",
    "Response",
    "ResponseHead",
]


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
        "coalesced",
        "http_version",
        "idle_time",
        "proxy",
        "request_number",
        "retries",
        "stream_id",
        "streams_in_flight",
        "ttfb",
        "tunneled",
    )

    def __init__(self, exchange: Any, retries: int, http_version: str) -> None:
        self._conn: ConnectionFacts = exchange.conn
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
    def dns_time(self) -> float:
        return self._conn.timings.dns if self.request_number == 1 else 0.0

    @property
    def connect_time(self) -> float:
        return self._conn.timings.connect if self.request_number == 1 else 0.0

    @property
    def tls_time(self) -> float:
        return self._conn.timings.tls if self.request_number == 1 else 0.0

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
    """

    __slots__ = (
        "_content",
        "_encoding",
        "_head",
        "_headers",
        "_source",
        "_stream_used",
        "_trailers",
        "connection_info",
        "elapsed",
        "http_version",
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
        self.elapsed = elapsed
        self._head = head
        self._headers: Headers | None = None
        self._source = source
        self._content = content
        self._encoding: str | None = None
        self._stream_used = False
        self._trailers = trailers

    # -- metadata -----------------------------------------------------------------------------

    @property
    def status_code(self) -> int:
        """The status, under requests' name."""
        return self.status

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
        return self.request.url

    @property
    def ok(self) -> bool:
        return self.status < 400

    def raise_for_status(self) -> Response:
        """Raise HTTPStatusError for a 4xx or 5xx status; return the response otherwise."""
        if self.status >= 400:
            kind = "client error" if self.status < 500 else "server error"
            raise HTTPStatusError(
                f"{self.status} {self.reason} ({kind}) for {self.request.method} {self.url}",
                response=self,
            )
        return self

    # -- body ---------------------------------------------------------------------------------

    @property
    def content(self) -> bytes:
        """The whole body (read now if streamed and not yet read)."""
        if self._content is None:
            self.read()
        assert self._content is not None
        return self._content

    data = content  # urllib3's name

    @property
    def text(self) -> str:
        """The body decoded as a str; never raises.

        With an ``encoding`` (set by you, or a charset in Content-Type that Python knows),
        bytes that do not decode become U+FFFD. Without one (no charset, or one Python does not
        know, such as ``x-unknown``): UTF-8 if the whole body is valid UTF-8, otherwise
        windows-1252, the WHATWG reading of "latin-1", and ISO-8859-1 for the five bytes
        windows-1252 leaves undefined, so every byte becomes a character.
        """
        content = self.content
        encoding = self.encoding
        if encoding is not None:
            return content.decode(encoding, errors="replace")
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            return content.decode("cp1252", errors=_LATIN1_FALLBACK)

    @property
    def encoding(self) -> str | None:
        """The charset ``text`` decodes with: the one set here, else Content-Type's charset
        if Python knows it; None when neither (``text`` then guesses, see there).

        Setting it (requests' idiom: ``r.encoding = "iso-8859-2"``) refuses a charset Python
        does not know with LookupError; None goes back to the header and the guess.
        """
        if self._encoding is not None:
            return self._encoding
        ctype = self.headers.get("content-type", "")
        for param in ctype.split(";")[1:]:
            key, _, value = param.partition("=")
            charset = value.strip().strip('"').strip()
            if key.strip().lower() == "charset" and charset:
                return charset if _known_codec(charset) else None
        return None

    @encoding.setter
    def encoding(self, value: str | None) -> None:
        if value is not None and not _known_codec(value):
            raise LookupError(f"unknown encoding {value!r}")
        self._encoding = value

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.content, **kwargs)

    def read(self) -> bytes:
        """Read the rest of a streamed body, store it and release the connection."""
        if self._content is None:
            if self._stream_used:
                raise StreamConsumed("the body was already consumed by iter_bytes()")
            self._content = b"".join(self._iter_source())
        return self._content

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the body in pieces as it arrives (re-chunked to ``chunk_size`` if given).

        ``chunk_size`` must be a positive int (ValueError now, not at the first ``next``).
        """
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive int or None, not {chunk_size!r}")
        return self._iter_bytes(chunk_size)

    def _iter_bytes(self, chunk_size: int | None) -> Iterator[bytes]:
        if self._content is not None:
            content = self._content
            step = chunk_size or max(len(content), 1)
            for i in range(0, len(content), step):
                yield content[i : i + step]
            return
        if self._stream_used:
            raise StreamConsumed("the body was already consumed by iter_bytes()")
        self._stream_used = True
        if chunk_size is None:
            yield from self._iter_source()
            return
        buffer = b""
        for piece in self._iter_source():
            buffer += piece
            while len(buffer) >= chunk_size:
                yield buffer[:chunk_size]
                buffer = buffer[chunk_size:]
        if buffer:
            yield buffer

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


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    # windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; WHATWG maps them to the
    # C1 controls of the same number, as ISO-8859-1 does.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


_LATIN1_FALLBACK = "tether.latin1-fallback"
codecs.register_error(_LATIN1_FALLBACK, _latin1_fallback)


def _known_codec(name: str) -> bool:
    """Is ``name`` a text encoding Python can decode with?"""
    try:
        return codecs.lookup(name)._is_text_encoding
    except (LookupError, TypeError, ValueError):
        return False


class AsyncBodySource(Protocol):
    """Where an asyncio streamed body comes from (the async pool's hold on a connection)."""

    async def read_chunk(self) -> bytes:
        """The next piece of the body; b"" at the end (the connection is then released)."""

    async def close(self) -> None:
        """Give the connection back: drained and reused if cheap, otherwise closed."""

    def trailers(self) -> list[tuple[bytes, bytes]] | None:
        """The trailer fields that followed the body (HTTP/2), once it was read to the end."""


class AsyncResponse(Response):
    """A response from the asyncio API: a `Response`, plus ``aread``, ``aiter_bytes``,
    ``aclose`` and ``async with`` for ``stream=True``.

    A subclass rather than more methods on `Response`, so that the sync type's body source
    stays synchronous and a streamed async body can never be read by blocking calls: until
    it is read (``await r.aread()``), ``content`` and ``read()`` raise `StreamError`. Once
    read, or when not streamed, it is used exactly like a `Response`.
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

    def read(self) -> bytes:
        """The body, if it was read already (a streamed async body needs ``await aread()``)."""
        if self._content is None:
            raise StreamError("a streamed async response is read with `await response.aread()`")
        return self._content

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if self._content is None:
            raise StreamError("a streamed async response is iterated with `aiter_bytes()`")
        return super().iter_bytes(chunk_size)

    async def aread(self) -> bytes:
        """Read the rest of a streamed body, store it and release the connection."""
        if self._content is None:
            if self._stream_used:
                raise StreamConsumed("the body was already consumed by aiter_bytes()")
            self._content = b"".join([piece async for piece in self._aiter_source()])
        return self._content

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the body in pieces as it arrives (re-chunked to ``chunk_size`` if given)."""
        if self._content is not None:
            for piece in super().iter_bytes(chunk_size):
                yield piece
            return
        if self._stream_used:
            raise StreamConsumed("the body was already consumed by aiter_bytes()")
        self._stream_used = True
        buffer = b""
        async for piece in self._aiter_source():
            if chunk_size is None:
                yield piece
                continue
            buffer += piece
            while len(buffer) >= chunk_size:
                yield buffer[:chunk_size]
                buffer = buffer[chunk_size:]
        if buffer:
            yield buffer

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
