"""Session: the requests-like API over a PoolManager, and the one-shot module functions.

A Session holds the user's defaults (headers, TLS settings, timeouts) and the pools. It builds
a validated `Request` from what the user passes and hands it to the pool for its origin; the
pool does the rest (see pool.py). One Session may be shared by many threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..closing import Closing
from ..cookiejar import CookieTypes
from ..decoding import DecodeLimits
from ..io.resolver import Resolver
from ..io.tls import CertTypes, TLSConfig, VerifyTypes
from ..lifecycle.poolstate import PoolStats
from ..lifecycle.rules import Limits
from ..lifecycle.trace import Tracer
from ..models import URL, HeaderInput, QueryParams, Request, Timeout, TimeoutTypes
from ..protocol.proxy import Proxy
from ..requestbody import FilesTypes, FormTypes
from ..response import Response
from ..sync.http2 import HTTP2Mode
from ..sync.poolmanager import PoolManager
from .auth import AuthTypes
from .build import tls_override
from .defaults import DEFAULT_MAX_REDIRECTS, EventHooks, SessionDefaults
from .proxies import ProxiesTypes, ProxyChooser
from .retry import Retry, RetryCounter, as_retry, send_with_retries
from .transports import Mounts, Transport

__all__ = ["Session", "delete", "get", "head", "options", "patch", "post", "put", "request"]


class Session(SessionDefaults, Closing):
    """Pooled, thread-safe HTTP client with requests' API.

    Args:
        headers: sent with every request (a request's own headers override them; a None
            value removes a default, ``headers={"User-Agent": None}``).
        cookies: the jar's first cookies (a dict, for any host, or a CookieJar). The jar,
            ``session.cookies``, keeps what servers set, by the stdlib's cookie rules.
        auth: for every request to the origin it addresses: (user, password) for Basic,
            ``tether.DigestAuth``, ``tether.TokenAuth``, any ``tether.Auth`` or a callable.
        params: query parameters for every request (a request's own win by name).
        base_url: relative URLs are joined to it (``"/users"`` on ``http://h/api`` is
            ``http://h/api/users``), as in httpx.
        follow_redirects: follow redirects (True, as in requests); per request
            ``allow_redirects=`` or ``follow_redirects=``.
        max_redirects: redirects followed before TooManyRedirects (30).
        event_hooks: ``{"request": [f, ...], "response": [g, ...]}``: called with each
            request just before it is sent and each response as it arrives (every hop of a
            redirect or auth retry, before its body is read when streaming).
        trust_env: read the proxy variables (``HTTP_PROXY``, ``NO_PROXY``...), ``SSL_CERT_FILE`` /
            ``SSL_CERT_DIR`` (for ``verify=True``) and ``.netrc`` from the environment.
        verify: TLS verification: True (certifi), False, a CA bundle path or an SSLContext.
        cert: client certificate path, or (cert, key) paths.
        timeout: default timeouts: a ``Timeout``, seconds for every phase, or (connect, read).
        pool_maxsize: idle connections kept per origin (more may open under load).
        pool_block: wait for a free connection instead of opening extra ones.
        num_pools: origins whose pools are kept.
        limits: idle timeout, max lifetime and max requests per connection, and whether a
            request the server provably never saw is sent again (``retry_closed_before_request``).
        watch_idle: close idle sockets as soon as the server closes them.
        http2: ``True`` offers HTTP/2 to https servers by ALPN (the server chooses per
            connection; one HTTP/2 connection carries the requests of every thread);
            ``"prior-knowledge"`` also speaks HTTP/2 (h2c) to plain-http servers.
        coalesce: let https hosts share an HTTP/2 connection when one verified certificate
            covers them and they resolve to the same address (RFC 9113 §9.1.1); off by default.
        retries: a ``tether.Retry`` (or a count: ``Retry(total=n)``) for 429/502/503/504 and
            failed connects, honouring ``Retry-After``; None (the default): no such retries.
        transport: what requests are sent through instead of the pools (``MockTransport``).
        mounts: ``{"https://api.example": transport}``: URLs under a prefix go to that
            transport (the longest prefix wins).
        trace: called with every `tether.trace` event of the session's connections (connect,
            TLS, reuse, request and response, release, close, retry), on the thread doing the
            work. With ``tether`` logging at DEBUG when the session is made, the events are
            also logged as curl-style lines (``tether.connection``, ``tether.http``).
        resolver: ``resolver(host, port) -> iterable of IP address strings``, called instead
            of the system resolver for every host name (never for IP literals), for instance
            to make a name resolve to several addresses. Each dial races the addresses
            (happy eyeballs, RFC 8305) within the connect timeout.
        decode_limits: how far a compressed body may expand (``DecodeLimits``): past them the
            body raises ``DecompressionLimitError`` instead of filling memory.
        proxy: send every request through this proxy (``http://user:pass@host:3128``,
            ``https://host:443`` (TLS to the proxy, checked with ``verify``),
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
        retries: Retry | int | None = None,
        transport: Transport | None = None,
        mounts: Mapping[str, Transport] | None = None,
        trace: Tracer | None = None,
        resolver: Resolver | None = None,
        cookies: CookieTypes = None,
        auth: AuthTypes = None,
        params: QueryParams = None,
        base_url: str | URL | None = None,
        follow_redirects: bool = True,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        event_hooks: EventHooks = None,
        trust_env: bool = True,
        decode_limits: DecodeLimits = DecodeLimits(),
        proxy: str | Proxy | None = None,
        proxies: ProxiesTypes = None,
    ) -> None:
        self._init_defaults(
            headers=headers,
            cookies=cookies,
            auth=auth,
            params=params,
            base_url=base_url,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            event_hooks=event_hooks,
            trust_env=trust_env,
        )
        self.timeout = timeout
        self.decode_limits = decode_limits
        self._proxies = ProxyChooser(proxy, proxies, trust_env)
        self._manager = PoolManager(
            num_pools,
            maxsize=pool_maxsize,
            block=pool_block,
            timeout=timeout,
            verify=self._verify(verify),
            cert=cert,
            limits=limits,
            watch_idle=watch_idle,
            http2=http2,
            coalesce=coalesce,
            trace=trace,
            resolver=resolver,
        )
        self._retry = as_retry(retries)
        self._retried = RetryCounter()
        self._transports: Mounts[Transport] = Mounts(transport or self._manager, mounts)

    def request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        data: bytes | str | FormTypes | Iterable[bytes] = None,
        json: Any = None,
        headers: HeaderInput = None,
        files: FilesTypes = None,
        cookies: CookieTypes = None,
        auth: AuthTypes = None,
        timeout: TimeoutTypes | None = None,
        allow_redirects: bool | None = None,
        follow_redirects: bool | None = None,
        stream: bool = False,
        verify: VerifyTypes | None = None,
        cert: CertTypes = None,
        proxies: ProxiesTypes = None,
    ) -> Response:
        """Send a request and return its response (body read unless ``stream=True``).

        ``params`` are added to the query string; ``data`` is a body (bytes, str, an iterator of
        bytes, an open file) or form fields (a dict or pairs; None values are left out);
        ``files`` multipart/form-data file parts (``{"f": open(...)}``, ``{"f": (filename,
        file_or_bytes_or_path, content_type)}``), streamed, sent with ``data`` fields; ``json`` a
        JSON body. ``cookies`` are sent to this URL's host only; ``auth`` overrides the
        session's. Redirects are followed unless ``allow_redirects=False`` (then
        ``response.next`` is the request a redirect asks for); ``response.history`` holds the
        redirects followed. ``verify`` and ``cert`` override the session's TLS settings for this
        request (a separate pool).
        """
        flow = self._flow(
            method,
            url,
            params=params,
            data=data,
            json=json,
            headers=headers,
            files=files,
            cookies=cookies,
            auth=auth,
            allow_redirects=allow_redirects,
            follow_redirects=follow_redirects,
        )
        tls = tls_override(self._manager.tls, verify, cert)
        if timeout is None:
            timeout = self.timeout
        req: Request | None = flow.first()
        while True:
            assert req is not None
            response = self._send_hop(req, timeout, stream, tls, proxies)
            try:
                req = flow.next(response)
            except BaseException:
                response.close()
                raise
            if req is None:
                return response
            response.close()  # read already, or small enough to drain: the connection is reused

    def _send_hop(
        self,
        req: Request,
        timeout: TimeoutTypes | None,
        stream: bool,
        tls: TLSConfig | None,
        proxies: ProxiesTypes = None,
    ) -> Response:
        """One hop with the event hooks around it."""
        for hook in self.event_hooks["request"]:
            hook(req)
        response = self._send_one(req, timeout, stream, tls, proxies)
        try:
            for hook in self.event_hooks["response"]:
                hook(response)
        except BaseException:
            response.close()
            raise
        return response

    def _send_one(
        self,
        req: Request,
        timeout: TimeoutTypes | None,
        stream: bool,
        tls: TLSConfig | None,
        proxies: ProxiesTypes = None,
    ) -> Response:
        """Send exactly one request through the pools (every hop of every call comes here)."""
        transport = self._transports.for_url(req.url)
        proxy = self._proxies.choose(req.url, proxies)  # chosen again for every hop
        response: Response = send_with_retries(
            self._retry,
            self._retried,
            req,
            # a mounted transport knows nothing of proxies; the pools route by them
            (lambda: self._manager.send(req, timeout, stream, tls, proxy))
            if transport is self._manager
            else (lambda: transport.send(req, timeout, stream, tls)),
        )
        response.decode_limits = self.decode_limits
        if not stream:
            response.read()  # decode now: a damaged or oversized body raises here, as in requests
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
        return replace(self._manager.stats(), user_retries=self._retried.count)

    def close(self) -> None:
        """Close every pooled connection; the session cannot be used afterwards."""
        self._manager.close()
        for transport in self._transports.all():
            if transport is not self._manager:
                transport.close()


def request(method: str, url: str | URL, **kwargs: Any) -> Response:
    """Send one request with a Session that is closed before returning.

    The response's body is read first (``stream=True`` is not available here: its connection
    would outlive the session). TLS contexts are cached, so a call does not rebuild one.
    """
    if kwargs.pop("stream", False):
        raise TypeError("one-shot calls read the body; use a Session for stream=True")
    session_args = {
        k: kwargs.pop(k) for k in ("verify", "cert", "trust_env", "proxy") if k in kwargs
    }
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
