"""A pool of persistent connections to one origin, and the path of a request through it.

How the pool decides, for each request (``_checkout``):

1. Take the most recently used idle connection (the warmest; the oldest ones age out at the
   bottom of the stack). If the lifecycle rules say it must be retired (the server's Keep-Alive
   timeout or max is near, our idle timeout, lifetime or request limit), close it and take the
   next one.
2. Check that its socket is still quiet, outside the lock: a readable idle socket means the
   server closed it. Close it, learn from how long it lasted, and take the next one.
3. With no idle connection left, dial a new one, unless ``block=True`` and ``maxsize``
   connections are already open: then wait for one to be released, up to the pool timeout.

After the response (``_release``): a connection whose response was complete and persistent goes
back on the idle stack if there is room; any other is closed with its reason. Closing and
dialing are I/O and happen outside the lock. If the request fails on a *reused* connection
before any response byte, it is sent again once on a new connection when ``should_retry``
allows it (see docs/lifecycle.md).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .connection import ConnectionInfo, HTTP11Connection
from .exceptions import (
    NetworkError,
    PoolClosed,
    PoolTimeout,
    RemoteProtocolError,
    RequestError,
    TimeoutException,
    TransportError,
)
from .lifecycle import CloseReason, IdleTimeoutLearner, Limits, should_retry
from .models import (
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
from .requestbody import FORM_METHODS, encode_body
from .response import Response
from .sockets import connect
from .tls import CertTypes, TLSConfig, VerifyTypes
from .watcher import Callback, watcher

__all__ = ["ConnectionPool", "PoolStats"]

# A response closed early is drained (and its connection kept) only if this little is left.
DRAIN_LIMIT = 64 * 1024
DRAIN_TIMEOUT = 0.1


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters.

    ``connections_opened`` counts every TCP connect (reconnects included), ``requests`` every
    request sent (retries included), ``reuses`` the requests that rode an existing connection,
    ``closes`` how many connections were closed for each ``CloseReason`` (by name).
    """

    open: int
    idle: int
    in_use: int
    connections_opened: int
    requests: int
    reuses: int
    retries: int
    closes: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: PoolStats) -> PoolStats:
        closes = Counter(self.closes)
        closes.update(other.closes)
        return PoolStats(
            self.open + other.open,
            self.idle + other.idle,
            self.in_use + other.in_use,
            self.connections_opened + other.connections_opened,
            self.requests + other.requests,
            self.reuses + other.reuses,
            self.retries + other.retries,
            dict(closes),
        )


