"""The only code that opens sockets: TCP connect with timings, TLS handshake, readiness checks.

Everything above this module sees a connected (possibly TLS) socket and the timings of how it
came to be; nothing below it knows about HTTP.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConnectError, ConnectTimeout, TLSError
from ..models import Origin
from .tlsbio import TLSTransport, handshake_over

__all__ = ["DialInfo", "connect", "idle_socket_state", "resolve", "tls_over"]


@dataclass(slots=True)
class DialInfo:
    """How a connection came to be: seconds resolving, connecting and in the TLS handshake,
    and the two ends' addresses."""

    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    local_address: tuple[str, int] = ("", 0)
    remote_address: tuple[str, int] = ("", 0)


def connect(
    origin: Origin, timeout: float | None, ssl_context: ssl.SSLContext | None
) -> tuple[socket.socket, DialInfo]:
    """Open a TCP (and TLS, for https) connection to ``origin``.

    Tries each resolved address in turn. Raises ConnectTimeout, ConnectError or TLSError; on
    failure nothing is left open.
    """
    timings = DialInfo()
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectError(f"cannot resolve {origin.host!r} for {origin}: {exc}") from None
    resolved = time.monotonic()
    timings.dns = resolved - started
    sock = _connect_any(origin, infos, timeout)
    connected = time.monotonic()
    timings.connect = connected - resolved
    # Requests go out in one write; don't let Nagle hold the next one for an ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ssl_context is None:
        return _addresses(sock, timings, origin), timings
    return tls_over(sock, timings, origin, ssl_context, timeout), timings


def tls_over(
    sock: socket.socket,
    timings: DialInfo,
    origin: Origin,
    ssl_context: ssl.SSLContext,
    timeout: float | None,
) -> socket.socket:
    """TLS to ``origin`` over a connected socket (directly, or a proxy's tunnel), the
    certificate checked against the origin's name. Closes the socket on failure."""
    started = time.monotonic()
    # Memory BIOs, not wrap_socket: see tlsbio. The handshake closes the socket on failure.
    try:
        tls_sock = handshake_over(sock, ssl_context, origin.host, timeout)
    except (ssl.SSLError, ssl.CertificateError, ValueError) as exc:
        raise TLSError(f"TLS handshake with {origin} failed: {exc}") from None
    except TimeoutError:
        raise ConnectTimeout(f"TLS handshake with {origin} timed out after {timeout}s") from None
    except OSError as exc:
        raise ConnectError(f"TLS handshake with {origin} failed: {exc}") from None
    timings.tls = time.monotonic() - started
    return _addresses(tls_sock, timings, origin)


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (empty if it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def _addresses(sock: socket.socket, timings: DialInfo, origin: Origin) -> socket.socket:
    # A server that resets right after the handshake (a refused client certificate under
    # TLS 1.3) makes getpeername fail: that is a failed connect, and the socket is ours to close.
    try:
        timings.local_address = _address(sock.getsockname())
        timings.remote_address = _address(sock.getpeername())
    except OSError as exc:
        sock.close()
        raise ConnectError(f"{origin} closed the connection during set-up: {exc}") from None
    return sock


def _address(raw: object) -> tuple[str, int]:
    if isinstance(raw, tuple) and len(raw) >= 2:
        return (str(raw[0]), int(raw[1]))
    return (str(raw), 0)


def _connect_any(origin: Origin, infos: list[Any], timeout: float | None) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(f"connecting to {origin} timed out after {timeout}s") from None
        except OSError as exc:
            sock.close()
            last = exc
    raise ConnectError(f"cannot connect to {origin}: {last}") from None


def idle_socket_state(sock: socket.socket, poller: select.poll) -> str:
    """Is an idle keep-alive socket still usable? Returns "ok", "closed" or "data".

    An idle HTTP/1.1 connection has nothing to say: if its socket is readable, the server has
    closed it (EOF or reset) or sent bytes nobody asked for; either way it cannot be reused.
    For TLS, readable may also mean a TLS record with no application data (a session ticket),
    so we decrypt what is there: no plaintext (BlockingIOError once the socket is drained)
    means still usable. The connection polls first and calls this only when the socket
    is readable (or, for TLS, holds buffered bytes).
    """
    tls = isinstance(sock, TLSTransport)
    if not poller.poll(0) and not (isinstance(sock, TLSTransport) and sock.pending()):
        return "ok"
    # TLS cannot peek, so the byte is consumed: harmless, a connection that received
    # unsolicited data is not reused anyway.
    flags = socket.MSG_DONTWAIT if tls else socket.MSG_PEEK | socket.MSG_DONTWAIT
    try:
        data = sock.recv(1, flags)
    except BlockingIOError:
        return "ok"
    except OSError:
        return "closed"
    return "data" if data else "closed"
