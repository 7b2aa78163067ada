"""One ConnectionPool per origin and TLS settings, created on demand, least recently used closed."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from ..closing import Closing
from ..exceptions import PoolClosed
from ..io.sockets import resolve
from ..io.tls import CertTypes, TLSConfig, VerifyTypes, pool_tls
from ..lifecycle.rules import LearnerTable
from ..models import HeaderInput, Origin, Request, Timeout, TimeoutTypes, parse_url
from ..protocol.proxy import Proxy
from ..requestbody import FormTypes
from ..response import Response
from .pool import ConnectionPool, PoolStats

__all__ = ["PoolKey", "PoolManager"]

PoolKey = tuple[Origin, TLSConfig | None, Proxy | None]  # proxy: URL and credentials


class PoolManager(Closing):
    """Pools for many origins, keyed by (scheme, host, port, TLS settings, proxy).

    The proxy (its URL and credentials) is part of the key, so a direct connection is never
    lent to a proxied request nor the other way round, and a tunnel opened with one set of
    credentials never carries another's requests. http:// origins through an HTTP proxy
    share one pool per proxy (its connections go to the proxy, requests in absolute-form);
    https:// origins (and anything through SOCKS) get a pool per origin and proxy whose
    connections are tunnels.

    Args:
        num_pools: how many pools to keep; the least recently used is closed beyond that.
        maxsize, block, timeout, limits, watch_idle, http2, resolver: passed to each
            ConnectionPool (the resolver also answers coalescing's address check).
        verify, cert: TLS settings for https origins.
        coalesce: let a request for one https host ride another host's HTTP/2 connection
            when that connection's verified certificate covers it and the host resolves to the
            same address (RFC 9113 §9.1.1; ``lifecycle.coalescing``). A 421 answer sends the
            request again on the host's own connection and stops coalescing that host.
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
        coalesce: bool = False,
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
        # One idle-timeout learner per origin, whatever the TLS settings: one server.
        self.learners = LearnerTable(max(256, 4 * self.num_pools))
        self._last: tuple[Origin, TLSConfig | None, Proxy | None, ConnectionPool] | None = None
        self.coalesce = coalesce
        self._coalesced: dict[tuple[Origin, TLSConfig | None], ConnectionPool] = {}
        self._misdirected: set[Origin] = set()  # answered 421 once: never coalesced again

    def pool_for(
        self, origin: Origin, tls: TLSConfig | None = None, proxy: Proxy | None = None
    ) -> ConnectionPool:
        """The pool for ``origin`` through ``proxy`` (created if needed), most recently used
        from now on."""
        tls = pool_tls(origin, tls, self.tls, proxy)
        last = self._last
        if last is not None and last[0] is origin and last[1] is tls and last[2] is proxy:
            return last[3]  # the same origin as the previous request: no lookup, no reordering
        asked = origin
        if proxy is not None and not proxy.tunnels(origin):
            origin = proxy.origin  # forwarded: one pool per proxy carries every http origin
        key: PoolKey = (origin, tls, proxy)
        evicted: ConnectionPool | None = None
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                self._last = (asked, tls, proxy, pool)
                return pool
            if self._closed:
                raise PoolClosed("the pool manager is closed")
            pool = ConnectionPool(
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
                self._last = None
            self._last = (asked, tls, proxy, pool)
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
        proxy: Proxy | None = None,
    ) -> Any:
        """Send a built request through the pool for its origin (and ``proxy``, if any)."""
        origin = request.url.origin
        while True:
            try:
                pool = (proxy is None and self._coalescing_pool(origin, tls)) or self.pool_for(
                    origin, tls, proxy
                )
                response: Response = pool.send(request, timeout, stream)
            except PoolClosed:
                if self._closed:
                    raise
                # Another thread evicted that pool between lookup and send (nothing was sent):
                # an open manager never lets that surface. Each turn makes a new pool, which
                # only a busier thread evicting it again can close: the loop ends with them.
                continue
            if not (response.status == 421 and response.connection_info.coalesced):
                return response
            # Misdirected (RFC 9110 §15.5.20): the server did not process it on that
            # connection. The host gets its own connection, now and from now on.
            self._misdirected.add(origin)
            self._coalesced.pop((origin, tls if origin.scheme == "https" else None), None)
            if request.body is not None and not isinstance(request.body, bytes):
                return response  # a one-shot body cannot be sent again: the caller sees 421
            response.close()

    def _coalescing_pool(self, origin: Origin, tls: TLSConfig | None) -> ConnectionPool | None:
        """Another host's pool whose HTTP/2 connection may carry ``origin``'s requests."""
        if not self.coalesce or origin.scheme != "https" or origin in self._misdirected:
            return None
        tls = tls or self.tls
        known = self._coalesced.get((origin, tls))
        if known is not None and not known.closed:
            return known
        with self._lock:
            if (origin, tls, None) in self._pools:
                return None  # it has a connection of its own
            candidates = [
                pool
                for (o, t, p), pool in self._pools.items()
                if o.scheme == "https"
                and o.port == origin.port
                and t == tls
                and o != origin
                and p is None
            ]
        if not candidates:
            return None
        resolved = resolve(origin.host, origin.port, self._pool_kwargs.get("resolver"))
        for pool in candidates:
            if pool.can_carry(origin.host, resolved):
                self._coalesced[(origin, tls)] = pool
                return pool
        return None

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