class ConnectionPool:
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
        self.maxsize = max(1, maxsize)
        self.block = block
        self.timeout = Timeout.of(timeout)
        self.limits = limits
        self.headers = Headers(headers)
        self._watch = watch_idle and watcher.available
        self._clock = clock
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._idle: list[HTTP11Connection] = []  # a stack: most recently used last
        self._in_use: set[HTTP11Connection] = set()
        self._dialing = 0
        self._closed = False
        self._learner = IdleTimeoutLearner()
        self._opened = self._requests = self._reuses = self._retries = 0
        self._closes: Counter[CloseReason] = Counter()
        self._urls: dict[str, URL] = {}  # request() targets already parsed
        self._watch_callback: Callback = weakref.WeakMethod(self._on_peer_closed)

    # -- counters -----------------------------------------------------------------------------

    @property
    def num_connections(self) -> int:
        """TCP connections opened so far, reconnects included (urllib3's counter)."""
        return self._opened

    @property
    def num_requests(self) -> int:
        """Requests sent so far (urllib3's counter)."""
        return self._requests

    @property
    def learned_idle_timeout(self) -> float | None:
        """The idle timeout this pool learned from the server's closes (None: none seen)."""
        return self._learner.timeout

    def stats(self) -> PoolStats:
        """A snapshot of the counters."""
        with self._lock:
            return PoolStats(
                len(self._idle) + len(self._in_use),
                len(self._idle),
                len(self._in_use),
                self._opened,
                self._requests,
                self._reuses,
                self._retries,
                {reason.name: n for reason, n in self._closes.items()},
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
        merged = self.headers.merged(headers)
        if content_type is not None and "content-type" not in merged:
            merged = merged.merged({"Content-Type": content_type})
        return self.send(Request(method, url, headers=merged, body=content), timeout, stream)

    def send(
        self, request: Request, timeout: TimeoutTypes | None = None, stream: bool = False
    ) -> Response:
        """Send a built request on a pooled connection and return its response."""
        t = self.timeout if timeout is None else Timeout.of(timeout)
        started = self._clock()
        retries = 0
        while True:
            try:
                conn, idle_time = self._checkout(t, fresh=retries > 0)
            except RequestError as exc:  # dial or pool wait failed: nothing was sent
                exc.request = request
                raise
            try:
                head = conn.send_request(request, t)
                break
            except TransportError as exc:
                self._discard(conn, _reason_for(exc))
                retry = should_retry(
                    reused=conn.requests > 1,
                    response_started=conn.response_started,
                    wrote_any=conn.wrote_any,
                    replayable=request.replayable,
                ) and isinstance(exc, NetworkError)
                if retries or not retry:
                    raise
                retries += 1
                with self._lock:
                    self._retries += 1
        info = ConnectionInfo(conn, idle_time, retries, head.http_version)
        elapsed = self._clock() - started
        if stream:
            return Response(
                head, request, info, elapsed, source=_PooledBody(self, conn, request, t)
            )
        return Response(head, request, info, elapsed, content=self._read_all(conn, request, t))

    def _read_all(self, conn: HTTP11Connection, request: Request, t: Timeout) -> bytes:
        try:
            body = conn.read_all(request, t)
        except TransportError as exc:
            self._discard(conn, _reason_for(exc))
            raise
        self._release(conn)
        return body

    # -- the pool's decisions (see the module docstring) --------------------------------------

    def _checkout(self, t: Timeout, fresh: bool) -> tuple[HTTP11Connection, float]:
        while True:
            conn, doomed = self._take_idle(t, fresh)
            for old, reason in doomed:
                self._close(old, reason)
            if conn is None:
                return self._dial(t), 0.0
            dead = conn.check_idle()  # outside the lock: it is ours now
            if dead is None:
                return conn, self._clock() - conn.idle_since
            self._discard(conn, dead)

    def _take_idle(
        self, t: Timeout, fresh: bool
    ) -> tuple[HTTP11Connection | None, list[tuple[HTTP11Connection, CloseReason]]]:
        doomed: list[tuple[HTTP11Connection, CloseReason]] = []
        deadline: float | None = None
        with self._lock:
            while True:
                if self._closed:
                    raise PoolClosed(f"the pool for {self.origin} is closed")
                now = self._clock()
                while self._idle and not fresh:
                    conn = self._idle.pop()
                    if now >= conn.expires_at:
                        doomed.append((conn, conn.expiry_reason or CloseReason.IDLE_TIMEOUT))
                        continue
                    self._in_use.add(conn)
                    self._requests += 1
                    self._reuses += 1
                    return conn, doomed
                total = len(self._idle) + len(self._in_use) + self._dialing
                if not self.block or total < self.maxsize or fresh:
                    self._dialing += 1
                    self._requests += 1
                    return None, doomed
                if deadline is None and t.pool is not None:
                    deadline = now + t.pool
                remaining = None if deadline is None else deadline - now
                if remaining is not None and remaining <= 0:
                    raise PoolTimeout(
                        f"no connection to {self.origin} became free within {t.pool}s "
                        f"(maxsize={self.maxsize}, block=True)"
                    )
                self._freed.wait(remaining)

    def _dial(self, t: Timeout) -> HTTP11Connection:
        try:
            ctx = self._tls.context() if self._tls is not None else None
            sock, timings = connect(self.origin, t.connect, ctx)
            conn = HTTP11Connection(self.origin, sock, timings, self._clock)
        except BaseException:
            with self._lock:
                self._dialing -= 1
                self._freed.notify()
            raise
        with self._lock:
            self._dialing -= 1
            self._opened += 1
            self._in_use.add(conn)
        return conn

    def _release(self, conn: HTTP11Connection) -> None:
        """Put a connection whose response is finished back, or close it with its reason."""
        reason: CloseReason | None = None
        with self._lock:
            self._in_use.discard(conn)
            idle = self._idle
            if self._closed:
                reason = CloseReason.POOL_CLOSED
            elif not conn.reusable:
                reason = CloseReason.NOT_PERSISTENT
            elif conn.peer_closed:
                reason = CloseReason.SERVER_CLOSED
            elif len(idle) >= self.maxsize:
                reason = CloseReason.POOL_FULL
            else:
                now = self._clock()
                reason = conn.go_idle(now, self.limits, self._learner.timeout)
                if reason is None:
                    idle.append(conn)
                    if self._watch and not conn.watched:
                        conn.watched = True
                        watcher.watch(conn, self._watch_callback)
                    # The bottom of the stack is the oldest: retire it here if its time is up,
                    # so a connection never reused under light load does not linger.
                    if now >= idle[0].expires_at:
                        conn = idle.pop(0)
                        reason = conn.expiry_reason
            self._freed.notify()
        if reason is not None:
            self._close(conn, reason)

    def _discard(self, conn: HTTP11Connection, reason: CloseReason) -> None:
        """Close a checked-out connection that must not be reused."""
        if reason is CloseReason.SERVER_CLOSED_IDLE:
            self._learn(self._clock() - conn.idle_since)
        with self._lock:
            self._in_use.discard(conn)
            self._freed.notify()
        self._close(conn, reason)

    def _learn(self, idle_seconds: float) -> None:
        before = self._learner.timeout
        self._learner.observe_idle_close(idle_seconds)
        if self._learner.timeout != before:
            with self._lock:  # a new bound: every idle connection's deadline may move closer
                for conn in self._idle:
                    conn.go_idle(conn.idle_since, self.limits, self._learner.timeout)

    def _close(self, conn: HTTP11Connection, reason: CloseReason) -> None:
        if conn.closed:
            return
        if conn.watched:
            watcher.forget(conn)
        conn.close(reason)
        with self._lock:
            self._closes[reason] += 1

    def _on_peer_closed(self, conn: Any) -> None:
        """The watcher saw the server close a pooled socket (FIN or reset)."""
        with self._lock:
            if conn not in self._idle:
                # Busy: its reader will see the end; don't pool it again afterwards.
                conn.peer_closed = True
                return
            self._idle.remove(conn)
            self._in_use.add(conn)
        self._discard(conn, CloseReason.SERVER_CLOSED_IDLE)

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close idle connections now and busy ones when their response ends; refuse new work."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._freed.notify_all()
        for conn in idle:
            self._close(conn, CloseReason.POOL_CLOSED)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ConnectionPool {self.origin} maxsize={self.maxsize} opened={self._opened}>"


def _reason_for(exc: TransportError) -> CloseReason:
    if isinstance(exc, TimeoutException):
        return CloseReason.TIMEOUT
    if isinstance(exc, RemoteProtocolError):
        return CloseReason.PROTOCOL_ERROR
    return CloseReason.NETWORK_ERROR


class _PooledBody:
    """A streamed response's hold on its connection; gives it back at the end or on close."""

    __slots__ = ("_conn", "_pool", "_request", "_timeout")

    def __init__(
        self, pool: ConnectionPool, conn: HTTP11Connection, request: Request, timeout: Timeout
    ) -> None:
        self._pool: ConnectionPool | None = pool
        self._conn = conn
        self._request = request
        self._timeout = timeout

    def read_chunk(self) -> bytes:
        pool = self._pool
        if pool is None:
            return b""
        try:
            data = self._conn.read_body(self._request, self._timeout)
        except TransportError as exc:
            self._pool = None
            pool._discard(self._conn, _reason_for(exc))
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
        conn = self._conn
        if conn.worth_draining(DRAIN_LIMIT):
            # A little is left: read it (briefly) so the connection can be reused.
            budget = Timeout(read=min(DRAIN_TIMEOUT, self._timeout.read or DRAIN_TIMEOUT))
            drained = 0
            try:
                while drained <= DRAIN_LIMIT:
                    piece = conn.read_body(self._request, budget)
                    if not piece:
                        pool._release(conn)
                        return
                    drained += len(piece)
            except TransportError:
                pass
        pool._discard(conn, CloseReason.BODY_NOT_CONSUMED)

    def __del__(self) -> None:
        # A streamed response dropped without close(): don't leak its socket.
        pool = self._pool
        if pool is not None:
            self._pool = None
            pool._discard(self._conn, CloseReason.BODY_NOT_CONSUMED)
