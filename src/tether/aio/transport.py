"""What both asyncio drivers share: dialing with timings, and one connection's waits.

``dial`` is `io.sockets.connect` for the event loop: resolve, race the addresses (happy
eyeballs, `aio.dial`), any proxy handshake, TLS handshake, each timed into a `DialInfo`, each
failure a typed error naming the origin, and nothing left open when it fails or is cancelled.
``Waiter`` is how a coroutine sleeps until the protocol's callbacks (``data_received``,
``resume_writing``) have news: one future at a time, with the timeout as a loop timer rather
than ``asyncio.timeout`` (no task bookkeeping per read). The timer is lazy: one per
connection, armed for the earliest deadline and moved on when it fires early, so a read that
is answered in time (nearly all of them) costs no timer of its own.

``BufferedReads`` is how both drivers receive: the loop reads into one buffer per thread
(``get_buffer``/``buffer_updated``) and the driver's ``data_received`` gets a copy of exactly
what came. A plain ``asyncio.Protocol`` makes the loop allocate ``max_size`` (256 KiB) per
read and shrink it: an mmap, a page fault and an munmap per read, the largest cost of a small
response (bench/aio_profile.py shows it next to the hand-written floors).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TypeVar

from ..exceptions import ConnectError, ConnectTimeout, TLSError
from ..io.resolver import Resolver
from ..io.sockets import DialInfo
from ..models import AsyncBody, Origin
from ..protocol.proxy import Proxy
from .dial import plan_dial, race
from .proxyconnect import open_tunnel, via_tls_proxy

__all__ = ["BodyPieces", "BufferedReads", "Waiter", "dial", "tls_facts"]

P = TypeVar("P", bound=asyncio.Protocol)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


_NEVER = float("inf")
_SLACK = 0.001  # a timer may fire this early (uvloop's clock has millisecond steps)


# As much as a plain Protocol's read takes at once (asyncio's max_size), so big bodies come in
# as few pieces as before; pages are touched only as far as the reads fill them.
_READ_SIZE = 256 * 1024


class _ReadBuffer(threading.local):
    """One read buffer per thread: a loop runs in one thread, and a driver copies out what came
    before the loop's next read into it (``get_buffer`` and ``buffer_updated`` come in pairs,
    with nothing but the read between them)."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(_READ_SIZE))


_BUFFER = _ReadBuffer()


class BufferedReads(asyncio.BufferedProtocol):
    """A protocol that receives through ``data_received`` as a plain one does, without the
    plain protocol's allocation of a new 256 KiB buffer per read (see the module docstring)."""

    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUFFER.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_BUFFER.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError


class Waiter:
    """One coroutine's wait for a connection's news (reads), and for write buffer room."""

    __slots__ = ("_deadline", "_drain", "_failure", "_fut", "_loop", "_timer", "write_paused")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._fut: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._failure: OSError | None = None
        self._deadline = _NEVER  # of the wait in progress
        self._timer: asyncio.TimerHandle | None = None  # fires at or before that deadline
        self.write_paused = False

    def wake(self) -> None:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    def wait(self, seconds: float | None) -> asyncio.Future[None]:
        """A future done at ``wake`` (TimeoutError after ``seconds``): the caller awaits it.

        A plain function, not a coroutine: one frame less on every read. A future left behind
        by a cancelled caller is done (cancelled) and replaced by the next wait.
        """
        loop = self._loop
        fut = self._fut = loop.create_future()
        if seconds is None:
            self._deadline = _NEVER
        else:
            self._deadline = deadline = loop.time() + seconds
            timer = self._timer
            if timer is None or deadline < timer.when():
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._check)
        return fut

    def _check(self) -> None:
        """The timer fired: expire the wait in progress if its deadline passed, else move on
        to it (no wait, or one without a deadline: the timer stops until the next one)."""
        self._timer = None
        fut, deadline = self._fut, self._deadline
        if fut is None or fut.done() or deadline == _NEVER:
            return
        if self._loop.time() >= deadline - _SLACK:
            fut.set_exception(TimeoutError())
        else:
            self._timer = self._loop.call_at(deadline, self._check)

    def stop(self) -> None:
        """The connection is closed: no timer keeps it alive."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        fut = self._drain
        if fut is not None and not fut.done():
            fut.set_result(None)

    def fail(self, exc: OSError) -> None:
        """The connection is gone: a writer waiting for room gets ``exc``."""
        self.stop()
        self._failure = exc
        self.write_paused = False
        fut = self._drain
        if fut is not None and not fut.done():
            fut.set_exception(exc)
        self.wake()

    async def drained(self, seconds: float | None) -> None:
        """Until the transport's write buffer has room again."""
        if self._failure is not None:
            raise self._failure
        if not self.write_paused:
            return
        fut = self._loop.create_future()
        self._drain = fut
        timer = None if seconds is None else fut.get_loop().call_later(seconds, _expire, fut)
        try:
            await fut
        finally:
            self._drain = None
            if timer is not None:
                timer.cancel()


class BodyPieces:
    """A request body's pieces for both asyncio drivers: from a sync iterable, or awaited
    from an `AsyncBody`'s source, as they come (nothing is buffered)."""

    __slots__ = ("_aiter", "_iter")

    def __init__(self, body: bytes | Iterable[bytes]) -> None:
        self._iter: Iterator[bytes] | None = None
        self._aiter: AsyncIterator[bytes] | None = None
        if isinstance(body, bytes):
            self._iter = iter((body,))
        elif isinstance(body, AsyncBody):
            self._aiter = aiter(body.source)
        else:
            self._iter = iter(body)

    async def next(self) -> bytes | None:
        """The next piece; None at the end. TypeError for a piece that is not bytes."""
        if self._iter is not None:
            piece = next(self._iter, None)
        else:
            assert self._aiter is not None
            try:
                piece = await anext(self._aiter)
            except StopAsyncIteration:
                return None
        if piece is None or isinstance(piece, bytes):
            return piece
        if isinstance(piece, (bytearray, memoryview)):
            return bytes(piece)
        raise TypeError(f"a request body's pieces must be bytes, not {type(piece).__name__}")

    async def aclose(self) -> None:
        """Stop the source early (an async generator runs its cleanup now, in this task)."""
        close = getattr(self._aiter, "aclose", None)
        if close is not None:
            self._aiter = None
            await close()


