"""Closes idle pooled sockets as soon as the server closes them: no CLOSE_WAIT left behind.

When a server closes a keep-alive connection that sits idle in our pool, the kernel holds our
end in CLOSE_WAIT until we close it. Most clients notice only at the next request, which may be
never. One thread per process waits on epoll for the idle sockets of every pool; a readable
idle socket is handed back to its pool, which checks and closes it. The thread sleeps in
epoll_wait while nothing changes, and the pool registers a socket only while it is idle.
"""

from __future__ import annotations

import os
import select
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["IdleWatcher", "watcher"]

_EPOLL = hasattr(select, "epoll")
_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT if _EPOLL else 0


class Watched(Protocol):
    fd: int  # the socket's descriptor, kept after close so it can still be unwatched


Callback = weakref.WeakMethod[Callable[[Any], None]]


class IdleWatcher:
    """Watches idle sockets and calls back their owner when one becomes readable (or errors).

    Owners call ``watch`` and ``unwatch`` under their own lock; the table is a dict whose single
    operations are atomic, and the epoll set is the kernel's, so no lock of ours is needed.
    The callback is held weakly: a pool that was dropped without close() is not kept alive.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Watched, Callback]] = {}
        self._epoll: select.epoll | None = None
        self._start_lock = threading.Lock()

    @property
    def available(self) -> bool:
        return _EPOLL

    def watch(self, conn: Watched, callback: Callback) -> None:
        """Start watching ``conn`` (idle now); ``callback(conn)`` runs on the watcher thread."""
        epoll = self._epoll or self._start()
        fd = conn.fd
        self._entries[fd] = (conn, callback)
        try:
            epoll.register(fd, _EVENTS)
        except FileExistsError:  # left registered (disabled) by a one-shot event
            epoll.modify(fd, _EVENTS)

    def unwatch(self, conn: Watched) -> None:
        """Stop watching ``conn`` (it is being checked out or closed)."""
        fd = conn.fd
        entry = self._entries.pop(fd, None)
        if entry is None:
            return  # the watcher thread took it first; its callback will find it busy
        if entry[0] is not conn:
            self._entries[fd] = entry
            return
        try:
            self._epoll.unregister(fd)  # type: ignore[union-attr]
        except OSError:
            pass

    def watching(self) -> int:
        """How many sockets are being watched."""
        return len(self._entries)

    def _start(self) -> select.epoll:
        with self._start_lock:
            if self._epoll is None:
                epoll = select.epoll()
                thread = threading.Thread(
                    target=self._run, args=(epoll,), name="tether-idle-watcher", daemon=True
                )
                thread.start()
                self._epoll = epoll
            return self._epoll

    def _run(self, epoll: select.epoll) -> None:
        while True:
            try:
                events = epoll.poll()
            except OSError:
                return  # epoll closed (after fork, or at exit)
            for fd, _ in events:
                entry = self._entries.pop(fd, None)
                if entry is None:
                    continue
                conn, method = entry
                callback = method()
                if callback is not None:
                    callback(conn)

    def _after_fork(self) -> None:
        # The child shares the parent's epoll; give it its own, started on first use.
        self._start_lock = threading.Lock()
        self._entries = {}
        self._epoll = None


watcher = IdleWatcher()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=watcher._after_fork)
