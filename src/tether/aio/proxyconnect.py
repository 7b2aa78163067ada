"""Opening a tunnel through a proxy on the event loop: the asyncio twin of ``io.proxy``.

The same sans-I/O handshakes (``protocol.proxy``) pumped on a non-blocking socket before
asyncio gets it: wait readable, peek, take exactly the handshake's bytes. The caller
(``transport.dial``) then runs TLS to the origin inside the tunnel as on a direct socket.

An https proxy is TLS from the start, so asyncio has the socket first: TLS to the proxy by
``create_connection``, the CONNECT pumped by a small protocol (``_ConnectLeg``: nothing can
be peeked, so the reply must end where a read ends, ``Handshake.feed_read``), then the
origin's TLS inside the proxy's by ``loop.start_tls`` (TLS in TLS: asyncio since 3.11,
uvloop too). A forwarded connection (http:// through it) is the TLS connection itself.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

from ..exceptions import ConnectError, ProxyError, TLSError
from ..io.sockets import DialInfo
from ..io.tls import TLSConfig
from ..models import Origin
from ..protocol.proxy import Handshake, Proxy, handshake_for, remote_dns

__all__ = ["open_tunnel", "via_tls_proxy"]

P = TypeVar("P", bound=asyncio.Protocol)

_PEEK = 4096


async def open_tunnel(sock: socket.socket, origin: Origin, proxy: Proxy) -> None:
    """Ask ``proxy`` (connected on ``sock``) for a tunnel to ``origin``.

    Raises ProxyError or ConnectError; the caller's deadline bounds it, and the caller closes
    the socket on failure.
    """
    address = await _socks_address(proxy, origin)
    await _pump(sock, handshake_for(proxy, origin, address), proxy)


async def _socks_address(proxy: Proxy, origin: Origin) -> str:
    # See io.proxy.socks_address: the same rule, resolved on the loop's resolver.
    if proxy.forwards_http or remote_dns(proxy):
        return origin.host
    family = socket.AF_INET if proxy.scheme == "socks4" else 0
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            origin.host.strip("[]"), origin.port, family=family, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise ConnectError(f"cannot resolve {origin.host!r} for {origin}: {exc}") from None
    return str(infos[0][4][0])


async def _pump(sock: socket.socket, handshake: Handshake, proxy: Proxy) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            out = handshake.to_send()
            if out:
                await loop.sock_sendall(sock, out)
            if handshake.done:
                return
            available = await _peek(loop, sock)
            if not available:
                raise handshake.eof()
            used = handshake.feed(available)
            while used > 0:  # already in the kernel's buffer
                used -= len(sock.recv(used))
    except ProxyError:
        raise
    except OSError as exc:
        raise ConnectError(f"proxy {proxy.url} failed during the handshake: {exc}") from None


def _fill(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """What the socket holds, left in it (an empty result: the proxy closed)."""
    while True:
        try:
            return sock.recv(_PEEK, socket.MSG_PEEK)
        except BlockingIOError:
            pass
        ready: asyncio.Future[None] = loop.create_future()
        fd = sock.fileno()
        loop.add_reader(fd, _fill, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)


async def via_tls_proxy(
    factory: Callable[[], P],
    sock: socket.socket,
    origin: Origin,
    proxy: Proxy,
    ssl_context: ssl.SSLContext | None,
    proxy_context: ssl.SSLContext | None,
    timings: DialInfo,
) -> P:
    """``factory()`` connected to ``origin`` through the https proxy connected on ``sock``:
    TLS to the proxy (checked against its name), then either nothing more (forwarded), or a
    CONNECT tunnel and TLS to the origin inside it (checked against the origin's name).

    ``factory()``'s protocol must take ``data_received`` before ``connection_made`` (the
    dial's ``_Handoff`` does): ``start_tls`` may pass on what came with the handshake first.
    The caller's deadline bounds it; on failure or cancellation nothing is left open.
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    ctx = proxy_context or TLSConfig().context()
    tunnel = proxy.tunnels(origin)
    try:
        if not tunnel:
            _, forwarded = await loop.create_connection(
                factory, sock=sock, ssl=ctx, server_hostname=proxy.host
            )
            timings.connect += time.monotonic() - started
            return forwarded
        handshake = handshake_for(proxy, origin, origin.host)
        transport, leg = await loop.create_connection(
            lambda: _ConnectLeg(handshake), sock=sock, ssl=ctx, server_hostname=proxy.host
        )
    except BaseException as exc:
        sock.close()  # a no-op if the transport took it and closed it already
        if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
            raise TLSError(f"TLS handshake with proxy {proxy.url} failed: {exc}") from None
        if isinstance(exc, ConnectionError):
            raise ConnectError(f"proxy {proxy.url} closed the connection: {exc}") from None
        raise
    try:
        await leg.opened()
        tunnelled = time.monotonic()
        timings.connect += tunnelled - started
        assert ssl_context is not None  # an http(s) proxy tunnels https origins only
        protocol = factory()
        try:
            inner = await loop.start_tls(
                transport, protocol, ssl_context, server_hostname=origin.host
            )
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise TLSError(
                f"TLS handshake with {origin} (inside proxy {proxy.url}'s tunnel) failed: {exc}"
            ) from None
        except ConnectionError as exc:
            raise ConnectError(f"{origin} closed the tunnel during set-up: {exc}") from None
        if inner is None:  # the loop closed it meanwhile
            raise ConnectError(f"the tunnel to {origin} through {proxy.url} closed at once")
        protocol.connection_made(inner)
        timings.tls = time.monotonic() - tunnelled
        return protocol
    except BaseException:
        leg.forget()
        transport.abort()
        raise


class _ConnectLeg(asyncio.Protocol):
    """Pumps a CONNECT over the TLS connection to an https proxy, until its 2xx reply."""

    def __init__(self, handshake: Handshake) -> None:
        self.handshake = handshake
        self.transport: asyncio.Transport | None = None
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._late: ProxyError | None = None  # bytes after the reply, before start_tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(self.handshake.to_send())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._done.done():
            self._late = self.handshake.error(
                f"{len(data)} unexpected bytes after the reply, before the TLS handshake"
            )
            return
        try:
            self.handshake.feed_read(data)
        except ProxyError as exc:
            self._done.set_exception(exc)
            return
        out = self.handshake.to_send()
        if out and self.transport is not None:
            self.transport.write(out)
        if self.handshake.done:
            self._done.set_result(None)

    def eof_received(self) -> bool:
        self._fail()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail()

    def _fail(self) -> None:
        if not self._done.done():
            self._done.set_exception(self.handshake.eof())

    async def opened(self) -> None:
        """Until the proxy answered 2xx; ProxyError if it refused or broke the handshake."""
        await self._done
        if self._late is not None:
            raise self._late

    def forget(self) -> None:
        """The dial gave up: nothing waits for the reply any more."""
        if not self._done.done():
            self._done.cancel()
        elif not self._done.cancelled():
            self._done.exception()  # retrieved: no "never retrieved" complaint
