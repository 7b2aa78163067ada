"""A requests transport adapter: requests' API on top, tether's connections underneath.

::

    import requests
    from tether.adapters.requests import TetherAdapter

    s = requests.Session()
    s.mount("http://", TetherAdapter())
    s.mount("https://", TetherAdapter(http2=True))   # or: s = tether.adapters.requests.session()

requests keeps doing what it does (redirects, cookies, auth, hooks, ``Response`` objects); every
byte goes over tether's pools: Keep-Alive honoured, the idle timeout learned, no CLOSE_WAIT, a
request on a stale connection sent again only when that is safe, HTTP/2 if asked.
``response.connection_info`` (also ``response.raw.connection_info``) says which connection
carried the response and whether it was reused.

Where it differs from requests' own ``HTTPAdapter`` (deliberately):

- ``proxies``: requests chooses the proxy (``Session.proxies``, or the environment's
  ``*_proxy`` and ``no_proxy`` when ``trust_env``) and tether carries it: http:// forwarded on
  pooled connections to the proxy, https:// (and SOCKS) through tunnels kept and reused like
  any pooled connection; ``https://`` proxies get TLS to the proxy (checked with ``verify``,
  as requests does) and the origin's TLS inside. A proxy tether cannot use (an unknown
  scheme) raises ``ProxiesNotSupported``; a refused CONNECT (407, 403) raises requests'
  ``ProxyError``.
- ``verify=True`` means certifi's bundle, as in requests, but the environment's CA variables
  are read only by requests itself (``trust_env``), never by tether.
- ``max_retries`` counts only retries of requests that reached no server (connect errors and
  connect timeouts). tether itself always sends a request again when a reused connection
  turns out dead and that is safe; a read error on a fresh connection is never retried.
  urllib3 ``Retry`` options that ask for more (``read``, ``status_forcelist``, ``other``)
  raise ``ValueError`` rather than being silently ignored.
- A pool-full wait (``pool_block=True``) ends after the connect timeout (urllib3: never) and
  raises ``requests.ConnectionError``.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import requests
import requests.sessions
import urllib3
from requests.adapters import BaseAdapter
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import (
    ConnectionError,
    ConnectTimeout,
    InvalidHeader,
    InvalidURL,
    ProxyError,
    ReadTimeout,
    RequestException,
    SSLError,
)
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3.exceptions import ConnectTimeoutError, InsecureRequestWarning, MaxRetryError
from urllib3.util.retry import Retry

from .. import exceptions as tx
from ..io.tls import TLSConfig
from ..models import Request, Timeout
from ..protocol.proxy import Proxy
from ..response import ConnectionInfo, Response
from ..sync.http2 import HTTP2Mode
from ..sync.poolmanager import PoolManager
from .urllib3raw import raw_response

__all__ = [
    "ProxiesNotSupported",
    "TetherAdapter",
    "connection_info",
    "patch",
    "patched",
    "session",
    "unpatch",
]

_READ_SIZE = 64 * 1024  # a file-like request body is sent in pieces of this size


class ProxiesNotSupported(RequestException):
    """A proxy applies to this request, and tether cannot use that kind of proxy."""


class TetherAdapter(BaseAdapter):
    """A ``requests`` transport adapter that sends over tether's connection pools.

    Args:
        pool_connections: origins whose pools are kept (least recently used closed first).
        pool_maxsize: idle connections kept per origin.
        max_retries: an int or a urllib3 ``Retry``: how many times a request that reached no
            server (connect error or timeout) is tried again (``total``, ``connect``,
            ``backoff_factor`` honoured). See the module docstring for what is refused.
        pool_block: at most ``pool_maxsize`` connections per origin; others wait for one.
        http2: ``True`` offers HTTP/2 by ALPN on https (one connection then carries the
            requests of every thread sharing the Session); ``"prior-knowledge"`` also speaks
            HTTP/2 to plain-http servers.
        **pool_kwargs: passed to tether's ``PoolManager`` (``limits=``, ``watch_idle=``).
    """

    def __init__(
        self,
        pool_connections: int = 10,
        pool_maxsize: int = 10,
        max_retries: int | Retry | None = 0,
        pool_block: bool = False,
        *,
        http2: HTTP2Mode = False,
        **pool_kwargs: Any,
    ) -> None:
        super().__init__()
        self.max_retries = _check_retry(max_retries)
        self._pool_connections = pool_connections
        self._pool_maxsize = pool_maxsize
        self._pool_block = pool_block
        self._pool_kwargs: dict[str, Any] = {"http2": http2, **pool_kwargs}
        self._lock = threading.Lock()
        self._manager: PoolManager | None = None

    @property
    def pool_manager(self) -> PoolManager:
        """tether's pools behind this adapter (made again after ``close()``, as requests does)."""
        manager = self._manager
        if manager is None:
            with self._lock:
                if self._manager is None:
                    self._manager = PoolManager(
                        self._pool_connections,
                        maxsize=self._pool_maxsize,
                        block=self._pool_block,
                        **self._pool_kwargs,
                    )
                manager = self._manager
        return manager

    def stats(self) -> Any:
        """tether's connection counters (``PoolStats``) for this adapter's pools."""
        return self.pool_manager.stats()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send a prepared request over tether and build requests' ``Response``."""
        url = request.url.decode() if isinstance(request.url, bytes) else str(request.url)
        chosen = select_proxy(url, dict(proxies)) if proxies else None
        try:
            proxy = Proxy.parse(chosen) if chosen else None
        except tx.InvalidProxyURL as exc:
            raise ProxiesNotSupported(str(exc), request=request) from None
        t = _timeout(timeout)
        tls = None
        if proxy is not None and proxy.tls:  # requests' verify covers an https proxy too
            tls = TLSConfig(verify, _cert(cert))
        if url[:6].lower() == "https:":
            tls = TLSConfig(verify, _cert(cert))
            if verify is False:
                warnings.warn(
                    f"Unverified HTTPS request is being made to {url!r}: the certificate is "
                    "not checked (verify=False)",
                    InsecureRequestWarning,
                    stacklevel=2,
                )
        started = time.monotonic()
        try:
            treq = Request(
                request.method or "GET",
                url,
                headers=list(request.headers.items()),
                body=_body(request.body),
            )
            tresp = self._send(treq, t, tls, request, proxy)
        except tx.TetherError as exc:
            raise _mapped(exc, request) from exc
        response = self.build_response(request, tresp)
        response.elapsed = timedelta(seconds=time.monotonic() - started)
        return response

    def _send(
        self,
        treq: Request,
        t: Timeout,
        tls: TLSConfig | None,
        request: Any,
        proxy: Proxy | None = None,
    ) -> Response:
        retry = self.max_retries
        while True:
            try:
                response: Response = self.pool_manager.send(treq, t, True, tls, proxy)
                return response
            except (tx.ConnectError, tx.ConnectTimeout) as exc:
                if exc.may_have_reached_server or isinstance(exc, (tx.TLSError, tx.ProxyError)):
                    raise
                try:  # urllib3 counts and raises when exhausted (total, connect, backoff)
                    retry = retry.increment(
                        treq.method, str(treq.url), error=ConnectTimeoutError(str(exc))
                    )
                except (MaxRetryError, urllib3.exceptions.HTTPError):
                    raise exc from None
                retry.sleep()

    def build_response(self, req: requests.PreparedRequest, resp: Response) -> requests.Response:
        """requests' ``Response`` for tether's, the way ``HTTPAdapter.build_response`` does."""
        raw = raw_response(resp, req)
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = raw.reason or ""
        url = req.url
        response.url = url.decode("utf-8") if isinstance(url, bytes) else str(url)
        extract_cookies_to_jar(response.cookies, req, raw)  # type: ignore[no-untyped-call]
        response.request = req
        response.connection = self  # type: ignore[assignment]
        response.connection_info = resp.connection_info  # type: ignore[attr-defined]
        return response

    def close(self) -> None:
        """Close every pooled connection (a later request opens new ones, as in requests)."""
        with self._lock:
            manager, self._manager = self._manager, None
        if manager is not None:
            manager.close()


