"""Watching a socket for the reset that follows a server's FIN (the first-contact race).

When a server closes an idle connection just as our request is on its way, its kernel answers
the request's bytes with a reset. The client reads EOF (the FIN came first); about a round
trip after its write, the reset arrives: ``poll`` then reports POLLERR|POLLHUP and ``SO_ERROR``
is EPIPE (the reset met a socket in CLOSE_WAIT) or ECONNRESET. If the server read the request
and then closed, the FIN comes alone. ``lifecycle.rules.closed_before_request`` turns these
observations into a verdict; this module only makes them.

Linux only (``AVAILABLE``): other systems report a reset after FIN differently (macOS and the
BSDs give ECONNRESET or nothing, Windows has no POLLHUP for it), so the rule is off there.
"""

from __future__ import annotations

import errno
import select
import socket
import sys
import time

__all__ = ["AVAILABLE", "CONSERVATIVE_SEGMENT", "reset_pending", "segment_size", "wait_reset"]

AVAILABLE = sys.platform.startswith("linux") and hasattr(select, "poll")

# The payload of one segment on any path we may take (Ethernet 1500, less IPv6 and TCP headers
# with options, less some tunnel overhead), for when the kernel does not say.
CONSERVATIVE_SEGMENT = 1400

_RESET_ERRORS = (errno.EPIPE, errno.ECONNRESET)
_ERROR_EVENTS = select.POLLERR | select.POLLHUP if AVAILABLE else 0


def segment_size(sock: socket.socket | object) -> int:
    """The most bytes one send puts in one segment on ``sock``: its current MSS (TCP_MAXSEG),
    or ``CONSERVATIVE_SEGMENT`` when the kernel does not tell."""
    getsockopt = getattr(sock, "getsockopt", None)
    if getsockopt is None or not hasattr(socket, "TCP_MAXSEG"):
        return CONSERVATIVE_SEGMENT
    try:
        mss = int(getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
    except (OSError, ValueError):
        return CONSERVATIVE_SEGMENT
    return mss if mss > 0 else CONSERVATIVE_SEGMENT


def reset_pending(sock: socket.socket | object) -> bool:
    """Has ``sock`` received a reset (POLLERR|POLLHUP now, SO_ERROR EPIPE or ECONNRESET)?

    Reading SO_ERROR clears it; the socket is being given up anyway.
    """
    if not AVAILABLE:
        return False
    fileno = getattr(sock, "fileno", None)
    fd = fileno() if fileno is not None else -1
    if fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, _ERROR_EVENTS)  # POLLERR and POLLHUP are reported whatever is asked
    if not poller.poll(0):
        return False
    return _socket_error(sock) in _RESET_ERRORS


def wait_reset(sock: socket.socket, seconds: float) -> bool:
    """Block up to ``seconds`` for a reset on ``sock`` (one poll, no busy loop)."""
    if not AVAILABLE:
        return False
    fd = sock.fileno()
    if fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, _ERROR_EVENTS)
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        events = poller.poll(max(0, int(remaining * 1000) + 1))
        if events and events[0][1] & _ERROR_EVENTS:
            return _socket_error(sock) in _RESET_ERRORS
        if remaining <= 0:
            return False


def _socket_error(sock: socket.socket | object) -> int:
    getsockopt = getattr(sock, "getsockopt", None)
    if getsockopt is None:
        return 0
    try:
        return int(getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    except OSError as exc:
        return exc.errno or 0
