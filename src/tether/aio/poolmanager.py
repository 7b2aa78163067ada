"""One AsyncConnectionPool per origin and TLS settings, created on demand, LRU closed.

The asyncio twin of `sync.poolmanager.PoolManager`, with the same key and eviction rule. No
lock: finding or making a pool never awaits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterable, Iterable
from typing import Any

from ..exceptions import PoolClosed
from ..io.tls import CertTypes, TLSConfig, VerifyTypes, pool_tls
from ..lifecycle.poolstate import PoolStats
from ..lifecycle.rules import LearnerTable
from ..models import HeaderInput, Origin, Request, Timeout, TimeoutTypes, parse_url
from ..protocol.proxy import Proxy
from ..requestbody import FormTypes
from ..response import AsyncResponse
from .pool import AsyncConnectionPool

__all__ = ["AsyncPoolManager"]

PoolKey = tuple[Origin, TLSConfig | None, Proxy | None]  # proxy: URL and credentials


class AsyncPoolManager:
    """Async pools for many origins (see `PoolManager`: the same arguments and rules)."""

    def __init__(
        self,
        num_pools: int = 10,
        *,
        maxsize: int = 1,
        block: bool = False,
        timeout: TimeoutTypes = Timeout(),
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        headers: HeaderInput = None,
        **pool_kwargs: Any,
    ) -> None:
        self.num_pools = max(1, num_pools)
        self.tls = TLSConfig(verify, cert)  # the default for https origins
        self._pool_kwargs: dict[str, Any] = dict(
            maxsize=maxsize, block=block, timeout=timeout, headers=headers, **pool_kwargs
        )
        self._pools: OrderedDict[PoolKey, AsyncConnectionPool] = OrderedDict()
        self._closed = False
        self._retired = PoolStats(0, 0, 0, 0, 0, 0, 0, {})
        # One idle-timeout learner per origin, whatever the TLS settings: one server.
        self.learners = LearnerTable(max(256, 4 * self.num_pools))
        self._evicted: list[AsyncConnectionPool] = []

    def pool_for(
        self, origin: Origin, tls: TLSConfig | None = None, proxy: Proxy | None = None
    ) -> AsyncConnectionPool:
        """The pool for ``origin`` through ``proxy`` (created if needed), most recently used
        from now on (the key rule is `PoolManager`'s)."""
        tls = pool_tls(origin, tls, self.tls, proxy)
        if proxy is not None and not proxy.tunnels(origin):
            origin = proxy.origin  # forwarded: one pool per proxy carries every http origin
        key: PoolKey = (origin, tls, proxy)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        if self._closed:
            raise PoolClosed("the pool manager is closed")
        pool = AsyncConnectionPool(
            origin.host,
            origin.port,
            origin.scheme,
            verify=tls.verify if tls else True,
            cert=tls.cert if tls else None,
            # a tunnel's idle closes may be the proxy's: its pool learns on its own
            idle_learner=self.learners.get(origin)
            if proxy is None or origin == proxy.origin
            else None,
            proxy=proxy,
            **self._pool_kwargs,
        )
        self._pools[key] = pool
        if len(self._pools) > self.num_pools:
            _, evicted = self._pools.popitem(last=False)
            evicted.close()  # its busy connections close when their responses end
            self._retired = self._retired + evicted.stats().history()
            self._evicted = [p for p in self._evicted if p.stats().open] + [evicted]
        return pool

    async def request(
        self,
        method: str,
        url: str,
        fields: FormTypes = None,
        headers: HeaderInput = None,
        body: bytes | str | Iterable[bytes] | AsyncIterable[bytes] | None = None,
        json: Any = None,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
    ) -> AsyncResponse:
        """urllib3's ``PoolManager.request``: a request for an absolute URL."""
        parsed = parse_url(url)
        pool = self.pool_for(parsed.origin)
        return await pool.request(
            method, parsed.target, fields, headers, body, json, timeout, stream
        )

    async def send(
        self,
        request: Request,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        tls: TLSConfig | None = None,
        proxy: Proxy | None = None,
    ) -> AsyncResponse:
        """Send a built request through the pool for its origin (and ``proxy``, if any)."""
        pool = self.pool_for(request.url.origin, tls, proxy)
        return await pool.send(request, timeout, stream)

    def pools(self) -> list[AsyncConnectionPool]:
        """The live pools, least recently used first."""
        return list(self._pools.values())

    def stats(self) -> PoolStats:
        """Counters summed over every pool this manager has had (closed ones included)."""
        total = self._retired
        for pool in self._pools.values():
            total = total + pool.stats()
        return total

    async def aclose(self) -> None:
        """Close every pool and wait (briefly) for their sockets to be released."""
        self._closed = True
        pools = list(self._pools.values()) + self._evicted
        self._evicted = []
        for pool in pools:
            await pool.aclose()

    async def __aenter__(self) -> AsyncPoolManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