def _check_retry(max_retries: int | Retry | None) -> Retry:
    if isinstance(max_retries, int):
        return Retry(max_retries, read=False)  # connect retries only: a read may have been acted on
    retry = Retry.from_int(max_retries)
    unsupported = {
        "read": retry.read not in (None, False, 0),
        "status_forcelist": bool(retry.status_forcelist),
        "other": retry.other not in (None, 0),
    }
    asked = [name for name, wanted in unsupported.items() if wanted]
    if asked:
        raise ValueError(
            f"TetherAdapter cannot honour Retry({', '.join(asked)}=...) yet: it retries only "
            "requests that reached no server (total, connect, backoff_factor); tether itself "
            "resends a request on a dead reused connection when that is safe"
        )
    return retry


def _timeout(timeout: Any) -> Timeout:
    """requests' timeout forms: None, a number, (connect, read), or a urllib3 Timeout."""
    if isinstance(timeout, urllib3.Timeout):
        connect, read = timeout.connect_timeout, timeout.read_timeout
        timeout = (
            connect if isinstance(connect, (int, float)) else None,
            read if isinstance(read, (int, float)) else None,
        )
    if isinstance(timeout, tuple):
        if len(timeout) != 2:
            raise ValueError(
                f"Invalid timeout {timeout}. Pass a (connect, read) timeout tuple, or a single "
                "float to set both timeouts to the same value."
            )
        values = timeout
    else:
        values = (timeout, timeout)
    for value in values:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
        ):
            raise ValueError(f"Invalid timeout {timeout!r}: a timeout must be None or >= 0")
    return Timeout.of(timeout)


