"""What both asyncio drivers share: dialing with timings, and one connection's waits.

``dial`` is `io.sockets.connect` for the event loop: resolve, race the addresses (happy
eyeballs, `aio.dial`), TLS handshake, each timed into a `DialInfo`, each failure a typed error
naming the origin, and nothing left open when it fails or is cancelled. ``Waiter`` is how a
coroutine sleeps until the protocol's callbacks (``data_received``, ``resume_writing``) have
news: one future at a time, with the timeout as a loop timer rather than ``asyncio.timeout``
(no task bookkeeping per read).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

from ..exceptions import ConnectError, ConnectTimeout, TLSError
from ..io.resolver import Resolver
from ..io.sockets import DialInfo
from ..models import Origin
from ..protocol.proxy import Proxy
from .dial import plan_dial, race
from .proxyconnect import open_tunnel

__all__ = ["Waiter", "dial", "tls_facts"]

P = TypeVar("P", bound=asyncio.Protocol)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class Waiter:
    """One coroutine's wait for a connection's news (reads), and for write buffer room."""

    __slots__ = ("_drain", "_failure", "_fut", "write_paused")

    def __init__(self) -> None:
        self._fut: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._failure: OSError | None = None
        self.write_paused = False

    def wake(self) -> None:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def wait(self, seconds: float | None) -> None:
        """Until ``wake`` (TimeoutError after ``seconds``)."""
        fut = asyncio.get_running_loop().create_future()
        self._fut = fut
        timer = None if seconds is None else fut.get_loop().call_later(seconds, _expire, fut)
        try:
            await fut
        finally:
            self._fut = None
            if timer is not None:
                timer.cancel()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        fut = self._drain
        if fut is not None and not fut.done():
            fut.set_result(None)

    def fail(self, exc: OSError) -> None:
        """The connection is gone: a writer waiting for room gets ``exc``."""
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
        fut = asyncio.get_running_loop().create_future()
        self._drain = fut
        timer = None if seconds is None else fut.get_loop().call_later(seconds, _expire, fut)
        try:
            await fut
        finally:
            self._drain = None
            if timer is not None:
                timer.cancel()


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
) -> tuple[P, DialInfo]:
    """Connect a new ``factory()`` protocol to ``origin`` (TCP, then TLS for https), through
    a tunnel of ``proxy`` (CONNECT or SOCKS) if one is given, or to the proxy itself when it
    forwards ``origin``'s requests.

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
    try:
        timings.local_address = _address(sock.getsockname())
        timings.remote_address = _address(sock.getpeername())
    except OSError:
        pass  # reset right after the handshake: the first request will say so
    return protocol, timings


def _address(raw: object) -> tuple[str, int]:
    if isinstance(raw, tuple) and len(raw) >= 2:
        return (str(raw[0]), int(raw[1]))
    return (str(raw), 0)


def _via(exc: ConnectError | ConnectTimeout, proxy: Proxy | None) -> Exception:
    """A failure to reach the proxy names the proxy (its URL has no credentials)."""
    if proxy is None:
        return exc
    return type(exc)(f"proxy {proxy.url}: {exc}")
