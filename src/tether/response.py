"""The response a user gets: status, headers, body (whole or streamed) and connection facts."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterator
from typing import Any, Protocol

from .closing import Closing
from .connection import ConnectionInfo
from .exceptions import HTTPStatusError, StreamClosed, StreamConsumed
from .http11 import ResponseHead
from .models import URL, Headers, Request

__all__ = ["ConnectionInfo", "Response"]


class BodySource(Protocol):
    """Where a streamed body comes from (the pool's hold on a connection)."""

    def read_chunk(self) -> bytes:
        """The next piece of the body; b"" at the end (the connection is then released)."""

    def close(self) -> None:
        """Give the connection back: drained and reused if cheap, otherwise closed."""


class Response(Closing):
    """An HTTP response.

    Unless it was requested with ``stream=True``, the body is already read and the connection
    is back in the pool. A streamed response holds its connection until the body is read to the
    end or the response is closed (``with`` closes it).
    """

    __slots__ = (
        "_content",
        "_head",
        "_headers",
        "_source",
        "_stream_used",
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
        self._stream_used = False

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
        """The body decoded with the charset in Content-Type (UTF-8 when none is given)."""
        return self.content.decode(self.encoding, errors="replace")

    @property
    def encoding(self) -> str:
        ctype = self.headers.get("content-type", "")
        for param in ctype.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip('"')
        return "utf-8"

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
        """Yield the body in pieces as it arrives (re-chunked to ``chunk_size`` if given)."""
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
