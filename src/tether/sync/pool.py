"""A pool of persistent connections to one origin: the threaded body around `PoolState`.

`lifecycle.poolstate.PoolState` decides (which connection, when to dial, wait, keep or retire,
what is counted); this module holds a lock around those decisions, waits when an order is not
filled at once, and does the I/O: dialing, the liveness check, sending, closing. Closing and
dialing happen outside the lock. The same body drives HTTP/1.1 and HTTP/2 connections: both
offer ``send_request``, ``read_all``, ``read_body``, ``close_early``, ``abandon`` and
``check_idle``. A failed request is sent again when its ``Exchange`` says that is safe
(``Exchange.may_retry``; see docs/lifecycle.md).

The path of one request, top to bottom: ``request`` (urllib3's signature) builds a `Request`;
``send`` gets an exchange on a connection (``_checkout``), writes the request and reads the head
(``conn.send_request``), reads the body (or hands a ``_PooledBody`` to a streamed response) and
ends the exchange (``_finish``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..closing import Closing
from ..exceptions import (
    PoolClosed,
    PoolTimeout,
    RemoteProtocolError,
    RequestError,
    StreamClosed,
    TimeoutException,
    TransportError,
)
from ..io import forksafety
from ..io.proxy import connect_via
from ..io.resolver import Resolver
from ..io.sockets import connect
from ..io.tls import CertTypes, TLSConfig, VerifyTypes, proxy_tls
from ..io.watcher import Callback, watcher
from ..lifecycle.coalescing import may_coalesce
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
    AsyncBody,
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
from ..response import ConnectionInfo, Response
from .http2 import HTTP2Connection, HTTP2Mode, start_http2
from .http11 import HTTP11Connection

__all__ = ["ConnectionPool", "PoolStats"]

Connection = HTTP11Connection | HTTP2Connection


class ConnectionPool(PoolFacts, Closing):
    """Persistent connections to one origin (scheme, host, port, TLS settings).

    Args:
        maxsize: connections kept for reuse. With ``block=False`` more may be opened when all
            are busy; they are closed after their response (``POOL_FULL``). With ``block=True``
            at most ``maxsize`` exist and a request waits up to ``timeout.pool`` for one.
        timeout: default timeouts (a ``Timeout`` or seconds).
        verify, cert: TLS settings for https (see ``TLSConfig``).
        http2: ``True`` offers HTTP/2 by ALPN on https (the server chooses per connection);
            ``"prior-knowledge"`` speaks HTTP/2 from the first byte (h2c on plain http). One
            HTTP/2 connection carries many requests at once, from any number of threads.
        limits: idle timeout, max lifetime, max requests per connection.
        headers: headers sent with every request of ``request()``.
        watch_idle: close idle sockets as soon as the server closes them (no CLOSE_WAIT), and
            answer what an idle HTTP/2 server sends (PING, SETTINGS, GOAWAY) at once.
        clock: the monotonic clock the lifecycle rules read (injectable for tests).
        trace: called with each `lifecycle.trace` event of this pool's connections (on the
            thread doing the work; it must be quick and must not raise).
        resolver: ``resolver(host, port) -> IP address strings`` used instead of
            ``getaddrinfo`` (see ``io.resolver``); its addresses are raced (happy eyeballs).
        idle_learner: the origin's idle-timeout learner, to share what one pool learned from
            the server's closes with the origin's other pools (a pool manager passes its
            ``LearnerTable``'s); a pool learns on its own without one.
        proxy: reach the origin through this proxy (a ``Proxy`` or its URL). An https origin
            (or any origin through SOCKS) gets a tunnel per connection, kept and reused like
            any pooled connection; http through an HTTP proxy is forwarded: the connections go
            to the proxy and carry absolute-form requests (see ``PoolManager``: one such pool
            per proxy serves every http origin). An https:// proxy is reached over TLS, checked
            against its name with ``verify``.
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
        watch_idle: bool = True,
        clock: Callable[[], float] = time.monotonic,
        trace: Tracer | None = None,
        resolver: Resolver | None = None,
        idle_learner: IdleTimeoutLearner | None = None,
        proxy: Proxy | str | None = None,
    ) -> None:
        self.origin: Origin = Origin.of(scheme, host, port)  # "::1" and "[::1]" alike
        self._resolver = resolver
        scheme = self.origin.scheme
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
        self._watch = watch_idle and watcher.available
        self._clock = clock
        self._lock = threading.Lock()
        self._requests = PoolRequests(self.origin, self.headers)
        self._orphans: list[Exchange] = []  # ended by a finalizer, not yet accounted
        self._watch_callback: Callback = weakref.WeakMethod(self._on_peer_event)
        forksafety.register_pool(self)

    def forget_after_fork(self) -> None:
        """In a forked child: start empty (the connections already let go of their sockets).

        A new lock too: another thread of the parent may have held this one at the fork.
        """
        state = self._state
        state.learner.probing = False  # a probe in flight was the parent's
        self._state = PoolState(
            state.maxsize,
            state.block,
            state.limits,
            bool(self._http2),
            state.tracer,
            state.origin,
            state.learner,
            state.tunneled,
        )
        self._lock = threading.Lock()
        self._orphans = []

    # -- settings and counters ----------------------------------------------------------------

    def stats(self) -> PoolStats:
        """A snapshot of the counters."""
        with self._lock:
            doomed = self._settle_orphans()
            stats = self._state.stats()
        self._close_all(doomed)
        return stats

    def can_carry(self, host: str, resolved: list[str]) -> bool:
        """Could an HTTP/2 connection of this pool carry requests for ``host`` too?

        Connection coalescing (RFC 9113 §9.1.1, see ``lifecycle.coalescing``): an open,
        accepting HTTP/2 connection whose verified certificate covers ``host`` and which is
        connected to one of the addresses ``host`` resolves to.
        """
        with self._lock:
            conns = [*self._state.shared, *self._state.idle]
        return any(
            isinstance(c, HTTP2Connection)
            and c.accepting
            and may_coalesce(host, resolved, c.cert_names, c.remote_address[0])
            for c in conns
        )

    # -- requests -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        fields: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        headers: HeaderInput = None,
        body: bytes | str | Iterable[bytes] | None = None,
        json: Any = None,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
    ) -> Response:
        """Send a request for ``path`` on this pool's origin (urllib3's signature).

        ``fields`` go in the query string for GET, HEAD, DELETE and OPTIONS and form-encoded
        into the body otherwise; ``json`` is sent as a JSON body.
        """
        request = self._requests.build(method, path, fields, headers, body, json)
        return self.send(request, timeout, stream)

    def send(
        self, request: Request, timeout: TimeoutTypes | None = None, stream: bool = False
    ) -> Response:
        """Send a built request on a pooled connection and return its response."""
        request.framing()  # refuse a request-smuggling shape before taking a connection
        if isinstance(request.body, AsyncBody):
            iter(request.body)  # TypeError: only the asyncio pools send an async body
        t = self.timeout if timeout is None else Timeout.of(timeout)
        if t.total is None:
            return self._send(request, t, stream, None)
        deadline = t.deadline(self._clock())
        assert deadline is not None
        try:  # each phase's waits are cut to what is left of the deadline (Deadline.clip)
            return self._send(request, t, stream, deadline)
        except TimeoutException as exc:
            total = deadline.explain(exc, request, self._clock())
            if total is exc:
                raise
            raise total from exc

    def _send(
        self, request: Request, t: Timeout, stream: bool, deadline: Deadline | None
    ) -> Response:
        started = self._clock()
        attempts = Attempts(self._state.maxsize)
        while True:
            phase = t if deadline is None else deadline.clip(self._clock(), attempts.reached)
            try:
                exchange = self._checkout(phase, attempts.fresh, request.replayable)
            except RequestError as exc:  # dial or pool wait failed: this attempt sent nothing
                exc.request = request
                if attempts.failed is not None:  # but an earlier attempt may have reached it
                    exc.may_have_reached_server |= attempts.reached
                    raise exc from attempts.failed
                raise
            conn: Connection = exchange.conn
            try:
                if deadline is not None:
                    phase = deadline.clip(self._clock(), attempts.reached)
                head = conn.send_request(exchange, request, phase)
                break
            except TransportError as exc:
                self._failed(exchange, exc)
                if not attempts.retry(exchange, request.replayable, exc):
                    raise
                self._retried(exchange, request, exc)
            except BaseException:
                self._abandon(exchange)
                raise
        if self._tracer is not None:
            exchanged(self._tracer, self._state.origin, exchange, request, head)
        info = ConnectionInfo(exchange, attempts.retries, head.http_version)
        info.started = started
        if self.proxy is not None:
            self._route.describe(info)
        elif request.url.origin != self.origin:
            info.coalesced = True  # carried by another host's connection (RFC 9113 §9.1.1)
        elapsed = self._clock() - started
        if stream:
            source = _PooledBody(self, exchange, request, t, deadline)
            return Response(head, request, info, elapsed, source=source)
        try:
            if deadline is None:
                content = conn.read_all(exchange, request, t)
            else:  # piece by piece, so that a trickling body cannot outlive the deadline
                content = b"".join(iter(_reader_within(self, exchange, request, deadline), b""))
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
        return Response(head, request, info, elapsed, content=content, trailers=trailers)

    def _retried(self, exchange: Exchange, request: Request, exc: TransportError) -> None:
        with self._lock:
            self._state.retried(exchange, self._clock(), request.method, exc)

    # -- the body around PoolState's decisions ------------------------------------------------

    def _checkout(self, t: Timeout, fresh: bool, replayable: bool = False) -> Exchange:
        while True:
            order = self._order(t, fresh, replayable)
            exchange = order.exchange
            if order.dial:
                return self._dial(order, t)
            assert exchange is not None
            if not order.needs_check:
                return exchange
            conn: Connection = exchange.conn
            if conn.multiplexed and conn.watched:
                watcher.pause(conn)  # in use: what it reads now is its streams'
            try:
                dead = conn.check_idle()  # outside the lock: the connection is ours now
            except BaseException:
                self._abandon(exchange)
                raise
            if dead is None:
                return exchange
            doomed: list[tuple[Connection, CloseReason]] = []
            with self._lock:
                self._state.dead_on_checkout(order, dead, self._clock(), doomed)
            self._close_all(doomed)

    def _order(self, t: Timeout, fresh: bool, replayable: bool = False) -> Order:
        """An order filled now, or after waiting (up to ``t.pool``) for a stream or a dial."""
        doomed: list[tuple[Connection, CloseReason]] = []
        try:
            with self._lock:
                if self._orphans:
                    doomed += self._settle_orphans()
                if self._state.closed:
                    raise PoolClosed(f"the pool for {self.origin} is closed")
                order = self._state.checkout(self._clock(), fresh, doomed, None, replayable)
                if order.action is Action.WAIT:  # filled later, under this lock: wake us then
                    ready = threading.Event()
                    order.wake = ready.set
        finally:  # retired on the way, whatever happened next
            if doomed:
                self._close_all(doomed)
        if order.action is not Action.WAIT:
            return order
        try:
            filled = ready.wait(t.pool)
        except BaseException:  # interrupted while waiting: leave nothing reserved
            self._cancel(order, give_back=True)
            raise
        if not filled and self._cancel(order):
            raise PoolTimeout(
                f"no connection to {self.origin} became free within {t.pool}s "
                f"(maxsize={self.maxsize}, block={self.block})"
            )
        if order.action is Action.WAIT:  # woken without a connection: the pool closed
            raise PoolClosed(f"the pool for {self.origin} is closed")
        return order

    def _cancel(self, order: Order, give_back: bool = False) -> bool:
        """Stop waiting; False if the order was filled meanwhile (given back if asked)."""
        doomed: list[tuple[Connection, CloseReason]] = []
        with self._lock:
            if self._state.cancel(order):
                return True
            if give_back:
                self._state.give_back(order, self._clock(), doomed)
        self._close_all(doomed)
        return False

    def _dial(self, order: Order, t: Timeout) -> Exchange:
        tracer = self._tracer
        if tracer is not None:
            started = self._clock()
            tracer(ConnectStart(started, self._state.origin, 0))
        try:
            ctx = self._tls.context() if self._tls is not None else None
            route = self._route
            if self.proxy is not None:
                pctx = self._proxy_tls.context() if self._proxy_tls is not None else None
                sock, timings = connect_via(
                    self.origin, self.proxy, t.connect, ctx, self._resolver, pctx
                )
            else:
                sock, timings = connect(self.origin, t.connect, ctx, self._resolver)
            try:
                conn = self._connection(sock, timings, t)
                if route.forward and isinstance(conn, HTTP11Connection):
                    conn.proxy_head = route.head
                if tracer is not None:
                    connected(tracer, self._state.origin, conn, started)
            except BaseException:
                sock.close()
                raise
        except BaseException:
            doomed: list[tuple[Connection, CloseReason]] = []
            with self._lock:
                self._state.dial_failed(order, self._clock(), doomed)
            self._close_all(doomed)
            raise
        doomed = []
        with self._lock:
            self._state.dialed(order, conn, self._clock(), doomed)
        self._close_all(doomed)
        assert order.exchange is not None
        return order.exchange

    def _connection(self, sock: Any, timings: Any, t: Timeout) -> Connection:
        """The driver for a new socket: HTTP/2 if ALPN chose it or we know the server speaks it."""
        alpn = sock.selected_alpn_protocol() if self._tls is not None else None
        if alpn == "h2" or (self._http2 == "prior-knowledge" and alpn is None):
            return start_http2(self.origin, sock, timings, self._clock, t, self._on_conn_event)
        return HTTP11Connection(self.origin, sock, timings, self._clock)

    def _finish(self, exchange: Exchange) -> None:
        """End an exchange whose response was read (or closed early and kept)."""
        conn: Connection = exchange.conn
        if conn.hangup_seen and not conn.multiplexed:
            # Reported while busy (rare): see whether the server really left.
            conn.hangup_seen = False
            if conn.accepting and conn.check_idle() is not None:
                conn.accepting = False
                conn.stop_reason = CloseReason.SERVER_CLOSED
        doomed: list[tuple[Connection, CloseReason]] = []
        with self._lock:
            self._state.finish(exchange, self._clock(), doomed)
            if conn.accepting and conn.in_flight == 0 and self._watch:
                self._watch_idle(conn)
            if self._orphans:
                doomed += self._settle_orphans()
        if doomed:
            self._close_all(doomed)
        if conn.hangup_seen and not conn.multiplexed and conn.in_flight == 0:
            # Reported in the moment between the check above and the lock: check it now,
            # as the one-shot report is spent.
            self._on_peer_event(conn)

    def _failed(self, exchange: Exchange, exc: TransportError) -> None:
        """End an exchange that failed. An HTTP/1.1 connection is then in an unknown state and
        is closed; an HTTP/2 connection survives a stream's failure (its driver has already
        stopped it if the failure was the connection's)."""
        conn: Connection = exchange.conn
        if not conn.multiplexed:
            conn.accepting = False
            conn.stop_reason = exchange.close_reason(_reason_for(exc))
        elif self._tracer is not None:
            self._reset(exchange, type(exc).__name__)
        self._finish(exchange)

    def _abandon(self, exchange: Exchange) -> None:
        """End an exchange interrupted by an exception that was not the network's."""
        exchange.conn.abandon(exchange)  # HTTP/2: reset the stream; HTTP/1.1: state unknown
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
        doomed: list[tuple[Connection, CloseReason]] = []
        with self._lock:
            self._state.stop(conn, reason, self._clock(), doomed)
        self._close_all(doomed)

    def _on_conn_event(self, conn: HTTP2Connection, stopped: CloseReason | None) -> None:
        """An HTTP/2 connection's capacity changed (SETTINGS) or it stopped (GOAWAY, error)."""
        doomed: list[tuple[Connection, CloseReason]] = []
        with self._lock:
            if stopped is not None:
                self._state.stop(conn, stopped, self._clock(), doomed)
            else:
                self._state.changed(conn, self._clock(), doomed)
        self._close_all(doomed)

    def _on_peer_event(self, conn: Any) -> None:
        """The watcher reported a pooled socket readable or hung up (FIN or reset).

        The report is checked on the socket before anything is closed: epoll names sockets by
        descriptor number, and a report read just before a close can reach us after the number
        went to a newer connection. An idle HTTP/2 connection reads what arrived (PING,
        SETTINGS, GOAWAY) in ``check_idle``.
        """
        with self._lock:
            claimed = self._state.claim_idle(conn)
        if not claimed:
            return  # busy: checked when its exchange finishes
        dead = conn.check_idle()
        doomed: list[tuple[Connection, CloseReason]] = []
        with self._lock:
            if dead is not None:
                doomed.append((conn, self._state.claimed_dead(conn, dead, self._clock())))
            else:
                self._state.restore(conn, doomed)
                if conn.accepting and self._watch:
                    self._rearm(conn)  # the one-shot report is spent
        self._close_all(doomed)

    def _rearm(self, conn: Connection) -> None:
        if conn.multiplexed:
            self._watch_idle(conn)
        else:
            watcher.watch(conn, self._watch_callback)

    def _watch_idle(self, conn: Connection) -> None:
        # HTTP/1.1: registered once, for hang-ups only: a busy socket's data never wakes the
        # watcher, so it costs no system call per request. HTTP/2: an idle server has things
        # to say (PING, GOAWAY, a TLS close_notify before any FIN: hypercorn), so an idle
        # connection is watched for anything readable, armed when it goes idle and paused
        # when it is checked out (two epoll_ctl calls per idle period). Armed only if nothing
        # is readable yet: under load the kernel often holds unread records already, which
        # would wake the watcher on every request; those are read at the next checkout.
        if isinstance(conn, HTTP2Connection):
            if conn.quiet():
                conn.watched = True
                watcher.watch(conn, self._watch_callback, readable=True)
        elif not conn.watched:
            conn.watched = True
            watcher.watch(conn, self._watch_callback)

    def _settle_orphans(self) -> list[tuple[Connection, CloseReason]]:
        # Under the lock: end the exchanges of streamed responses dropped unread.
        doomed: list[tuple[Connection, CloseReason]] = []
        while self._orphans:
            exchange = self._orphans.pop()  # list.pop is atomic
            self._state.finish(exchange, self._clock(), doomed)
        return doomed

    def _close_all(self, doomed: list[tuple[Connection, CloseReason]]) -> None:
        for conn, reason in doomed:
            self._close_socket(conn, reason)

    def _close_socket(self, conn: Connection, reason: CloseReason) -> None:
        if conn.watched:
            watcher.forget(conn)
        conn.close(reason)
        if self._tracer is not None:
            origin, now = self._state.origin, self._clock()
            self._tracer(ConnectionClosed(now, origin, conn.id, reason, conn.requests))

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close idle connections now and busy ones when their response ends; refuse new work."""
        with self._lock:
            idle = self._state.close()
            waiting = list(self._state.waiters)
            self._state.waiters.clear()
        for order in waiting:
            if order.wake is not None:
                order.wake()
        for conn in idle:
            self._close_socket(conn, CloseReason.POOL_CLOSED)

    @property
    def closed(self) -> bool:
        return self._state.closed

    def __repr__(self) -> str:
        return f"<ConnectionPool {self.origin} maxsize={self.maxsize} opened={self._state.opened}>"


def _reader_within(
    pool: ConnectionPool, exchange: Exchange, request: Request, deadline: Deadline
) -> Callable[[], bytes]:
    """A function reading the next piece of the body with waits cut to the deadline."""

    def read() -> bytes:
        left = deadline.clip(pool._clock(), True)
        piece: bytes = exchange.conn.read_body(exchange, request, left)
        return piece

    return read


def _reason_for(exc: TransportError) -> CloseReason:
    if isinstance(exc, TimeoutException):
        return CloseReason.TIMEOUT
    if isinstance(exc, RemoteProtocolError):
        return CloseReason.PROTOCOL_ERROR
    return CloseReason.NETWORK_ERROR


class _PooledBody:
    """A streamed response's hold on its exchange; ends it at the end of the body or on close."""

    __slots__ = ("_deadline", "_exchange", "_failed", "_pool", "_request", "_timeout")

    def __init__(
        self,
        pool: ConnectionPool,
        exchange: Exchange,
        request: Request,
        timeout: Timeout,
        deadline: Deadline | None,
    ) -> None:
        self._pool: ConnectionPool | None = pool
        self._failed: BaseException | None = None
        self._exchange = exchange
        self._request = request
        self._timeout = timeout
        self._deadline = deadline

    def read_chunk(self) -> bytes:
        pool = self._pool
        if pool is None:
            if self._failed is not None:  # never let a failed body look complete
                raise StreamClosed(f"the response body failed earlier: {self._failed}")
            return b""
        exchange = self._exchange
        deadline = self._deadline
        try:
            if deadline is None:
                data: bytes = exchange.conn.read_body(exchange, self._request, self._timeout)
            else:
                data = self._read_within(deadline, pool)
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

    def _read_within(self, deadline: Deadline, pool: ConnectionPool) -> bytes:
        """The next piece, with its waits cut to the request's total deadline."""
        exchange = self._exchange
        try:
            data: bytes = exchange.conn.read_body(
                exchange, self._request, deadline.clip(pool._clock(), True)
            )
        except TimeoutException as exc:
            total = deadline.explain(exc, self._request, pool._clock())
            if total is exc:
                raise
            raise total from exc
        return data

    def trailers(self) -> list[tuple[bytes, bytes]] | None:
        trailers: list[tuple[bytes, bytes]] | None = self._exchange.conn.trailers(self._exchange)
        return trailers

    def close(self) -> None:
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        exchange = self._exchange
        conn: Connection = exchange.conn
        try:
            reason = conn.close_early(exchange, self._request, self._timeout, pool._clock)
        except BaseException:  # interrupted while draining: the exchange still ends
            pool._abandon(exchange)
            raise
        if reason is not None:
            pool._stop(conn, reason)
        elif pool._tracer is not None:
            pool._done(exchange)
        pool._finish(exchange)

    def __del__(self) -> None:
        # A streamed response dropped without close(): don't leak its socket or stream. The
        # garbage collector may run this on a thread that holds the pool's lock, so the
        # connection's own side is settled here (HTTP/1.1: socket closed; HTTP/2: stream
        # reset) and the pool's bookkeeping is left for the next locked call.
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        exchange = self._exchange
        conn: Connection = exchange.conn
        if conn.release_unread(exchange):
            pool._close_socket(conn, CloseReason.BODY_NOT_CONSUMED)
        pool._orphans.append(exchange)
        if pool._lock.acquire(blocking=False):  # not held here: settle (and wake waiters) now
            try:
                doomed = pool._settle_orphans()
            finally:
                pool._lock.release()
            pool._close_all(doomed)
