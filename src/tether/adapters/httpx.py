"""An httpx transport: httpx's Client on top, tether's connections underneath.

::

    import httpx
    from tether.adapters.httpx import TetherTransport

    client = httpx.Client(transport=TetherTransport(http2=True))

httpx keeps doing the user's side (base URL, params, cookies, redirects, auth, hooks, decoding);
tether carries the bytes: Keep-Alive honoured, the idle timeout learned, no CLOSE_WAIT, a
request on a stale connection sent again only when that is safe, and one HTTP/2 connection
shared by every thread using the Client. ``response.extensions["http_version"]`` is
``b"HTTP/2"`` or ``b"HTTP/1.1"``; ``response.extensions["connection_info"]`` is tether's
``ConnectionInfo`` (which connection, reused or not).

Differences from ``httpx.HTTPTransport`` (deliberate): the environment's ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` are never read (``verify=True`` is certifi); ``retries`` counts only requests
that reached no server (connect errors and timeouts), while tether itself resends a request on
a dead reused connection when that is safe. Proxies: ``TetherTransport(proxy=...)`` (a URL or
an ``httpx.Proxy``; http, https, socks5, socks5h) sends every request through it, tunnels
pooled and reused (``httpx.Client(proxy=...)`` would route around this transport, through
httpx's own); an https proxy is checked with the transport's ``verify`` (an
``httpx.Proxy(ssl_context=...)`` is refused rather than ignored);
``uds`` is not supported.

``AsyncTetherTransport`` is the same for ``httpx.AsyncClient``, over tether's asyncio pools
(``tether.aio``); one difference of its own: an async request body (an async iterator) is read
whole before it is sent, still chunked, because tether's asyncio connections send sync
iterables only. A sync-only body (``content=iter(...)``) is refused with ``TypeError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator
from typing import Any

import httpx

from .. import exceptions as tx
from ..aio.poolmanager import AsyncPoolManager
from ..io.tls import CertTypes, VerifyTypes
from ..lifecycle.rules import Limits
from ..models import Request, Timeout
from ..protocol.proxy import Proxy
from ..response import AsyncResponse, Response
from ..sync.http2 import HTTP2Mode
from ..sync.poolmanager import PoolManager

__all__ = ["AsyncTetherTransport", "TetherTransport"]

# httpx's keep-alive figures, without its global cap (tether's pools are per origin).
_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=20, keepalive_expiry=5.0)
_DEFAULT_TIMEOUT = Timeout(5.0, 5.0, 5.0, 5.0)
_BACKOFF = 0.5  # httpcore's connect-retry backoff factor: 0, 0.5, 1, 2, ... seconds


class TetherTransport(httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that sends over tether's connection pools.

    Args:
        verify: True (certifi), False, a CA bundle path, or an ``ssl.SSLContext``, used
            unchanged (httpx would set its ALPN list: for HTTP/2 give it ``["h2", "http/1.1"]``).
        cert: client certificate path, or (cert path, key path).
        http2: ``True`` offers HTTP/2 by ALPN on https; ``"prior-knowledge"`` also speaks
            HTTP/2 (h2c) to plain-http servers.
        limits: httpx's ``Limits`` (default: 20 kept, no cap, 5 s idle):
            ``max_keepalive_connections`` idle connections kept per origin;
            ``max_connections`` (when set) caps connections per origin, others wait up to
            the pool timeout; ``keepalive_expiry`` the idle timeout.
        retries: how many times a request that reached no server is tried again.
        num_pools: origins whose pools are kept (least recently used closed first).
        pool_limits: tether's ``Limits`` (max lifetime, max requests), overriding
            ``keepalive_expiry``.
        proxy: send every request through this proxy (see the module docstring).
        **pool_kwargs: passed to tether's ``PoolManager`` (``watch_idle=``).
    """

    def __init__(
        self,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        http2: HTTP2Mode = False,
        limits: httpx.Limits | None = None,
        retries: int = 0,
        *,
        num_pools: int = 10,
        pool_limits: Limits | None = None,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        **pool_kwargs: Any,
    ) -> None:
        self.retries = retries
        self.proxy = _proxy(proxy)
        self._manager = PoolManager(
            num_pools, **_pool_args(verify, cert, http2, limits, pool_limits), **pool_kwargs
        )

    @property
    def pool_manager(self) -> PoolManager:
        """tether's pools behind this transport."""
        return self._manager

    def stats(self) -> Any:
        """tether's connection counters (``PoolStats``) for this transport's pools."""
        return self._manager.stats()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over tether; the body streams as the client reads it."""
        t = _timeout(request.extensions.get("timeout"))
        try:
            tresp = self._send(_request(request, _body(request)), t)
        except tx.TetherError as exc:
            raise _mapped(exc, request) from exc
        return _response(tresp, _ResponseStream(tresp, request))

    def _send(self, treq: Request, t: Timeout) -> Response:
        attempt = 0
        while True:
            try:
                response: Response = self._manager.send(treq, t, True, proxy=self.proxy)
                return response
            except (tx.ConnectError, tx.ConnectTimeout) as exc:
                if not _may_retry(exc, attempt, self.retries):
                    raise
                if attempt:
                    time.sleep(_BACKOFF * 2 ** (attempt - 1))
                attempt += 1

    def close(self) -> None:
        """Close every pooled connection; the transport cannot be used afterwards."""
        self._manager.close()


class _ResponseStream(httpx.SyncByteStream):
    """A streamed tether body as httpx reads it; tether's errors become httpx's."""

    def __init__(self, response: Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        pieces = self._response.iter_raw()  # httpx undoes Content-Encoding itself
        while True:
            try:
                piece = next(pieces)
            except StopIteration:
                return
            except tx.TetherError as exc:
                self._response.close()
                raise _mapped(exc, self._request) from exc
            yield piece

    def close(self) -> None:
        self._response.close()


class AsyncTetherTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over tether's asyncio pools: `TetherTransport`'s
    arguments with the same meaning (``**pool_kwargs`` go to ``AsyncPoolManager``).

    All of it must be used from one event loop; close it with ``await aclose()`` (or by
    closing the ``httpx.AsyncClient``).
    """

    def __init__(
        self,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        http2: HTTP2Mode = False,
        limits: httpx.Limits | None = None,
        retries: int = 0,
        *,
        num_pools: int = 10,
        pool_limits: Limits | None = None,
        proxy: str | httpx.URL | httpx.Proxy | None = None,
        **pool_kwargs: Any,
    ) -> None:
        self.retries = retries
        self.proxy = _proxy(proxy)
        self._manager = AsyncPoolManager(
            num_pools, **_pool_args(verify, cert, http2, limits, pool_limits), **pool_kwargs
        )

    @property
    def pool_manager(self) -> AsyncPoolManager:
        """tether's asyncio pools behind this transport."""
        return self._manager

    def stats(self) -> Any:
        """tether's connection counters (``PoolStats``) for this transport's pools."""
        return self._manager.stats()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over tether; the body streams as the client reads it."""
        t = _timeout(request.extensions.get("timeout"))
        try:
            tresp = await self._send(_request(request, _abody(request)), t)
        except tx.TetherError as exc:
            raise _mapped(exc, request) from exc
        return _response(tresp, _AsyncResponseStream(tresp, request))

    async def _send(self, treq: Request, t: Timeout) -> AsyncResponse:
        attempt = 0
        while True:
            try:
                return await self._manager.send(treq, t, True, proxy=self.proxy)
            except (tx.ConnectError, tx.ConnectTimeout) as exc:
                if not _may_retry(exc, attempt, self.retries):
                    raise
                if attempt:
                    await asyncio.sleep(_BACKOFF * 2 ** (attempt - 1))
                attempt += 1

    async def aclose(self) -> None:
        """Close every pooled connection; the transport cannot be used afterwards."""
        await self._manager.aclose()


class _AsyncResponseStream(httpx.AsyncByteStream):
    """A streamed tether body as httpx's async client reads it; tether's errors become httpx's."""

    def __init__(self, response: AsyncResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request
        self._pieces: AsyncIterator[bytes] | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._pieces = pieces = self._response.aiter_raw()  # httpx decodes
        while True:
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except tx.TetherError as exc:
                await self._response.aclose()
                raise _mapped(exc, self._request) from exc
            yield piece

    async def aclose(self) -> None:
        if isinstance(self._pieces, AsyncGenerator):  # closed now, not by a finalizer task later
            await self._pieces.aclose()
        await self._response.aclose()


def _pool_args(
    verify: VerifyTypes,
    cert: CertTypes,
    http2: HTTP2Mode,
    limits: httpx.Limits | None,
    pool_limits: Limits | None,
) -> dict[str, Any]:
    """The pool manager's arguments for httpx's ones (both transports)."""
    limits = limits or _LIMITS
    keep = limits.max_keepalive_connections
    cap = limits.max_connections
    maxsize = cap if cap is not None else (keep if keep is not None else 10)
    if pool_limits is None:
        expiry = limits.keepalive_expiry
        pool_limits = Limits(idle_timeout=expiry) if expiry is not None else Limits()
    return dict(
        maxsize=max(1, maxsize),
        block=cap is not None,
        verify=verify,
        cert=cert,
        http2=http2,
        limits=pool_limits,
    )


def _may_retry(exc: tx.ConnectError | tx.ConnectTimeout, attempt: int, retries: int) -> bool:
    """httpcore's connect retries: only a request that cannot have reached a server."""
    return not (
        attempt >= retries
        or exc.may_have_reached_server
        or isinstance(exc, (tx.TLSError, tx.ProxyError))
    )


def _proxy(value: str | httpx.URL | httpx.Proxy | None) -> Proxy | None:
    """tether's Proxy for what httpx's transports take as ``proxy=``."""
    if value is None:
        return None
    if isinstance(value, httpx.Proxy):
        if value.ssl_context is not None:
            raise tx.InvalidProxyURL(
                f"httpx.Proxy(ssl_context=...) for {value.url.scheme}://{value.url.host} is not "
                "supported: the transport's verify= checks an https proxy"
            )
        url = value.url
        if value.auth:
            url = url.copy_with(username=value.auth[0], password=value.auth[1])
        value = url
    return Proxy.parse(str(value))


def _request(
    request: httpx.Request, body: bytes | Iterator[bytes] | AsyncIterable[bytes] | None
) -> Request:
    """tether's Request for httpx's, with the body already chosen."""
    raw = request.headers.raw
    return Request(
        request.method,
        str(request.url),
        headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw],
        body=body,
    )


