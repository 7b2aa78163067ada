"""Every error tether raises, in one hierarchy.

Every `RequestError` (timeouts, network, protocol and stream errors) is also an `OSError`, as
every requests exception is an ``IOError``: code written ``except OSError:`` around a request
keeps working. The right-hand column names what requests (and httpx) raise for the same case.

::

    tether                          requests                     httpx
    ------                          --------                     -----
    TetherError                     RequestException             HTTPError
    ├── InvalidRequest  (ValueError)  refused before any byte was written
    │   ├── InvalidURL              InvalidURL, MissingSchema    InvalidURL, UnsupportedProtocol
    │   ├── InvalidHeader           InvalidHeader                LocalProtocolError
    │   └── InvalidProxyURL         InvalidProxyURL              ProxyError
    ├── RequestError    (OSError)   RequestException             RequestError
    │   ├── TransportError                                       TransportError
    │   │   ├── TimeoutException    Timeout                      TimeoutException
    │   │   │   ├── ConnectTimeout  ConnectTimeout               ConnectTimeout
    │   │   │   │   └── ResolveTimeout  ConnectTimeout           ConnectTimeout
    │   │   │   ├── ReadTimeout     ReadTimeout                  ReadTimeout
    │   │   │   ├── WriteTimeout    Timeout                      WriteTimeout
    │   │   │   ├── PoolTimeout     Timeout (urllib3 EmptyPoolError)  PoolTimeout
    │   │   │   └── TotalTimeout    Timeout                      TimeoutException
    │   │   ├── NetworkError        ConnectionError              NetworkError
    │   │   │   ├── ConnectError    ConnectionError              ConnectError
    │   │   │   │   ├── ResolveError  ConnectionError            ConnectError
    │   │   │   │   ├── TLSError    SSLError                     ConnectError
    │   │   │   │   └── ProxyError  ProxyError                   ProxyError
    │   │   │   ├── ReadError       ConnectionError, ChunkedEncodingError  ReadError
    │   │   │   └── WriteError      ConnectionError              WriteError
    │   │   ├── RemoteProtocolError ConnectionError, ChunkedEncodingError  RemoteProtocolError
    │   │   │   └── H2ProtocolError   an HTTP/2 connection error; carries the wire .error_code
    │   │   └── StreamReset         ConnectionError              RemoteProtocolError
    │   ├── RedirectError           TooManyRedirects, InvalidURL  TooManyRedirects
    │   │   ├── TooManyRedirects    TooManyRedirects             TooManyRedirects
    │   │   ├── InvalidRedirect     InvalidSchema                UnsupportedProtocol
    │   │   └── BodyNotReplayable   UnrewindableBodyError        StreamConsumed
    │   ├── DecodingError           ContentDecodingError         DecodingError
    │   │   └── DecompressionLimitError  ContentDecodingError    DecodingError
    │   └── (every RequestError carries .request, .origin and .may_have_reached_server)
    ├── StreamError                 StreamConsumedError          StreamError
    │   ├── StreamConsumed          StreamConsumedError          StreamConsumed
    │   └── StreamClosed            (none)                       StreamClosed
    ├── HTTPStatusError             HTTPError                    HTTPStatusError
    ├── PoolClosed                  (none: a closed Session reopens)  RuntimeError
    └── LocalProtocolError          (none)   tether misused its HTTP/2 layer (a bug in tether)

What each means: InvalidHeader: CR, LF or NUL in a name or value, a bad method or target;
PoolTimeout: no connection became free in time (nothing was sent); TLSError: handshake or
certificate verification failed; ResolveError: the name does not resolve (or to no usable
address); ResolveTimeout: it did not resolve within the connect timeout;
RemoteProtocolError: the server sent something that is not valid HTTP; StreamReset: HTTP/2,
the server reset the stream (.error_code), the connection carries on for the other requests;
RedirectError: a redirect that cannot be followed (.response, .history): too many, a Location
that is not http(s) (file://...) or not a URL, a 307/308 or a 401 retry of a one-shot body;
HTTPStatusError: raised by ``Response.raise_for_status()`` for 4xx and 5xx;
PoolClosed: the pool or session was closed before the request.

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
    "BodyNotReplayable",
    "ConnectError",
    "ConnectTimeout",
    "DecodingError",
    "DecompressionLimitError",
    "H2ProtocolError",
    "HTTPStatusError",
    "InvalidHeader",
    "InvalidProxyURL",
    "InvalidRedirect",
    "InvalidRequest",
    "InvalidURL",
    "LocalProtocolError",
    "NetworkError",
    "PoolClosed",
    "PoolTimeout",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "RedirectError",
    "RemoteProtocolError",
    "RequestError",
    "ResolveError",
    "ResolveTimeout",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "StreamReset",
    "TLSError",
    "TetherError",
    "TimeoutException",
    "TooManyRedirects",
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


class InvalidProxyURL(InvalidRequest):
    """A proxy URL tether cannot use: unsupported scheme, no host, bad port (never echoes
    its credentials)."""


class RequestError(TetherError, OSError):
    """A request failed in flight (an `OSError` too, like every requests exception).

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


class ResolveTimeout(ConnectTimeout):
    """Resolving the host name took longer than the connect timeout (nothing was sent)."""


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


class ResolveError(ConnectError):
    """The host name does not resolve, or the resolver gave no usable address."""


class TLSError(ConnectError):
    """The TLS handshake failed, for instance because the certificate could not be verified."""


class ProxyError(ConnectError):
    """The proxy would not (or could not) open the route to the origin.

    Attributes:
        proxy: the proxy's URL without credentials.
        status: the proxy's HTTP status for a refused CONNECT (407, 403, 502, ...), or the
            SOCKS reply code; None when the proxy broke the protocol or closed the connection.
        reason: the proxy's reason phrase or a description of the refusal.

    Nothing of the request was sent to the origin (``may_have_reached_server`` is False).
    """

    def __init__(
        self,
        message: str,
        *,
        proxy: str,
        status: int | None = None,
        reason: str = "",
        request: Request | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.proxy = proxy
        self.status = status
        self.reason = reason


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


class DecodingError(RequestError):
    """The response body could not be decoded (damaged or truncated gzip, deflate, br or
    zstd data, or a coding this installation lacks); requests' ``ContentDecodingError``."""


class DecompressionLimitError(DecodingError):
    """The body decodes to more, or expands more, than ``DecodeLimits`` allow: refused at the
    limit, never held in memory whole (a decompression bomb)."""


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


class RedirectError(RequestError):
    """A redirect could not be followed; ``response`` is the redirect that was refused.

    ``history`` holds the responses of the hops already followed, oldest first.
    """

    def __init__(
        self,
        message: str,
        *,
        request: Request | None = None,
        response: Response | None = None,
        history: list[Response] | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.response = response
        self.history = history or []


class TooManyRedirects(RedirectError):
    """More redirects than ``max_redirects`` (a loop, usually); requests' TooManyRedirects."""


class InvalidRedirect(RedirectError):
    """A Location that cannot be followed: not http(s) (``file://``), or not a URL at all."""


class BodyNotReplayable(RedirectError):
    """A 307/308 redirect, or an auth retry after 401, needs the body again, but it was a
    one-shot iterator or file (already sent). ``response`` is the answer that asked for it.

    Pass bytes to let tether send it again (or ``allow_redirects=False`` and ``response.next``).
    """
