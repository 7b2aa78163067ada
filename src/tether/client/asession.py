"""AsyncSession: the Session API for asyncio, over an AsyncPoolManager.

Every argument and default is `Session`'s, and the request is built by the same function
(``client.build.build_request``): only the waiting differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any

from ..aio.connect import HTTP2Mode
from ..aio.poolmanager import AsyncPoolManager
from ..io.tls import CertTypes, VerifyTypes
from ..lifecycle.poolstate import PoolStats
from ..lifecycle.rules import Limits
from ..models import URL, HeaderInput, QueryParams, Timeout, TimeoutTypes
from ..requestbody import FormTypes
from ..response import AsyncResponse
from .build import build_request, default_headers, tls_override

__all__ = ["AsyncSession"]


class AsyncSession:
    """Pooled HTTP client for asyncio with requests' API: ``async with AsyncSession() as s:
    r = await s.get(url)``.

    The arguments are `Session`'s (``watch_idle`` is accepted for the same signature; the event
    loop always notices a server closing an idle connection). Many tasks may share a session;
    with ``http2`` one HTTP/2 connection carries the requests of all of them at once.
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
    ) -> None:
        self.headers = default_headers(headers)
        self._manager = AsyncPoolManager(
            num_pools,
            maxsize=pool_maxsize,
            block=pool_block,
            timeout=timeout,
            verify=verify,
            cert=cert,
            limits=limits,
            http2=http2,
        )

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        params: QueryParams = None,
        data: bytes | str | FormTypes | Iterable[bytes] | AsyncIterable[bytes] = None,
        json: Any = None,
        headers: HeaderInput = None,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        verify: VerifyTypes | None = None,
        cert: CertTypes = None,
    ) -> AsyncResponse:
        """Send a request and return its response (see ``Session.request``)."""
        req = build_request(
            method, url, self.headers, params=params, data=data, json=json, headers=headers
        )
        tls = tls_override(self._manager.tls, verify, cert)
        return await self._manager.send(req, timeout, stream, tls)

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
    def pool_manager(self) -> AsyncPoolManager:
        """The pools behind this session (one per origin and TLS settings)."""
        return self._manager

    def stats(self) -> PoolStats:
        """Connection counters summed over every origin this session talked to."""
        return self._manager.stats()

    async def aclose(self) -> None:
        """Close every pooled connection; the session cannot be used afterwards."""
        await self._manager.aclose()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
