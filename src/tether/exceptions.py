"""Every error tether raises, in one hierarchy.

::

    TetherError
    ├── InvalidRequest            refused before any byte was written
    │   ├── InvalidURL
    │   └── InvalidHeader          CR, LF or NUL in a name or value, a bad method or target
    ├── RequestError              something went wrong while a request was in flight
    │   ├── TransportError
    │   │   ├── TimeoutException
    │   │   │   ├── ConnectTimeout
    │   │   │   ├── ReadTimeout
    │   │   │   ├── WriteTimeout
    │   │   │   ├── PoolTimeout    no connection became free in time (nothing was sent)
    │   │   │   └── TotalTimeout   the whole request outlived Timeout.total
    │   │   ├── NetworkError
    │   │   │   ├── ConnectError
    │   │   │   │   └── TLSError   handshake or certificate verification failed
    │   │   │   ├── ReadError
    │   │   │   └── WriteError
    │   │   ├── RemoteProtocolError  the server sent something that is not valid HTTP
    │   │   │   └── H2ProtocolError  an HTTP/2 connection error; carries the wire .error_code
    │   │   └── StreamReset    HTTP/2: the server reset the stream (.error_code); the
    │   │                      connection carries on for the other requests
    │   └── (every RequestError carries .request, .origin and .may_have_reached_server)
    ├── StreamError               a response body was used in a way it cannot be
    │   ├── StreamConsumed
    │   └── StreamClosed
    ├── HTTPStatusError           raised by Response.raise_for_status() for 4xx and 5xx
    ├── PoolClosed                the pool or session was closed before the request
    └── LocalProtocolError        tether misused its HTTP/2 layer (a bug in tether, not the peer)

``may_have_reached_server`` is the fact that decides whether a request can be sent again: it is
False only when tether knows that no byte of the request left this process, or that the server
cannot have acted on it. tether retries on its own only when the rules in docs/lifecycle.md say
it is safe; an error that escapes with ``may_have_reached_server=True`` on a non-idempotent
request means the server may have processed it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Origin, Request
    from .response import Response

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "H2ProtocolError",
    "HTTPStatusError",
    "InvalidHeader",
    "InvalidRequest",
    "InvalidURL",
    "LocalProtocolError",
    "NetworkError",
    "PoolClosed",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "RequestError",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "StreamReset",
    "TLSError",
    "TetherError",
    "TimeoutException",
    "TotalTimeout",
    "TransportError",
    "WriteError",
    "WriteTimeout",
]


class TetherError(Exception):
    """Base class of every error raised by tether."""


class InvalidRequest(TetherError, ValueError):
    """The request was refused before anything was sent: nothing reached any server."""

    may_have_reached_server = False


class InvalidURL(InvalidRequest):
    """The URL cannot be used: bad scheme, host, port or characters."""


class InvalidHeader(InvalidRequest):
    """A method, target, header name or value would corrupt the request (CR, LF, NUL, ...)."""


class RequestError(TetherError):
    """A request failed in flight.

    Attributes:
        request: the request that failed (None only when failing before one existed).
        origin: the origin (scheme, host, port) it was going to.
        may_have_reached_server: False only if no byte of it was written.
    """

    def __init__(
        self,
        message: str,
        *,
        request: Request | None = None,
        may_have_reached_server: bool = False,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.may_have_reached_server = may_have_reached_server

    @property
    def origin(self) -> Origin | None:
        return self.request.url.origin if self.request is not None else None

    def __str__(self) -> str:
        text = super().__str__()
        if self.request is not None:
            text = f"{text} ({self.request.method} {self.request.url})"
        if self.may_have_reached_server:
            text += " [the request may have reached the server]"
        return text


class TransportError(RequestError):
    """Failure below HTTP semantics: network, timeout, TLS or a malformed response."""


class TimeoutException(TransportError):
    """A timeout expired."""


class ConnectTimeout(TimeoutException):
    """Opening the TCP connection (or its TLS handshake) took longer than the connect timeout."""


class ReadTimeout(TimeoutException):
    """The server did not send response bytes within the read timeout."""


class WriteTimeout(TimeoutException):
    """The request could not be written within the write timeout."""


class PoolTimeout(TimeoutException):
    """No connection became available within the pool timeout (``block=True``)."""


class TotalTimeout(TimeoutException):
    """The whole request (pool wait, connect, write, head and body) outlived ``Timeout.total``."""


class NetworkError(TransportError):
    """The network failed: refused, reset, closed."""


class ConnectError(NetworkError):
    """The connection could not be opened (DNS, refused, unreachable)."""


class TLSError(ConnectError):
    """The TLS handshake failed, for instance because the certificate could not be verified."""


class ReadError(NetworkError):
    """Reading the response failed: the connection was reset or closed by the server."""


class WriteError(NetworkError):
    """Writing the request failed."""


class RemoteProtocolError(TransportError):
    """The server violated HTTP: bad status line, bad framing, truncated body, garbage."""


class H2ProtocolError(RemoteProtocolError):
    """The HTTP/2 peer broke the protocol badly enough that the whole connection is lost.

    Attributes:
        error_code: the HTTP/2 error code (RFC 9113 section 7) sent in our GOAWAY.
        events: the events parsed from the same input before the error, still to be dispatched.
    """

    def __init__(
        self,
        message: str,
        *,
        error_code: int,
        events: list[Any] | None = None,
        request: Request | None = None,
        may_have_reached_server: bool = True,
    ) -> None:
        super().__init__(message, request=request, may_have_reached_server=may_have_reached_server)
        self.error_code = error_code
        self.events: list[Any] = events if events is not None else []


class StreamReset(TransportError):
    """HTTP/2: the server reset this request's stream (RST_STREAM) with ``error_code``.

    ``may_have_reached_server`` is False for REFUSED_STREAM (the server promises it did not
    process the request; tether retries those itself), True otherwise.
    """

    def __init__(
        self,
        message: str,
        *,
        error_code: int,
        request: Request | None = None,
        may_have_reached_server: bool = True,
    ) -> None:
        super().__init__(message, request=request, may_have_reached_server=may_have_reached_server)
        self.error_code = error_code


class StreamError(TetherError):
    """A streamed response body was misused."""


class StreamConsumed(StreamError):
    """The body was already read by iteration and is not stored."""


class StreamClosed(StreamError):
    """The response was closed before its body was read."""


class HTTPStatusError(TetherError):
    """The response had a 4xx or 5xx status (raised only by ``raise_for_status()``)."""

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message)
        self.response = response
        self.request = response.request


class PoolClosed(TetherError):
    """The pool, manager or session was closed; it cannot send requests any more."""


class LocalProtocolError(TetherError):
    """tether asked its HTTP/2 layer for something the protocol forbids.

    A new stream after GOAWAY or close, stream ids exhausted, data beyond the send window, data
    on a stream that has ended or does not exist. Nothing was written for the refused call.
    """
