"""AsyncSession: the Session API for asyncio, over an AsyncPoolManager.

Every argument and default is `Session`'s, and the request is built by the same function
(``client.build.build_request``): only the waiting differs.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..aio.connect import HTTP2Mode
from ..aio.poolmanager import AsyncPoolManager
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
from ..response import AsyncResponse
from .auth import AuthTypes
from .build import tls_override
from .defaults import DEFAULT_MAX_REDIRECTS, EventHooks, SessionDefaults
from .proxies import ProxiesTypes, ProxyChooser
from .retry import Retry, RetryCounter, as_retry, asend_with_retries
from .transports import AsyncTransport, Mounts

__all__ = ["AsyncSession"]


class AsyncSession(SessionDefaults):
    """Pooled HTTP client for asyncio with requests' API: ``async with AsyncSession() as s:
    r = await s.get(url)``.

    The arguments are `Session`'s (``watch_idle`` is accepted for the same signature; the event
    loop always notices a server closing an idle connection). Many tasks may share a session;
    with ``http2`` one HTTP/2 connection carries the requests of all of them at once. Event
    hooks may be plain functions or coroutine functions (awaited).
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
        retries: Retry | int | None = None,
        transport: AsyncTransport | None = None,
        mounts: Mapping[str, AsyncTransport] | None = None,
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
        self._manager = AsyncPoolManager(
            num_pools,
            maxsize=pool_maxsize,
            block=pool_block,
            timeout=timeout,
            verify=self._verify(verify),
            cert=cert,
            limits=limits,
            http2=http2,
            trace=trace,
            resolver=resolver,
        )
        self._retry = as_retry(retries)
        self._retried = RetryCounter()
        self._transports: Mounts[AsyncTransport] = Mounts(transport or self._manager, mounts)

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        data: bytes | str | FormTypes | Iterable[bytes] | AsyncIterable[bytes] = None,
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
    ) -> AsyncResponse:
        """Send a request and return its response (see ``Session.request``)."""
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
            response = await self._send_hop(req, timeout, stream, tls, proxies)
            try:
                req = flow.next(response)
            except BaseException:
                await response.aclose()
                raise
            if req is None:
                return response
            await response.aclose()  # read already, or drained: the connection is reused

    async def _send_hop(
        self,
        req: Request,
        timeout: TimeoutTypes | None,
        stream: bool,
        tls: TLSConfig | None,
        proxies: ProxiesTypes = None,
    ) -> AsyncResponse:
        """One hop with the event hooks around it (a hook may be a coroutine function)."""
        for hook in self.event_hooks["request"]:
            if inspect.isawaitable(result := hook(req)):
                await result
        response = await self._send_one(req, timeout, stream, tls, proxies)
        try:
            for hook in self.event_hooks["response"]:
                if inspect.isawaitable(result := hook(response)):
                    await result
        except BaseException:
            await response.aclose()
            raise
        return response

    async def _send_one(
        self,
        req: Request,
        timeout: TimeoutTypes | None,
        stream: bool,
        tls: TLSConfig | None,
        proxies: ProxiesTypes = None,
    ) -> AsyncResponse:
        """Send exactly one request through the pools (every hop of every call comes here)."""
        transport = self._transports.for_url(req.url)
        proxy = self._proxies.choose(req.url, proxies)  # chosen again for every hop
        response = await asend_with_retries(
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
            response.read()  # decode now: a damaged or oversized body raises here
        return response

    async def get(self, url: str | URL, **kwargs: Any) -> AsyncResponse:
        """GET ``url``."""
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str | URL, **kwargs: Any) -> AsyncResponse:
        """HEAD ``url``: a response with headers and no body."""
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str | URL, **kwargs: Any) -> AsyncResponse:
        """OPTIONS ``url``."""
        return await self.request("OPTIONS", url, **kwargs)

    async def post(self, url: str | URL, **kwargs: Any) -> AsyncResponse:
        """POST to ``url`` (``data=`` or ``json=``)."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str | URL, **kwargs: Any) -> AsyncResponse:
        """PUT to ``url``."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str | URL, **kwargs: Any) -> AsyncResponse:
        """PATCH ``url``."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str | URL, **kwargs: Any) -> AsyncResponse:
        """DELETE ``url``."""
        return await self.request("DELETE", url, **kwargs)

    @property
    def proxies(self) -> dict[str, Any]:
        """The session's proxy settings, requests' form (a copy; ``"all"`` for ``proxy=``)."""
        return dict(self._proxies.proxies)

    @property
    def pool_manager(self) -> AsyncPoolManager:
        """The pools behind this session (one per origin and TLS settings)."""
        return self._manager

    def stats(self) -> PoolStats:
        """Connection counters summed over every origin this session talked to."""
        return replace(self._manager.stats(), user_retries=self._retried.count)

    async def aclose(self) -> None:
        """Close every pooled connection; the session cannot be used afterwards."""
        await self._manager.aclose()
        for transport in self._transports.all():
            if transport is not self._manager:
                await transport.aclose()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