def _response(
    tresp: Response, stream: httpx.SyncByteStream | httpx.AsyncByteStream
) -> httpx.Response:
    """httpx's Response for tether's streamed one, with the extensions httpx's carry."""
    extensions: dict[str, Any] = {
        "http_version": tresp.http_version.encode("ascii"),
        "reason_phrase": tresp.reason.encode("ascii", "replace"),
        "connection_info": tresp.connection_info,
    }
    return httpx.Response(
        tresp.status,
        headers=[
            (n.encode("latin-1"), v.encode("latin-1")) for n, v in tresp.headers.multi_items()
        ],
        stream=stream,
        extensions=extensions,
    )


def _timeout(value: Any) -> Timeout:
    """httpx's timeout extension (a dict of connect/read/write/pool) as tether's Timeout."""
    if not isinstance(value, dict):
        return _DEFAULT_TIMEOUT  # no Client set one: httpx's own default
    return Timeout(
        connect=value.get("connect"),
        read=value.get("read"),
        write=value.get("write"),
        pool=value.get("pool"),
    )


def _body(request: httpx.Request) -> bytes | Iterator[bytes] | None:
    """The body as bytes when httpx has it whole, otherwise its stream, sent as it comes."""
    try:
        return request.content or None  # no body: Content-Length only where httpx put one
    except httpx.RequestNotRead:
        stream = request.stream
    if not isinstance(stream, httpx.SyncByteStream):
        raise TypeError("TetherTransport is synchronous: it cannot send an async request body")
    return iter(stream)