def _cert(cert: Any) -> str | tuple[str, str] | None:
    if cert is None or isinstance(cert, str):
        return cert
    certfile, keyfile = cert
    return (str(certfile), str(keyfile))


def _body(body: Any) -> Any:
    """A PreparedRequest's body as tether takes it: bytes, or an iterable of bytes."""
    if not body:
        return None  # requests sends Content-Length: 0 itself where it belongs
    if isinstance(body, (bytes, str)):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    read = getattr(body, "read", None)
    if read is not None:
        return _file_chunks(read)
    return (piece.encode("utf-8") if isinstance(piece, str) else piece for piece in body)


def _file_chunks(read: Any) -> Iterator[bytes]:
    while True:
        piece = read(_READ_SIZE)
        if not piece:
            return
        yield piece.encode("utf-8") if isinstance(piece, str) else piece


def _mapped(exc: tx.TetherError, request: Any) -> RequestException:
    """requests' exception for tether's (the caller chains it: ``raise ... from exc``)."""
    kind: type[RequestException]
    if isinstance(exc, tx.ConnectTimeout):
        kind = ConnectTimeout
    elif isinstance(exc, tx.ReadTimeout):
        kind = ReadTimeout
    elif isinstance(exc, tx.TLSError):
        kind = SSLError
    elif isinstance(exc, tx.ProxyError):
        kind = ProxyError
    elif isinstance(exc, tx.InvalidURL):
        kind = InvalidURL
    elif isinstance(exc, tx.InvalidHeader):
        kind = InvalidHeader
    elif isinstance(exc, (tx.TransportError, tx.PoolClosed)):
        kind = ConnectionError  # refused, reset, closed, garbage, pool wait, write timeout
    else:
        kind = RequestException
    return kind(str(exc), request=request)


def connection_info(response: requests.Response) -> ConnectionInfo | None:
    """The tether ``ConnectionInfo`` of a response (None if another adapter sent it)."""
    return getattr(response, "connection_info", None)


# -- a Session with tether mounted, and patching requests --------------------------------------


def session(**adapter_kwargs: Any) -> requests.Session:
    """A ``requests.Session`` with one ``TetherAdapter(**adapter_kwargs)`` for http and https."""
    s = requests.Session()
    adapter = TetherAdapter(**adapter_kwargs)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


_original_adapter: type[requests.adapters.HTTPAdapter] | None = None


def patch() -> None:
    """Make every new ``requests.Session`` (and ``requests.get`` & co.) use TetherAdapter.

    Off by default and process-wide: it replaces the ``HTTPAdapter`` that ``requests.Session``
    mounts for http:// and https://. Sessions that already exist, and code that mounts
    ``requests.adapters.HTTPAdapter`` itself, are not changed. ``unpatch()`` undoes it.
    """
    global _original_adapter
    if _original_adapter is None:
        _original_adapter = requests.sessions.HTTPAdapter
        requests.sessions.HTTPAdapter = TetherAdapter  # type: ignore[assignment]


def unpatch() -> None:
    """Undo ``patch()``: new Sessions mount requests' own ``HTTPAdapter`` again."""
    global _original_adapter
    if _original_adapter is not None:
        requests.sessions.HTTPAdapter = _original_adapter
        _original_adapter = None


def patched() -> bool:
    """Is ``patch()`` in force?"""
    return _original_adapter is not None
