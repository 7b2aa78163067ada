"""Session: the requests-like API over a PoolManager, and the one-shot module functions.

A Session holds the user's defaults (headers, TLS settings, timeouts) and the pools. It builds
a validated `Request` from what the user passes and hands it to the pool for its origin; the
pool does the rest (see pool.py). One Session may be shared by many threads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..closing import Closing
from ..io.tls import CertTypes, VerifyTypes
from ..lifecycle.poolstate import PoolStats
from ..lifecycle.rules import Limits
from ..models import URL, HeaderInput, QueryParams, Timeout, TimeoutTypes
from ..protocol.proxy import Proxy
from ..requestbody import FormTypes
from ..response import Response
from ..sync.http2 import HTTP2Mode
from ..sync.poolmanager import PoolManager
from .build import build_request, default_headers, tls_override
from .proxies import ProxiesTypes, ProxyChooser

__all__ = ["Session", "delete", "get", "head", "options", "patch", "post", "put", "request"]


class Session(Closing):
    """Pooled, thread-safe HTTP client with requests' API.

    Args:
        headers: sent with every request (a request's own headers override them).
        verify: TLS verification: True (certifi), False, a CA bundle path or an SSLContext.
        cert: client certificate path, or (cert, key) paths.
        timeout: default timeouts: a ``Timeout``, seconds for every phase, or (connect, read).
        pool_maxsize: idle connections kept per origin (more may open under load).
        pool_block: wait for a free connection instead of opening extra ones.
        num_pools: origins whose pools are kept.
        limits: idle timeout, max lifetime and max requests per connection.
        watch_idle: close idle sockets as soon as the server closes them.
        http2: ``True`` offers HTTP/2 to https servers by ALPN (the server chooses per
            connection; one HTTP/2 connection carries the requests of every thread);
            ``"prior-knowledge"`` also speaks HTTP/2 (h2c) to plain-http servers.
        coalesce: let https hosts share an HTTP/2 connection when one verified certificate
            covers them and they resolve to the same address (RFC 9113 §9.1.1); off by default.
        proxy: send every request through this proxy (``http://user:pass@host:3128``,
            ``socks5h://host:1080``, ...).
        proxies: requests' form, per scheme or host: ``{"http": ..., "https": ..., "all":
            ..., "https://host": ..., "no_proxy": "localhost,.internal"}`` (see
            ``client.proxies``). A request's ``proxies=`` overrides these per key.
    """

    def __init__(
        self,
        *,
        headers: HeaderInput = None,
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        timeout: TimeoutTypes = Timeout(),
        pool_maxsize: int = 10,
        pool_block: bool = False,
        num_pools: int = 10,
        limits: Limits = Limits(),
        watch_idle: bool = True,
        http2: HTTP2Mode = False,
        coalesce: bool = False,
        proxy: str | Proxy | None = None,
        proxies: ProxiesTypes = None,
    ) -> None:
        self.headers = default_headers(headers)
        # The environment's proxies join when trust_env is wired here (ProxyChooser's own
        # trust_env); until then only what the caller passes is used.
        self._proxies = ProxyChooser(proxy, proxies)
        self._manager = PoolManager(
            num_pools,
            maxsize=pool_maxsize,
            block=pool_block,
            timeout=timeout,
            verify=verify,
            cert=cert,
            limits=limits,
            watch_idle=watch_idle,
            http2=http2,
            coalesce=coalesce,
        )

    def request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        data: bytes | str | FormTypes | Iterable[bytes] = None,
        json: Any = None,
        headers: HeaderInput = None,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        verify: VerifyTypes | None = None,
        cert: CertTypes = None,
        proxies: ProxiesTypes = None,
    ) -> Response:
        """Send a request and return its response (body read unless ``stream=True``).

        ``params`` are added to the query string; ``data`` is a body (bytes, str, an iterator of
        bytes) or form fields (a dict or pairs); ``json`` a JSON body. ``verify`` and ``cert``
        override the session's TLS settings for this request (a separate pool).
        """
        req = build_request(
            method, url, self.headers, params=params, data=data, json=json, headers=headers
        )
        tls = tls_override(self._manager.tls, verify, cert)
        proxy = self._proxies.choose(req.url, proxies)
        response: Response = self._manager.send(req, timeout, stream, tls, proxy)
        return response

    def get(self, url: str | URL, **kwargs: Any) -> Response:
        """GET ``url``."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str | URL, **kwargs: Any) -> Response:
        """HEAD ``url``: a response with headers and no body."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str | URL, **kwargs: Any) -> Response:
        """OPTIONS ``url``."""
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str | URL, **kwargs: Any) -> Response:
        """POST to ``url`` (``data=`` or ``json=``)."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str | URL, **kwargs: Any) -> Response:
        """PUT to ``url``."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str | URL, **kwargs: Any) -> Response:
        """PATCH ``url``."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str | URL, **kwargs: Any) -> Response:
        """DELETE ``url``."""
        return self.request("DELETE", url, **kwargs)

    @property
    def proxies(self) -> dict[str, Any]:
        """The session's proxy settings, requests' form (a copy; ``"all"`` for ``proxy=``)."""
        return dict(self._proxies.proxies)

    @property
    def pool_manager(self) -> PoolManager:
        """The pools behind this session (one per origin and TLS settings)."""
        return self._manager

    def stats(self) -> PoolStats:
        """Connection counters summed over every origin this session talked to."""
        return self._manager.stats()

    def close(self) -> None:
        """Close every pooled connection; the session cannot be used afterwards."""
        self._manager.close()


def request(method: str, url: str | URL, **kwargs: Any) -> Response:
    """Send one request with a Session that is closed before returning.

    The response's body is read first (``stream=True`` is not available here: its connection
    would outlive the session). TLS contexts are cached, so a call does not rebuild one.
    """
    if kwargs.pop("stream", False):
        raise TypeError("one-shot calls read the body; use a Session for stream=True")
    session_args = {k: kwargs.pop(k) for k in ("verify", "cert", "proxy") if k in kwargs}
    with Session(pool_maxsize=1, watch_idle=False, **session_args) as session:
        return session.request(method, url, **kwargs)


def get(url: str | URL, **kwargs: Any) -> Response:
    """One-shot GET (see ``request``)."""
    return request("GET", url, **kwargs)


def head(url: str | URL, **kwargs: Any) -> Response:
    """One-shot HEAD."""
    return request("HEAD", url, **kwargs)


def options(url: str | URL, **kwargs: Any) -> Response:
    """One-shot OPTIONS."""
    return request("OPTIONS", url, **kwargs)


def post(url: str | URL, **kwargs: Any) -> Response:
    """One-shot POST."""
    return request("POST", url, **kwargs)


def put(url: str | URL, **kwargs: Any) -> Response:
    """One-shot PUT."""
    return request("PUT", url, **kwargs)


def patch(url: str | URL, **kwargs: Any) -> Response:
    """One-shot PATCH."""
    return request("PATCH", url, **kwargs)


def delete(url: str | URL, **kwargs: Any) -> Response:
    """One-shot DELETE."""
    return request("DELETE", url, **kwargs)
