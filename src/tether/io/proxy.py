"""Opening a connection through a proxy, threaded: TCP (and TLS, for an https proxy) to the
proxy, the handshake, then TLS to the origin.

What the handshake says is decided in ``protocol.proxy`` (written once for both bodies); this
module only moves its bytes. On a TCP socket the reply is read with MSG_PEEK and then exactly
the bytes the handshake used are taken off the socket, so the origin's first TLS record is
never swallowed. Over TLS to an https proxy nothing can be peeked: the reply is read and must
end where the read ends (``Handshake.feed_read``); the origin's TLS then runs inside the
proxy's (``io.tlsbio``: TLS in TLS).
"""

from __future__ import annotations

import socket
import ssl
import time

from ..exceptions import ConnectError, ConnectTimeout, ProxyError
from ..models import Origin
from ..protocol.proxy import Handshake, Proxy, handshake_for, remote_dns
from .resolver import Resolver
from .sockets import DialInfo, connect, tls_over
from .tls import TLSConfig
from .tlsbio import TLSTransport

__all__ = ["connect_via", "socks_address"]

_PEEK = 4096


def connect_via(
    origin: Origin,
    proxy: Proxy,
    timeout: float | None,
    ssl_context: ssl.SSLContext | None,
    resolver: Resolver | None = None,
    proxy_context: ssl.SSLContext | None = None,
) -> tuple[socket.socket, DialInfo]:
    """A connection to ``origin`` through a tunnel (HTTP CONNECT or SOCKS) of ``proxy``, or
    to the proxy itself when it forwards ``origin``'s requests (http:// via an HTTP proxy).

    For https, TLS runs to the origin inside the tunnel and its certificate is checked
    against the origin's name. An https proxy gets TLS first (``proxy_context``, default
    certifi's CAs), its certificate checked against the proxy's name. Raises ProxyError (the
    proxy refused or broke the handshake), ConnectTimeout, ConnectError or TLSError; on
    failure nothing is left open.
    """
    began = time.monotonic()
    if not proxy.tunnels(origin):  # forwarded: the connection is to the proxy itself
        return _to_proxy(proxy, timeout, resolver, proxy_context)
    address = socks_address(proxy, origin)
    sock, timings = _to_proxy(proxy, timeout, resolver, proxy_context)
    try:
        started = time.monotonic()
        pump(sock, handshake_for(proxy, origin, address), proxy)
        timings.connect += time.monotonic() - started
    except BaseException:
        sock.close()
        raise
    if ssl_context is None:
        return sock, timings
    deadline = None if timeout is None else began + timeout  # one deadline, TLS included
    return tls_over(sock, timings, origin, ssl_context, deadline, began), timings


def _to_proxy(
    proxy: Proxy,
    timeout: float | None,
    resolver: Resolver | None,
    proxy_context: ssl.SSLContext | None,
) -> tuple[socket.socket, DialInfo]:
    """TCP to the proxy, and TLS for an https proxy (checked against the proxy's name)."""
    target, ctx = proxy.origin, None
    if proxy.tls:
        target = Origin("https", proxy.host, proxy.port)
        ctx = proxy_context or TLSConfig().context()
    try:
        sock, timings = connect(target, timeout, ctx, resolver)
    except ConnectTimeout:
        raise ConnectTimeout(
            f"connecting to proxy {proxy.url} timed out after {timeout}s"
        ) from None
    except ConnectError as exc:  # TLSError too: the type is kept
        raise type(exc)(f"proxy {proxy.url}: {exc}") from None
    timings.connect += timings.tls  # the proxy's TLS is part of reaching the proxy
    timings.tls = 0.0
    return sock, timings


def socks_address(proxy: Proxy, origin: Origin) -> str:
    """What the proxy is asked to connect to: the name (CONNECT, socks5h, socks4a), or an
    address resolved here (socks5, socks4: the proxy never sees the name)."""
    if proxy.forwards_http or remote_dns(proxy):
        return origin.host
    host = origin.host.strip("[]")
    family = socket.AF_INET if proxy.scheme == "socks4" else 0
    try:
        infos = socket.getaddrinfo(host, origin.port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectError(f"cannot resolve {origin.host!r} for {origin}: {exc}") from None
    return str(infos[0][4][0])


def pump(sock: socket.socket, handshake: Handshake, proxy: Proxy) -> None:
    """Run ``handshake`` on a blocking socket (its timeout bounds each step)."""
    tls = isinstance(sock, TLSTransport)
    try:
        while True:
            out = handshake.to_send()
            if out:
                sock.sendall(out)
            if handshake.done:
                return
            if tls:  # no peeking into TLS: read, and nothing may follow the reply
                data = sock.recv(_PEEK)
                if not data:
                    raise handshake.eof()
                handshake.feed_read(data)
                continue
            available = sock.recv(_PEEK, socket.MSG_PEEK)
            if not available:
                raise handshake.eof()
            used = handshake.feed(available)
            while used > 0:  # already in the kernel's buffer: returns at once
                used -= len(sock.recv(used))
    except ProxyError:
        raise
    except TimeoutError:
        raise ConnectTimeout(f"proxy {proxy.url} did not answer the handshake in time") from None
    except OSError as exc:
        raise ConnectError(f"proxy {proxy.url} failed during the handshake: {exc}") from None
