"""After ``os.fork()`` the child forgets the parent's connections; it never uses them.

A forked child inherits every pooled socket. If it sent a request on one, the parent and
the child would write into the same TCP stream and read each other's responses; if it
closed one politely (FIN, or a TLS close_notify), it would end the parent's connection.
So in the child, right after the fork, every live connection closes *its copy* of the
descriptor and nothing else: the parent still holds the socket, so no byte leaves. The
pools registered here are then told to start empty, and the idle watcher starts a fresh
thread in the child the first time it is needed (see watcher.py).

Connections and pools are held weakly: registering costs one set insertion per connection
(at dial time) and per pool, nothing per request.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["ForkAware", "register_connection", "register_pool"]


class ForkAware(Protocol):
    """Something that holds sockets and can let go of them in a forked child."""

    def forget_after_fork(self) -> None:
        """Close our copies of the descriptors without sending anything; become empty."""


_connections: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_pools: weakref.WeakSet[object] = weakref.WeakSet()


def register_connection(conn: ForkAware) -> None:
    """Have ``conn`` forget its socket in a child after ``os.fork()``."""
    _connections.add(conn)


def register_pool(pool: object) -> None:
    """Have ``pool`` start empty in a child: its ``forget_after_fork()`` is called, if any."""
    _pools.add(pool)


def _after_fork_in_child() -> None:
    # Connections first, so a pool that resets itself finds them all closed already.
    for conn in list(_connections):
        try:
            conn.forget_after_fork()
        except Exception:  # nothing may stop the child from starting
            continue
    for pool in list(_pools):
        forget = getattr(pool, "forget_after_fork", None)
        if forget is not None:
            try:
                forget()
            except Exception:
                continue


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
