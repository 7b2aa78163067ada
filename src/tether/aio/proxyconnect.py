"""Opening a tunnel through a proxy on the event loop: the asyncio twin of ``io.proxy``.

The same sans-I/O handshakes (``protocol.proxy``) pumped on a non-blocking socket before
asyncio gets it: wait readable, peek, take exactly the handshake's bytes. The caller
(``transport.dial``) then runs TLS to the origin inside the tunnel as on a direct socket.
"""

from __future__ import annotations

import asyncio
import socket

from ..exceptions import ConnectError, ProxyError
from ..models import Origin
from ..protocol.proxy import Handshake, Proxy, handshake_for, remote_dns

__all__ = ["open_tunnel"]

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
    if proxy.scheme == "http" or remote_dns(proxy):
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
