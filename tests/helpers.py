"""Leak-hunting helpers for tests (Linux only: they read /proc)."""

from __future__ import annotations

import os


def fd_count() -> int:
    """Number of file descriptors this process has open right now."""
    return len(os.listdir("/proc/self/fd"))


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the fd closed while we were listing (or was listdir's own)
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def close_wait_count(port: int) -> int:
    """Count this process's TCP sockets in CLOSE_WAIT whose remote port is ``port``.

    CLOSE_WAIT means the peer (the server on ``port``) sent FIN and we have not closed our
    socket yet: a pooled connection the client noticed nothing about, or a leak. Reads
    ``/proc/net/tcp`` and ``/proc/net/tcp6`` (state ``08`` is CLOSE_WAIT) and keeps only
    sockets whose inode is one of this process's open file descriptors.
    """
    mine = _socket_inodes()
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "08" and remote_port == port and fields[9] in mine:
                count += 1
    return count
