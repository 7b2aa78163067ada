"""The only code that opens sockets: TCP connect with timings, TLS handshake, readiness checks.

Everything above this module sees a connected (possibly TLS) socket and the timings of how it
came to be; nothing below it knows about HTTP.
"""

from __future__ import annotations

import errno
import math
import os
import select
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConnectError, ConnectTimeout, TLSError
from ..lifecycle.dialplan import DialAttempt, DialPlan, Target, targets_for
from ..models import Origin
from .resolver import Resolver, is_ip_literal, resolve_within, system_resolver
from .tlsbio import TLSTransport, handshake_over

__all__ = [
    "DialInfo",
    "attempt_error",
    "connect",
    "idle_socket_state",
    "literal_target",
    "plan_dial",
    "resolve",
    "sockaddr",
    "start_attempt",
    "tls_over",
]


@dataclass(slots=True)
class DialInfo:
    """How a connection came to be: seconds resolving, connecting and in the TLS handshake,
    the two ends' addresses, and every connection attempt of the dial in order.

    ``connect`` is the whole race (a black-holed first address adds the attempt delay);
    ``rtt`` the winning attempt's own TCP handshake, a round-trip estimate."""

    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    local_address: tuple[str, int] = ("", 0)
    remote_address: tuple[str, int] = ("", 0)
    attempts: tuple[DialAttempt, ...] = ()
    rtt: float = 0.0


def connect(
    origin: Origin,
    timeout: float | None,
    ssl_context: ssl.SSLContext | None,
    resolver: Resolver | None = None,
) -> tuple[socket.socket, DialInfo]:
    """Open a TCP (and TLS, for https) connection to ``origin``.

    Resolves the host (``resolver``, default ``system_resolver``), then races its addresses
    (happy eyeballs, ``lifecycle.dialplan``); ``timeout`` is one deadline for all of it, the
    TLS handshake included. Raises ResolveError/ResolveTimeout, ConnectError, ConnectTimeout
    or TLSError; on failure nothing is left open.
    """
    timings = DialInfo()
    began = time.monotonic()
    deadline = None if timeout is None else began + timeout
    plan = plan_dial(origin, resolver, deadline, began)
    resolved = time.monotonic()
    timings.dns = resolved - began
    try:
        sock = _race(plan, origin)
    finally:
        timings.attempts = plan.record()
    connected = time.monotonic()
    timings.connect = connected - resolved
    timings.rtt = connected - plan.winner_started()
    try:
        sock.settimeout(timeout)  # blocking again, as the drivers expect
        # Requests go out in one write; don't let Nagle hold the next one for an ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    if ssl_context is None:
        return _addresses(sock, timings, origin), timings
    return tls_over(sock, timings, origin, ssl_context, deadline, began), timings


def tls_over(
    sock: socket.socket,
    timings: DialInfo,
    origin: Origin,
    ssl_context: ssl.SSLContext,
    deadline: float | None,
    began: float,
) -> socket.socket:
    """TLS to ``origin`` over a connected socket (directly, or a proxy's tunnel), the
    certificate checked against the origin's name, within what is left of the dial's
    ``deadline`` (the connect timeout, counted from ``began``). Closes the socket on failure."""
    started = time.monotonic()
    # Memory BIOs, not wrap_socket: see tlsbio. The handshake closes the socket on failure.
    left = None if deadline is None else max(0.0, deadline - started)
    try:
        tls_sock = handshake_over(sock, ssl_context, origin.host, left)
    except (ssl.SSLError, ssl.CertificateError, ValueError) as exc:
        raise TLSError(f"TLS handshake with {origin} failed: {exc}") from None
    except TimeoutError:
        timeout = None if deadline is None else deadline - began
        raise ConnectTimeout(
            f"TLS handshake with {origin} timed out: the connect timeout is {timeout}s and "
            f"resolving, connecting (and any proxy handshake) took {started - began:.3f}s of it"
        ) from None
    except OSError as exc:
        raise ConnectError(f"TLS handshake with {origin} failed: {exc}") from None
    timings.tls = time.monotonic() - started
    return _addresses(tls_sock, timings, origin)