def _abody(request: httpx.Request) -> bytes | AsyncIterable[bytes] | None:
    """`_body` for the async transport: an async stream is sent as it comes."""
    try:
        return request.content or None
    except httpx.RequestNotRead:
        stream = request.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError(
            "AsyncTetherTransport is asynchronous: it cannot send a sync-only request body "
            "(give httpx.AsyncClient bytes or an async iterator)"
        )
    return stream


def _mapped(exc: tx.TetherError, request: httpx.Request) -> Exception:
    """httpx's exception for tether's (the caller chains it: ``raise ... from exc``)."""
    message = str(exc)
    if isinstance(exc, tx.InvalidURL):
        if "scheme" in message:
            return httpx.UnsupportedProtocol(message, request=request)
        return httpx.LocalProtocolError(message, request=request)
    if isinstance(exc, (tx.InvalidHeader, tx.LocalProtocolError, tx.InvalidRequest)):
        return httpx.LocalProtocolError(message, request=request)
    kind: type[httpx.TransportError]
    for theirs, ours in _KINDS:
        if isinstance(exc, theirs):
            kind = ours
            break
    else:
        kind = httpx.TransportError
    return kind(message, request=request)


# First match wins: subclasses before their bases.
_KINDS: list[tuple[type[tx.TetherError], type[httpx.TransportError]]] = [
    (tx.ConnectTimeout, httpx.ConnectTimeout),
    (tx.ReadTimeout, httpx.ReadTimeout),
    (tx.WriteTimeout, httpx.WriteTimeout),
    (tx.PoolTimeout, httpx.PoolTimeout),
    (tx.ProxyError, httpx.ProxyError),
    (tx.ConnectError, httpx.ConnectError),  # TLSError included, as httpcore does
    (tx.ReadError, httpx.ReadError),
    (tx.WriteError, httpx.WriteError),
    (tx.RemoteProtocolError, httpx.RemoteProtocolError),
    (tx.StreamReset, httpx.RemoteProtocolError),
    (tx.NetworkError, httpx.NetworkError),
    (tx.PoolClosed, httpx.ConnectError),
    (tx.StreamError, httpx.ReadError),  # a body that failed earlier: never looks complete
]