def tls_facts(transport: asyncio.BaseTransport) -> tuple[str | None, str | None, str | None]:
    """(TLS version, cipher, ALPN protocol) of a transport; Nones for plain TCP."""
    obj: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if obj is None:
        return (None, None, None)
    cipher = obj.cipher()
    return (obj.version(), cipher[0] if cipher else None, obj.selected_alpn_protocol())


async def dial(
    factory: Callable[[], P],
    origin: Origin,
    timeout: float | None,
    ssl_context: ssl.SSLContext | None,
    resolver: Resolver | None = None,
    proxy: Proxy | None = None,
    proxy_context: ssl.SSLContext | None = None,
) -> tuple[P, DialInfo]:
    """Connect a new ``factory()`` protocol to ``origin`` (TCP, then TLS for https), through
    a tunnel of ``proxy`` (CONNECT or SOCKS) if one is given, or to the proxy itself when it
    forwards ``origin``'s requests. An https proxy gets TLS first (``proxy_context``), and
    the origin's TLS runs inside it (``proxyconnect.via_tls_proxy``).

    Resolution and the address race (happy eyeballs, ``aio.dial``), any proxy handshake and
    the TLS handshake share one deadline, ``timeout``. Raises ResolveError/ResolveTimeout,
    ConnectTimeout, ConnectError, ProxyError or TLSError; on failure or cancellation nothing
    is left open.
    """
    timings = DialInfo()
    began = time.monotonic()
    deadline = None if timeout is None else began + timeout
    target = origin if proxy is None else proxy.origin  # a proxy is dialled like an origin
    try:
        plan = await plan_dial(target, resolver, deadline, began)
    except (ConnectError, ConnectTimeout) as exc:
        raise _via(exc, proxy) from None
    resolved = time.monotonic()
    timings.dns = resolved - began
    try:
        sock = await race(plan, target)
    except (ConnectError, ConnectTimeout) as exc:
        raise _via(exc, proxy) from None
    finally:
        timings.attempts = plan.record()
    connected = time.monotonic()
    timings.connect = connected - resolved
    timings.rtt = connected - plan.winner_started()
    if proxy is not None and proxy.tls:
        left = None if deadline is None else max(0.0, deadline - connected)
        try:
            async with asyncio.timeout(left):
                protocol = await via_tls_proxy(
                    factory, sock, origin, proxy, ssl_context, proxy_context, timings
                )
        except TimeoutError:
            raise ConnectTimeout(
                f"proxy {proxy.url}: the route to {origin} (TLS to the proxy, CONNECT, TLS "
                f"inside) was not open within the connect timeout ({timeout}s)"
            ) from None
        _addresses_of(sock, timings)
        return protocol, timings
    if proxy is not None and proxy.tunnels(origin):
        left = None if deadline is None else max(0.0, deadline - connected)
        try:
            async with asyncio.timeout(left):
                await open_tunnel(sock, origin, proxy)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, TimeoutError):
                raise ConnectTimeout(
                    f"proxy {proxy.url} did not open a tunnel to {origin} within the connect "
                    f"timeout ({timeout}s)"
                ) from None
            raise
        timings.connect += time.monotonic() - connected
        connected = time.monotonic()
    # Only TLS waits on the network from here: plain TCP is handed over at once.
    left = None if deadline is None or ssl_context is None else max(0.0, deadline - connected)
    try:
        async with asyncio.timeout(left):
            loop = asyncio.get_running_loop()
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _, protocol = await loop.create_connection(
                    factory,
                    sock=sock,
                    ssl=ssl_context,
                    server_hostname=origin.host if ssl_context is not None else None,
                )
            except BaseException:
                sock.close()  # a no-op if the transport took it and closed it already
                raise
            timings.tls = time.monotonic() - connected if ssl_context is not None else 0.0
    except TimeoutError:
        raise ConnectTimeout(
            f"TLS handshake with {origin} timed out: the connect timeout is {timeout}s and "
            f"resolving and connecting took {connected - began:.3f}s of it"
        ) from None
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise TLSError(f"TLS handshake with {origin} failed: {exc}") from None
    except ConnectionError as exc:
        raise ConnectError(f"{origin} closed the connection during set-up: {exc}") from None
    _addresses_of(sock, timings)
    return protocol, timings


def _addresses_of(sock: socket.socket, timings: DialInfo) -> None:
    try:
        timings.local_address = _address(sock.getsockname())
        timings.remote_address = _address(sock.getpeername())
    except OSError:
        pass  # reset right after the handshake: the first request will say so


def _address(raw: object) -> tuple[str, int]:
    if isinstance(raw, tuple) and len(raw) >= 2:
        return (str(raw[0]), int(raw[1]))
    return (str(raw), 0)


def _via(exc: ConnectError | ConnectTimeout, proxy: Proxy | None) -> Exception:
    """A failure to reach the proxy names the proxy (its URL has no credentials)."""
    if proxy is None:
        return exc
    return type(exc)(f"proxy {proxy.url}: {exc}")