def plan_dial(
    origin: Origin, resolver: Resolver | None, deadline: float | None, began: float
) -> DialPlan:
    """Resolve ``origin``'s host within ``deadline`` and plan the attempts (threaded body)."""
    host = origin.host.strip("[]")
    if is_ip_literal(host):
        return DialPlan([literal_target(host, origin.port)], deadline, began)
    addresses = resolve_within(resolver or system_resolver, host, origin.port, deadline)
    return DialPlan(targets_for(host, addresses, origin.port), deadline, began)


def literal_target(ip: str, port: int) -> Target:
    """The one target of an IP literal host (checked by ``is_ip_literal``)."""
    return Target(ip, port, 6 if ":" in ip else 4)


def sockaddr(target: Target) -> tuple[Any, ...]:
    """The address ``socket.connect`` takes for ``target``."""
    if target.family == 4:
        return (target.ip, target.port)
    if "%" not in target.ip:
        return (target.ip, target.port, 0, 0)
    # A scoped (link-local) address: getaddrinfo turns the interface name into its index.
    infos = socket.getaddrinfo(
        target.ip, target.port, socket.AF_INET6, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
    )
    return tuple(infos[0][4])


def start_attempt(target: Target) -> tuple[socket.socket, int]:
    """A non-blocking socket connecting to ``target``, and connect's errno (0: connected,
    EINPROGRESS: under way). On an error other than those the socket is closed."""
    family = socket.AF_INET if target.family == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        err = sock.connect_ex(sockaddr(target))
    except BaseException:
        sock.close()
        raise
    if err not in (0, errno.EINPROGRESS):
        sock.close()
    return sock, err


def attempt_error(err: int) -> OSError:
    """The OSError for a failed attempt's errno (from connect or SO_ERROR)."""
    return OSError(err, os.strerror(err))


def _race(plan: DialPlan, origin: Origin) -> socket.socket:
    """Run ``plan`` with non-blocking sockets and poll: the winner's socket, losers closed."""
    poller = select.poll()
    pending: dict[int, tuple[socket.socket, Target]] = {}
    try:
        while True:
            now = time.monotonic()
            target = plan.due(now)
            while target is not None:
                sock, err = start_attempt(target)
                plan.started(target, now)
                if err == 0:
                    return _won(plan, target, sock, pending)
                if err == errno.EINPROGRESS:
                    pending[sock.fileno()] = (sock, target)
                    poller.register(sock, select.POLLOUT)
                else:
                    plan.failed(target, attempt_error(err))
                target = plan.due(now)
            failure = plan.failure(now, origin)
            if failure is not None:
                raise failure from None
            wait = plan.wait(now)
            for fd, _ in poller.poll(None if wait is None else math.ceil(wait * 1000)):
                sock, target = pending.pop(fd)
                poller.unregister(fd)
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    return _won(plan, target, sock, pending)
                sock.close()
                plan.failed(target, attempt_error(err))
    finally:
        for sock, _ in pending.values():
            sock.close()


def _won(
    plan: DialPlan,
    target: Target,
    sock: socket.socket,
    pending: dict[int, tuple[socket.socket, Target]],
) -> socket.socket:
    plan.won(target)  # every other attempt still pending is closed by _race's finally
    pending.pop(sock.fileno(), None)
    return sock


def resolve(host: str, port: int, resolver: Resolver | None = None) -> list[str]:
    """The addresses ``host`` resolves to (empty if it does not resolve)."""
    try:
        return [ip.split("%", 1)[0] for ip in (resolver or system_resolver)(host.strip("[]"), port)]
    except (OSError, UnicodeError, ValueError):
        return []


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
