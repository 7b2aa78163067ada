"""A pool of persistent connections to one origin: the threaded body around `PoolState`.

`poolstate.PoolState` decides (which connection, when to dial, wait, keep or retire, what is
counted); this module holds a lock around those decisions, waits when the pool blocks, and does
the I/O: dialing, the liveness check, sending, closing. Closing and dialing happen outside the
lock. If a request fails on a *reused* connection before any response byte, it is sent again
once on a new connection when ``lifecycle.should_retry`` allows it (see docs/lifecycle.md).

The path of one request, top to bottom: ``request`` (urllib3's signature) builds a `Request`;
``send`` checks a connection out (``_checkout``), writes the request and reads the head
(``HTTP11Connection.send_request``), reads the body (or hands a ``_PooledBody`` to a streamed
response) and releases the connection (``_release``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..closing import Closing
from ..exceptions import (
    NetworkError,
    PoolClosed,
    PoolTimeout,
    RemoteProtocolError,
    RequestError,
    StreamClosed,
    TimeoutException,
    TransportError,
)
from ..io.sockets import connect
from ..io.tls import CertTypes, TLSConfig, VerifyTypes
from ..io.watcher import Callback, watcher
from ..lifecycle.poolstate import Action, PoolState, PoolStats
from ..lifecycle.rules import CloseReason, Limits, should_retry
from ..models import (
    DEFAULT_PORTS,
    URL,
    HeaderInput,
    Headers,
    Origin,
    Request,
    Timeout,
    TimeoutTypes,
    check_target,
)
from ..requestbody import FORM_METHODS, body_headers, encode_body
from ..response import ConnectionInfo, Response
from .http11 import HTTP11Connection

__all__ = ["ConnectionPool", "PoolStats"]

# A response closed early is drained (and its connection kept) only if this little is left
# and it arrives within this time, all of it: more is cheaper to close than to read.
DRAIN_LIMIT = 64 * 1024
DRAIN_TIMEOUT = 0.1


class ConnectionPool(Closing):
    """Persistent HTTP/1.1 connections to one origin (scheme, host, port, TLS settings).

    Args:
        maxsize: connections kept for reuse. With ``block=False`` more may be opened when all
            are busy; they are closed after their response (``POOL_FULL``). With ``block=True``
            at most ``maxsize`` exist and a request waits up to ``timeout.pool`` for one.
        timeout: default timeouts (a ``Timeout`` or seconds).
        verify, cert: TLS settings for https (see ``TLSConfig``).
        limits: idle timeout, max lifetime, max requests per connection.
        headers: headers sent with every request of ``request()``.
        watch_idle: close idle sockets as soon as the server closes them (no CLOSE_WAIT).
        clock: the monotonic clock the lifecycle rules read (injectable for tests).
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
        limits: Limits = Limits(),
        headers: HeaderInput = None,
        watch_idle: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        scheme = scheme.lower()
        url = URL(f"{scheme}://{host}:{port or DEFAULT_PORTS.get(scheme, 0)}/")
        self.origin: Origin = url.origin
        self._tls = TLSConfig(verify, cert) if scheme == "https" else None
        self.timeout = Timeout.of(timeout)
        self.headers = Headers(headers)
        self._state: PoolState[HTTP11Connection] = PoolState(maxsize, block, limits)
        self._watch = watch_idle and watcher.available
        self._clock = clock
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._urls: dict[str, URL] = {}  # request() targets already parsed
        self._orphans: list[HTTP11Connection] = []  # closed by a finalizer, not yet counted
        self._watch_callback: Callback = weakref.WeakMethod(self._on_peer_closed)

    # -- settings and counters ----------------------------------------------------------------

    @property
    def maxsize(self) -> int:
        return self._state.maxsize

    @property
    def block(self) -> bool:
        return self._state.block

    @property
    def limits(self) -> Limits:
        return self._state.limits

    @property
    def num_connections(self) -> int:
        """TCP connections opened so far, reconnects included (urllib3's counter)."""
        return self._state.opened

    @property
    def num_requests(self) -> int:
        """Requests sent so far, retries included (urllib3's counter)."""
        return self._state.requests

    @property
    def learned_idle_timeout(self) -> float | None:
        """The idle timeout this pool learned from the server's closes (None: none seen)."""
        return self._state.learner.timeout

    def stats(self) -> PoolStats:
        """A snapshot of the counters."""
        with self._lock:
            self._settle_orphans()
            return self._state.stats()

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
        url = self._urls.get(path)
        if url is None:
            url = URL.from_parts(self.origin, check_target(path))
            if len(self._urls) >= 256:
                self._urls.clear()
            self._urls[path] = url
        form = None
        if fields is not None:
            if method.upper() in FORM_METHODS:
                form = fields
            else:
                url = url.with_query(fields)
        content, content_type = encode_body(body, form, json)
        merged = body_headers(self.headers, headers, content_type)
        return self.send(Request(method, url, headers=merged, body=content), timeout, stream)

    def send(
        self, request: Request, timeout: TimeoutTypes | None = None, stream: bool = False
    ) -> Response:
        """Send a built request on a pooled connection and return its response."""
        t = self.timeout if timeout is None else Timeout.of(timeout)
        started = self._clock()
        retries = 0
        failed: TransportError | None = None  # the first attempt's error, when retrying
        while True:
            try:
                conn, idle_time = self._checkout(t, fresh=retries > 0)
            except RequestError as exc:  # dial or pool wait failed: this attempt sent nothing
                exc.request = request
                if failed is not None:  # but the first attempt may have reached the server
                    exc.may_have_reached_server |= failed.may_have_reached_server
                    raise exc from failed
                raise
            try:
                head = conn.send_request(request, t)
                break
            except TransportError as exc:
                self._discard(conn, _reason_for(exc))
                if retries or not self._may_retry(conn, request, exc):
                    raise
                retries += 1
                failed = exc
            except BaseException:
                self._discard(conn, CloseReason.ABANDONED)
                raise
        info = ConnectionInfo(conn, idle_time, retries, head.http_version)
        elapsed = self._clock() - started
        if stream:
            source = _PooledBody(self, conn, request, t)
            return Response(head, request, info, elapsed, source=source)
        try:
            content = conn.read_all(request, t)
        except TransportError as exc:
            self._discard(conn, _reason_for(exc))
            raise
        except BaseException:
            self._discard(conn, CloseReason.ABANDONED)
            raise
        self._release(conn)
        return Response(head, request, info, elapsed, content=content)

    def _may_retry(self, conn: HTTP11Connection, request: Request, exc: TransportError) -> bool:
        retry = isinstance(exc, NetworkError) and should_retry(
            reused=conn.requests > 1,
            response_started=conn.response_started,
            wrote_any=conn.wrote_any,
            replayable=request.replayable,
        )
        if retry:
            with self._lock:
                self._state.retries += 1
        return retry

    # -- the body around PoolState's decisions ------------------------------------------------

    def _checkout(self, t: Timeout, fresh: bool) -> tuple[HTTP11Connection, float]:
        deadline: float | None = None
        while True:
            doomed: list[tuple[HTTP11Connection, CloseReason]] = []
            try:
                with self._lock:
                    self._settle_orphans()
                    while True:
                        if self._state.closed:
                            raise PoolClosed(f"the pool for {self.origin} is closed")
                        now = self._clock()
                        action, conn = self._state.checkout(now, fresh, doomed)
                        if action is not Action.WAIT:
                            break
                        if t.pool is not None and deadline is None:
                            deadline = now + t.pool
                        if deadline is not None and now >= deadline:
                            break
                        self._freed.wait(None if deadline is None else deadline - now)
            finally:  # retired on the way, whatever happened next
                for old, reason in doomed:
                    self._close_socket(old, reason)
            if action is Action.WAIT:
                raise PoolTimeout(
                    f"no connection to {self.origin} became free within {t.pool}s "
                    f"(maxsize={self.maxsize}, block=True)"
                )
            if conn is None:
                return self._dial(t), 0.0
            try:
                dead = conn.check_idle()  # outside the lock: the connection is ours now
            except BaseException:
                self._discard(conn, CloseReason.ABANDONED)
                raise
            if dead is None:
                return conn, self._clock() - conn.idle_since
            with self._lock:
                reason = self._state.dead_on_checkout(conn, dead, self._clock())
                self._wake_one()
            self._close_socket(conn, reason)

    def _dial(self, t: Timeout) -> HTTP11Connection:
        try:
            ctx = self._tls.context() if self._tls is not None else None
            sock, timings = connect(self.origin, t.connect, ctx)
            try:
                conn = HTTP11Connection(self.origin, sock, timings, self._clock)
            except BaseException:
                sock.close()
                raise
        except BaseException:
            with self._lock:
                self._state.dial_failed()
                self._wake_one()
            raise
        with self._lock:
            self._state.dialed(conn)
        return conn

    def _release(self, conn: HTTP11Connection) -> None:
        """Give back a connection whose response ended: kept, or closed with its reason."""
        if conn.hangup_seen:  # reported while busy (rare): see whether the server really left
            conn.hangup_seen = False
            conn.peer_closed = conn.reusable and conn.check_idle() is not None
        with self._lock:
            to_close, reason = self._state.release(conn, self._clock())
            kept = to_close is not conn
            if kept and self._watch and not conn.watched:
                conn.watched = True  # kept: have its hang-up reported from now on
                watcher.watch(conn, self._watch_callback)
            self._wake_one()
        if to_close is not None and reason is not None:
            self._close_socket(to_close, reason)
        if kept and conn.hangup_seen:
            # Reported in the moment between the check above and the lock: check it now,
            # as the one-shot report is spent.
            self._on_peer_closed(conn)

    def _discard(self, conn: HTTP11Connection, reason: CloseReason) -> None:
        """Close a checked-out connection that must not be reused."""
        with self._lock:
            reason = self._state.discard(conn, reason, self._clock())
            self._wake_one()
        self._close_socket(conn, reason)

    def _on_peer_closed(self, conn: Any) -> None:
        """The watcher reported a hang-up on a pooled socket (FIN or reset).

        The report is checked on the socket before anything is closed: epoll names sockets by
        descriptor number, and a report read just before a close can reach us after the number
        went to a newer connection.
        """
        with self._lock:
            claimed = self._state.claim_idle(conn)
        if not claimed:
            return  # busy: checked when released
        dead = conn.check_idle()
        if dead is not None:
            self._discard(conn, dead)
            return
        with self._lock:
            kept = self._state.restore(conn)
            self._wake_one()
        if not kept:
            self._close_socket(conn, CloseReason.POOL_CLOSED)

    def _settle_orphans(self) -> None:
        # Under the lock: count the connections finalizers closed (list.pop is atomic).
        while self._orphans:
            conn = self._orphans.pop()
            self._state.discard(conn, CloseReason.BODY_NOT_CONSUMED, self._clock())
            self._wake_one()

    def _wake_one(self) -> None:
        # Only a blocking pool has waiters; Condition.notify costs a lock probe even with none.
        if self._state.block:
            self._freed.notify()

    def _close_socket(self, conn: HTTP11Connection, reason: CloseReason) -> None:
        if conn.watched:
            watcher.forget(conn)
        conn.close(reason)

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close idle connections now and busy ones when their response ends; refuse new work."""
        with self._lock:
            idle = self._state.close()
            self._freed.notify_all()
        for conn in idle:
            self._close_socket(conn, CloseReason.POOL_CLOSED)

    @property
    def closed(self) -> bool:
        return self._state.closed

    def __repr__(self) -> str:
        return f"<ConnectionPool {self.origin} maxsize={self.maxsize} opened={self._state.opened}>"


def _reason_for(exc: TransportError) -> CloseReason:
    if isinstance(exc, TimeoutException):
        return CloseReason.TIMEOUT
    if isinstance(exc, RemoteProtocolError):
        return CloseReason.PROTOCOL_ERROR
    return CloseReason.NETWORK_ERROR


class _PooledBody:
    """A streamed response's hold on its connection; gives it back at the end or on close."""

    __slots__ = ("_conn", "_failed", "_pool", "_request", "_timeout")

    def __init__(
        self, pool: ConnectionPool, conn: HTTP11Connection, request: Request, timeout: Timeout
    ) -> None:
        self._pool: ConnectionPool | None = pool
        self._failed: BaseException | None = None
        self._conn = conn
        self._request = request
        self._timeout = timeout

    def read_chunk(self) -> bytes:
        pool = self._pool
        if pool is None:
            if self._failed is not None:  # never let a failed body look complete
                raise StreamClosed(f"the response body failed earlier: {self._failed}")
            return b""
        try:
            data = self._conn.read_body(self._request, self._timeout)
        except BaseException as exc:
            self._pool = None
            self._failed = exc
            reason = _reason_for(exc) if isinstance(exc, TransportError) else CloseReason.ABANDONED
            pool._discard(self._conn, reason)
            raise
        if not data:
            self._pool = None
            pool._release(self._conn)
        return data

    def close(self) -> None:
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        if self._drain(pool._clock):
            pool._release(self._conn)
        else:
            pool._discard(self._conn, CloseReason.BODY_NOT_CONSUMED)

    def _drain(self, clock: Callable[[], float]) -> bool:
        """Read what is left if it is little and comes quickly: then the connection is kept."""
        conn = self._conn
        if not conn.worth_draining(DRAIN_LIMIT):
            return False
        deadline = clock() + min(DRAIN_TIMEOUT, self._timeout.read or DRAIN_TIMEOUT)
        drained = 0
        try:
            while drained <= DRAIN_LIMIT:
                remaining = deadline - clock()
                if remaining <= 0:
                    return False
                piece = conn.read_body(self._request, Timeout(read=remaining))
                if not piece:
                    return True
                drained += len(piece)
        except TransportError:
            pass
        return False

    def __del__(self) -> None:
        # A streamed response dropped without close(): don't leak its socket. The garbage
        # collector may run this on a thread that holds the pool's lock, so the socket is
        # closed here and the bookkeeping left for the pool's next checkout.
        pool = self._pool
        if pool is not None:
            self._pool = None
            pool._close_socket(self._conn, CloseReason.BODY_NOT_CONSUMED)
            pool._orphans.append(self._conn)
