"""Leak-hunting helpers for tests (Linux only: they read /proc)."""

from __future__ import annotations

import gc
import os

from tether.testing import close_wait_count  # shipped: the demo uses it too

__all__ = ["close_wait_count", "fd_count"]

_LISTEN = "0A"  # the TCP state code of a listening socket in /proc/net/tcp


def fd_count() -> int:
    """Number of file descriptors this process has open right now, not counting connections
    accepted by a server listening in this process.

    In-process test servers (and so nginx's proxied upstreams, which end in one) close their
    side of a connection on their own thread, a moment after the peer closes it: counting
    those would make a client-side leak check race the server's threads. Garbage is collected
    first, so an earlier test's unreachable socket cannot close in the middle of a count (a
    socket closed only by the collector also raises a ResourceWarning, which fails the test).
    """
    gc.collect()
    sockets: list[str] = []
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listdir's own descriptor, closed by now
        if target.startswith("socket:["):
            sockets.append(target[8:-1])
        else:
            count += 1
    state: dict[str, tuple[str, str]] = {}  # inode -> (local port, TCP state)
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                state[fields[9]] = (fields[1].rsplit(":", 1)[1], fields[3])
    listening = {port for port, tcp in state.values() if tcp == _LISTEN}
    for inode in sockets:
        port, tcp = state.get(inode, ("", ""))
        if tcp != _LISTEN and port in listening:
            continue  # a server-side connection of an in-process server
        count += 1
    return count
