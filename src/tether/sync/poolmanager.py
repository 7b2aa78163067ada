"""One ConnectionPool per origin and TLS settings, created on demand, least recently used closed."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from ..closing import Closing
from ..exceptions import PoolClosed
from ..io.tls import CertTypes, TLSConfig, VerifyTypes
from ..models import HeaderInput, Origin, Request, Timeout, TimeoutTypes, parse_url
from ..requestbody import FormTypes
from .pool import ConnectionPool, PoolStats

__all__ = ["PoolKey", "PoolManager"]

PoolKey = tuple[Origin, TLSConfig | None, None]  # (origin, TLS settings, proxy: later)


class PoolManager(Closing):
    """Pools for many origins, keyed by (scheme, host, port, TLS settings, proxy).

    Args:
        num_pools: how many pools to keep; the least recently used is closed beyond that.
        maxsize, block, timeout, limits, watch_idle, http2: passed to each ConnectionPool.
        verify, cert: TLS settings for https origins.
    """

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
        self._pools: OrderedDict[PoolKey, ConnectionPool] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        self._retired = PoolStats(0, 0, 0, 0, 0, 0, 0, {})
        self._last: tuple[Origin, TLSConfig | None, ConnectionPool] | None = None

    def pool_for(self, origin: Origin, tls: TLSConfig | None = None) -> ConnectionPool:
        """The pool for ``origin`` (created if needed), most recently used from now on."""
        if origin.scheme != "https":
            tls = None
        elif tls is None:
            tls = self.tls
        last = self._last
        if last is not None and last[0] is origin and last[1] is tls:
            return last[2]  # the same origin as the previous request: no lookup, no reordering
        key: PoolKey = (origin, tls, None)
        evicted: ConnectionPool | None = None
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                self._last = (origin, tls, pool)
                return pool
            if self._closed:
                raise PoolClosed("the pool manager is closed")
            pool = ConnectionPool(
                origin.host,
                origin.port,
                origin.scheme,
                verify=tls.verify if tls else True,
                cert=tls.cert if tls else None,
                **self._pool_kwargs,
            )
            self._pools[key] = pool
            if len(self._pools) > self.num_pools:
                _, evicted = self._pools.popitem(last=False)
                self._last = None
            self._last = (origin, tls, pool)
        if evicted is not None:
            evicted.close()  # its busy connections close when their responses end
            gone = evicted.stats().history()  # what it did, not what it held when evicted
            with self._lock:
                self._retired = self._retired + gone
        return pool

    def request(
        self,
        method: str,
        url: str,
        fields: FormTypes = None,
        headers: HeaderInput = None,
        body: bytes | str | Iterable[bytes] | None = None,
        json: Any = None,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
    ) -> Any:
        """urllib3's ``PoolManager.request``: a request for an absolute URL."""
        parsed = parse_url(url)
        while True:
            pool = self.pool_for(parsed.origin)
            try:
                return pool.request(
                    method, parsed.target, fields, headers, body, json, timeout, stream
                )
            except PoolClosed:
                if self._closed:
                    raise  # evicted meanwhile (see send): try the origin's new pool

    def send(
        self,
        request: Request,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        tls: TLSConfig | None = None,
    ) -> Any:
        """Send a built request through the pool for its origin."""
        while True:
            try:
                return self.pool_for(request.url.origin, tls).send(request, timeout, stream)
            except PoolClosed:
                if self._closed:
                    raise
                # Another thread evicted that pool between lookup and send (nothing was sent):
                # an open manager never lets that surface. Each turn makes a new pool, which
                # only a busier thread evicting it again can close: the loop ends with them.

    def pools(self) -> list[ConnectionPool]:
        """The live pools, least recently used first."""
        with self._lock:
            return list(self._pools.values())

    def stats(self) -> PoolStats:
        """Counters summed over every pool this manager has had (closed ones included)."""
        total = self._retired
        for pool in self.pools():
            total = total + pool.stats()
        return total

    def close(self) -> None:
        """Close every pool."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
