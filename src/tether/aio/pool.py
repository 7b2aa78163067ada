"""A pool of persistent connections to one origin: the asyncio body around `PoolState`.

The decisions are `lifecycle.poolstate.PoolState`'s, the same object the threaded pool drives;
this module waits and does the I/O. It needs no lock: every call into the brain is synchronous
and no ``await`` sits inside one, so one task's transition never interleaves with another's.
A waiting order is woken by its future's ``set_result``, called from inside the brain's
``finish`` or ``dialed`` by whichever task freed or opened a connection.

Cancellation safety follows from that shape: a task can be cancelled only at an ``await``
(dial, TLS, pool wait, write, head, body, drain), never inside a transition, and at each one
the body gives back what it held: an unfilled order is cancelled, a filled one given back
(``PoolState.give_back``), a dial reported failed; an interrupted exchange ends through
``abandon`` (HTTP/1.1: closed unless its response was complete; HTTP/2: the stream reset).
The retry loop is the sync pool's (``Exchange.may_retry``, ``MAX_UNPROCESSED_RETRIES``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any

from ..exceptions import (
    PoolClosed,
    PoolTimeout,
    RemoteProtocolError,
    RequestError,
    StreamClosed,
    TimeoutException,
    TransportError,
)
from ..io.resolver import Resolver
from ..io.tls import CertTypes, TLSConfig, VerifyTypes, proxy_tls
from ..lifecycle.exchange import Attempts, Exchange
from ..lifecycle.poolstate import Action, Order, PoolFacts, PoolState, PoolStats
from ..lifecycle.route import Route
from ..lifecycle.rules import CloseReason, IdleTimeoutLearner, Limits
from ..lifecycle.trace import (
    ConnectionClosed,
    ConnectStart,
    ResponseDone,
    Tracer,
    connected,
    exchanged,
    reset,
)
from ..lifecycle.tracelog import log_tracer
from ..models import (
    DEFAULT_PORTS,
    URL,
    Deadline,
    HeaderInput,
    Headers,
    Origin,
    Request,
    Timeout,
    TimeoutTypes,
)
from ..protocol.proxy import Proxy
from ..requestbody import PoolRequests
from ..response import AsyncResponse, ConnectionInfo
from .connect import Connection, HTTP2Mode, open_connection
from .http2 import AsyncHTTP2Connection
from .http11 import AsyncHTTP11Connection

__all__ = ["AsyncConnectionPool", "PoolStats"]

Doomed = list[tuple[Connection, CloseReason]]
# How long aclose() waits for closed sockets to be released by the loop (TLS close_notify).
_CLOSE_WAIT = 1.0


def _fill(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class AsyncConnectionPool(PoolFacts):
    """Persistent connections to one origin, for asyncio (see `ConnectionPool` for the
    arguments: the same, and the same meaning). Use ``async with`` or ``await aclose()``.

    Many tasks may share one pool; an HTTP/2 connection carries the requests of all of them
    at once. All of it must be used from one event loop.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        scheme: str = "http",
        *,
        maxsize: int = 1,
        block: bool = False,
        timeout: TimeoutTypes = Timeout(),
        verify: VerifyTypes = True,
        cert: CertTypes = None,
        http2: HTTP2Mode = False,
        limits: Limits = Limits(),
        headers: HeaderInput = None,
        clock: Callable[[], float] = time.monotonic,
        trace: Tracer | None = None,
        resolver: Resolver | None = None,
        idle_learner: IdleTimeoutLearner | None = None,
        proxy: Proxy | str | None = None,
    ) -> None:
        self._resolver = resolver
        scheme = scheme.lower()
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        url = URL(f"{scheme}://{host}:{port or DEFAULT_PORTS.get(scheme, 0)}/")
        self.origin: Origin = url.origin
        self.proxy = Proxy.parse(proxy) if proxy is not None else None
        self._route = Route.of(self.origin, self.proxy)
        if self._route.forward:
            http2 = False  # a forward proxy speaks HTTP/1.1 to us
        self._tls = TLSConfig(verify, cert, bool(http2)) if scheme == "https" else None
        self._proxy_tls = proxy_tls(self.proxy, verify)  # an https proxy: its TLS
        self._http2: HTTP2Mode = (
            http2 if (scheme == "https" or http2 == "prior-knowledge") else False
        )
        self.timeout = Timeout.of(timeout)
        self.headers = Headers(headers)
        self._tracer = log_tracer(trace)
        self._state: PoolState[Connection] = PoolState(
            maxsize,
            block,
            limits,
            bool(self._http2),
            self._tracer,
            str(self.origin),
            idle_learner,
            self._route.tunnel,
        )
        self._clock = clock
        self._requests = PoolRequests(self.origin, self.headers)
        self._orphans: list[Exchange] = []  # ended by a finalizer, not yet accounted
        self._closing: list[Connection] = []  # closed, their sockets not yet released

    # -- settings and counters ----------------------------------------------------------------

    def stats(self) -> PoolStats:
        """A snapshot of the counters."""
        self._close_all(self._settle_orphans())
        return self._state.stats()

    # -- requests -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        fields: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: HeaderInput = None,
        body: bytes | str | Iterable[bytes] | AsyncIterable[bytes] | None = None,
        json: Any = None,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
    ) -> AsyncResponse:
        """Send a request for ``path`` on this pool's origin (urllib3's signature)."""
        request = self._requests.build(method, path, fields, headers, body, json)
        return await self.send(request, timeout, stream)

    async def send(
        self, request: Request, timeout: TimeoutTypes | None = None, stream: bool = False
    ) -> AsyncResponse:
        """Send a built request on a pooled connection and return its response."""
        request.framing()  # refuse a request-smuggling shape before taking a connection
        t = self.timeout if timeout is None else Timeout.of(timeout)
        attempts = Attempts(self._state.maxsize)
        if t.total is None:
            return await self._send(request, t, stream, attempts, None)
        deadline = t.deadline(self._clock())
        assert deadline is not None
        try:
            # The loop cancels whatever wait is under way when the deadline passes; every
            # await below already gives back what it held when cancelled.
            async with asyncio.timeout(deadline.left(self._clock())):
                return await self._send(request, t, stream, attempts, deadline)
        except TimeoutError:
            raise deadline.error(request, None, attempts.reached) from None
        except TimeoutException as exc:
            total = deadline.explain(exc, request, self._clock())
            if total is exc:
                raise
            raise total from exc

    async def _send(
        self,
        request: Request,
        t: Timeout,
        stream: bool,
        attempts: Attempts,
        deadline: Deadline | None,
    ) -> AsyncResponse:
        started = self._clock()
        while True:
            try:
                # The usual case is decided without an await: an idle connection, alive.
                order = self._take(attempts.fresh, request.replayable)
                exchange = order.exchange
                if exchange is None or (order.needs_check and not _fit(exchange.conn)):
                    exchange = await self._checkout(t, attempts.fresh, order, request.replayable)
            except RequestError as exc:  # dial or pool wait failed: this attempt sent nothing
                exc.request = request
                if attempts.failed is not None:  # but an earlier attempt may have reached it
                    exc.may_have_reached_server |= attempts.reached
                    raise exc from attempts.failed
                raise
            conn: Connection = exchange.conn
            try:
                head = await conn.send_request(exchange, request, t)
                break
            except TransportError as exc:
                self._failed(exchange, exc)
                if not attempts.retry(exchange, request.replayable, exc):
                    raise
                self._retried(exchange, request, exc)
            except BaseException:  # cancelled (or worse): leave nothing in an unknown state
                attempts.reached |= exchange.wrote_any
                self._abandon(exchange)
                raise
        if self._tracer is not None:
            exchanged(self._tracer, self._state.origin, exchange, request, head)
        attempts.reached = True
        info = ConnectionInfo(exchange, attempts.retries, head.http_version)
        info.started = started
        self._route.describe(info)
        elapsed = self._clock() - started
        if stream:
            source = _AsyncPooledBody(self, exchange, request, t, deadline)
            return AsyncResponse(head, request, info, elapsed, source=source)
        try:
            content = await conn.read_all(exchange, request, t)
        except TransportError as exc:
            self._failed(exchange, exc)
            raise
        except BaseException:
            self._abandon(exchange)
            raise
        trailers = conn.trailers(exchange)
        if self._tracer is not None:
            self._done(exchange)
        self._finish(exchange)
        return AsyncResponse(head, request, info, elapsed, content=content, trailers=trailers)

    def _retried(self, exchange: Exchange, request: Request, exc: TransportError) -> None:
        self._state.retried(exchange, self._clock(), request.method, exc)

    # -- the body around PoolState's decisions ------------------------------------------------

    async def _checkout(
        self, t: Timeout, fresh: bool, order: Order | None, replayable: bool = False
    ) -> Exchange:
        """A connection for this exchange, starting from ``order`` if taken already: a wait
        for a free one, a dial, the liveness check (and for HTTP/2 a PING) on an idle one."""
        while True:
            if order is None:
                order = self._take(fresh, replayable)
            if order.action is Action.WAIT:
                await self._wait(order, t)
            if order.dial:
                return await self._dial(order, t)
            exchange = order.exchange
            assert exchange is not None
            if not order.needs_check:
                return exchange
            conn: Connection = exchange.conn
            dead = conn.check_idle()  # synchronous: the loop has read what arrived
            if dead is None and isinstance(conn, AsyncHTTP2Connection) and conn.ping_due():
                try:
                    dead = await conn.ping()
                except BaseException:  # cancelled while waiting for the answer
                    self._abandon(exchange)
                    raise
            if dead is None:
                return exchange
            doomed: list[tuple[Connection, CloseReason]] = []
            self._state.dead_on_checkout(order, dead, self._clock(), doomed)
            self._close_all(doomed)
            order = None

    def _take(self, fresh: bool, replayable: bool = False) -> Order:
        """The brain's answer now: a connection, a dial, or WAIT (see ``_wait``)."""
        doomed: Doomed = self._settle_orphans() if self._orphans else []
        if self._state.closed:
            self._close_all(doomed)
            raise PoolClosed(f"the pool for {self.origin} is closed")
        order = self._state.checkout(self._clock(), fresh, doomed, None, replayable)
        if doomed:
            self._close_all(doomed)
        return order

    async def _wait(self, order: Order, t: Timeout) -> None:
        """Wait (up to ``t.pool``) until the brain fills ``order`` with a stream or a dial."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        order.wake = lambda: _fill(fut)
        try:
            async with asyncio.timeout(t.pool):
                await fut
        except TimeoutError:
            if self._state.cancel(order):
                raise PoolTimeout(
                    f"no connection to {self.origin} became free within {t.pool}s "
                    f"(maxsize={self.maxsize}, block={self.block})"
                ) from None
        except BaseException:  # cancelled while waiting: leave nothing reserved
            if not self._state.cancel(order):
                doomed: Doomed = []
                self._state.give_back(order, self._clock(), doomed)
                self._close_all(doomed)
            raise
        if order.action is Action.WAIT:  # woken without a connection: the pool closed
            raise PoolClosed(f"the pool for {self.origin} is closed")

    async def _dial(self, order: Order, t: Timeout) -> Exchange:
        tracer = self._tracer
        if tracer is not None:
            started = self._clock()
            tracer(ConnectStart(started, self._state.origin, 0))
        try:
            ctx = self._tls.context() if self._tls is not None else None
            route = self._route
            conn = await open_connection(
                self.origin,
                ctx,
                self._http2,
                t,
                self._clock,
                self._on_idle,
                self._on_conn_event,
                self._resolver,
                self.proxy,
                self._proxy_tls.context() if self._proxy_tls is not None else None,
            )
            if route.forward and isinstance(conn, AsyncHTTP11Connection):
                conn.proxy_head = route.head
            if tracer is not None:
                try:
                    connected(tracer, self._state.origin, conn, started)
                except BaseException:
                    conn.close(CloseReason.ABANDONED)
                    raise
        except BaseException:
            doomed: Doomed = []
            self._state.dial_failed(order, self._clock(), doomed)
            self._close_all(doomed)
            raise
        doomed = []
        self._state.dialed(order, conn, self._clock(), doomed)
        self._close_all(doomed)
        assert order.exchange is not None
        return order.exchange

    def _finish(self, exchange: Exchange) -> None:
        """End an exchange whose response was read (or closed early and kept)."""
        doomed: Doomed = []
        self._state.finish(exchange, self._clock(), doomed)
        if self._orphans:
            doomed += self._settle_orphans()
        if doomed:
            self._close_all(doomed)

    def _failed(self, exchange: Exchange, exc: TransportError) -> None:
        """End a failed exchange: an HTTP/1.1 connection is then in an unknown state and is
        closed; an HTTP/2 one survives a stream's failure (its driver stopped it otherwise)."""
        conn: Connection = exchange.conn
        if not conn.multiplexed:
            conn.accepting = False
            conn.stop_reason = exchange.close_reason(_reason_for(exc))
        elif self._tracer is not None:
            self._reset(exchange, type(exc).__name__)
        self._finish(exchange)

    def _abandon(self, exchange: Exchange) -> None:
        """End an exchange interrupted by something that was not the network (cancellation)."""
        exchange.conn.abandon(exchange)
        if self._tracer is not None and exchange.stream_id:
            self._reset(exchange, "abandoned by the caller")
        self._finish(exchange)

    def _done(self, exchange: Exchange) -> None:
        assert self._tracer is not None
        self._tracer(
            ResponseDone(self._clock(), self._state.origin, exchange.conn.id, exchange.stream_id)
        )

    def _reset(self, exchange: Exchange, why: str) -> None:
        assert self._tracer is not None
        reset(self._tracer, self._state.origin, exchange, why, self._clock())

    def _stop(self, conn: Connection, reason: CloseReason) -> None:
        doomed: Doomed = []
        self._state.stop(conn, reason, self._clock(), doomed)
        self._close_all(doomed)

    def _on_conn_event(self, conn: Connection, stopped: CloseReason | None) -> None:
        """An HTTP/2 connection's capacity changed (SETTINGS) or it stopped (GOAWAY, error)."""
        doomed: Doomed = []
        if stopped is not None:
            self._state.stop(conn, stopped, self._clock(), doomed)
        else:
            self._state.changed(conn, self._clock(), doomed)
        self._close_all(doomed)

    def _on_idle(self, conn: Connection, reason: CloseReason) -> None:
        """The loop saw an idle HTTP/1.1 connection closed by the server (or spoken to)."""
        if not self._state.claim_idle(conn):
            return  # busy or not pooled yet: its exchange sees it
        self._close_socket(conn, self._state.claimed_dead(conn, reason, self._clock()))

    def _settle_orphans(self) -> Doomed:
        doomed: Doomed = []
        while self._orphans:
            self._state.finish(self._orphans.pop(), self._clock(), doomed)
        return doomed

    def _close_all(self, doomed: Doomed) -> None:
        for conn, reason in doomed:
            self._close_socket(conn, reason)

    def _close_socket(self, conn: Connection, reason: CloseReason) -> None:
        conn.close(reason)
        if self._tracer is not None:
            origin, now = self._state.origin, self._clock()
            self._tracer(ConnectionClosed(now, origin, conn.id, reason, conn.requests))
        if not conn.released:
            self._closing.append(conn)
        if len(self._closing) > 64:
            self._closing = [c for c in self._closing if not c.released]

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close idle connections now and busy ones when their response ends; refuse new work.

        The loop releases the sockets shortly after; ``aclose`` also waits for that.
        """
        idle = self._state.close()
        waiting = list(self._state.waiters)
        self._state.waiters.clear()
        for order in waiting:
            if order.wake is not None:
                order.wake()
        for conn in idle:
            self._close_socket(conn, CloseReason.POOL_CLOSED)

    async def aclose(self) -> None:
        """``close()``, then wait (briefly) until the loop has released the closed sockets."""
        self.close()
        pending = [c.lost for c in self._closing if not c.released]
        self._closing = []
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_WAIT)

    @property
    def closed(self) -> bool:
        return self._state.closed

    async def __aenter__(self) -> AsyncConnectionPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"<AsyncConnectionPool {self.origin} maxsize={self.maxsize} "
            f"opened={self._state.opened}>"
        )


def _fit(conn: Connection) -> bool:
    """May an idle connection take a request without an await: alive (``check_idle``, which
    reads nothing: the loop has), and for HTTP/2 not silent long enough to need a PING."""
    if conn.check_idle() is not None:
        return False
    return not conn.multiplexed or not conn.ping_due()  # type: ignore[union-attr]


def _reason_for(exc: TransportError) -> CloseReason:
    if isinstance(exc, TimeoutException):
        return CloseReason.TIMEOUT
    if isinstance(exc, RemoteProtocolError):
        return CloseReason.PROTOCOL_ERROR
    return CloseReason.NETWORK_ERROR


class _AsyncPooledBody:
    """A streamed response's hold on its exchange; ends it at the end of the body or on close."""

    __slots__ = ("_deadline", "_exchange", "_failed", "_loop", "_pool", "_request", "_timeout")

    def __init__(
        self,
        pool: AsyncConnectionPool,
        exchange: Exchange,
        request: Request,
        timeout: Timeout,
        deadline: Deadline | None,
    ) -> None:
        self._pool: AsyncConnectionPool | None = pool
        self._failed: BaseException | None = None
        self._exchange = exchange
        self._request = request
        self._timeout = timeout
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()

    async def read_chunk(self) -> bytes:
        pool = self._pool
        if pool is None:
            if self._failed is not None:  # never let a failed body look complete
                raise StreamClosed(f"the response body failed earlier: {self._failed}")
            return b""
        exchange = self._exchange
        try:
            if self._deadline is None:
                data: bytes = await exchange.conn.read_body(exchange, self._request, self._timeout)
            else:
                data = await self._read_within(self._deadline)
        except BaseException as exc:
            self._pool = None
            self._failed = exc
            if isinstance(exc, TransportError):
                pool._failed(exchange, exc)
            else:
                pool._abandon(exchange)
            raise
        if not data:
            self._pool = None
            if pool._tracer is not None:
                pool._done(exchange)
            pool._finish(exchange)
        return data

    async def _read_within(self, deadline: Deadline) -> bytes:
        """The next piece, before the request's total deadline (or TotalTimeout)."""
        exchange = self._exchange
        pool = self._pool
        assert pool is not None
        try:
            async with asyncio.timeout(deadline.left(pool._clock())):
                data: bytes = await exchange.conn.read_body(exchange, self._request, self._timeout)
                return data
        except TimeoutError:
            raise deadline.error(self._request, None, True) from None
        except TimeoutException as exc:
            total = deadline.explain(exc, self._request, pool._clock())
            if total is exc:
                raise
            raise total from exc

    def trailers(self) -> list[tuple[bytes, bytes]] | None:
        trailers: list[tuple[bytes, bytes]] | None = self._exchange.conn.trailers(self._exchange)
        return trailers

    async def close(self) -> None:
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        exchange = self._exchange
        conn: Connection = exchange.conn
        try:
            reason = await conn.close_early(exchange, self._request, self._timeout, pool._clock)
        except BaseException:  # cancelled while draining: the exchange still ends
            pool._abandon(exchange)
            raise
        if reason is not None:
            pool._stop(conn, reason)
        elif pool._tracer is not None:
            pool._done(exchange)
        pool._finish(exchange)

    def __del__(self) -> None:
        # Dropped unread: the connection's side is settled now (HTTP/1.1: closed; HTTP/2:
        # stream reset); the brain's bookkeeping runs as a loop callback, since a finalizer may
        # run in the middle of a brain call.
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        exchange = self._exchange
        conn: Connection = exchange.conn
        if conn.release_unread(exchange):
            pool._close_socket(conn, CloseReason.BODY_NOT_CONSUMED)
        pool._orphans.append(exchange)
        try:
            self._loop.call_soon_threadsafe(pool.stats)  # settles the orphans, wakes waiters
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting
