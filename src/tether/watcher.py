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
from typing import Protocol

__all__ = ["IdleWatcher", "watcher"]

_EPOLL = hasattr(select, "epoll")
_EVENTS = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLONESHOT if _EPOLL else 0


class Watched(Protocol):
    def fileno(self) -> int: ...


OnReadable = Callable[[Watched], None]


class IdleWatcher:
    """Watches idle sockets and calls back the owner when one becomes readable (or errors)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[Watched, weakref.WeakMethod[OnReadable]]] = {}
        self._epoll: select.epoll | None = None
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return _EVENTS != 0

    def watch(self, conn: Watched, on_readable: OnReadable) -> None:
        """Start watching ``conn`` (idle now); ``on_readable`` must be a bound method."""
        fd = conn.fileno()
        with self._lock:
            epoll = self._epoll
            if epoll is None:
                epoll = self._start()
            self._entries[fd] = (conn, weakref.WeakMethod(on_readable))
            try:
                epoll.register(fd, _EVENTS)
            except FileExistsError:
                epoll.modify(fd, _EVENTS)

    def unwatch(self, conn: Watched) -> None:
        """Stop watching ``conn`` (it is being checked out or closed)."""
        fd = conn.fileno()
        with self._lock:
            entry = self._entries.get(fd)
            if entry is None or entry[0] is not conn:
                return
            del self._entries[fd]
            if self._epoll is not None:
                try:
                    self._epoll.unregister(fd)
                except (FileNotFoundError, OSError):
                    pass

    def watching(self) -> int:
        """How many sockets are being watched."""
        return len(self._entries)

    def _start(self) -> select.epoll:
        epoll = self._epoll = select.epoll()
        self._thread = threading.Thread(
            target=self._run, args=(epoll,), name="tether-idle-watcher", daemon=True
        )
        self._thread.start()
        return epoll

    def _run(self, epoll: select.epoll) -> None:
        while True:
            try:
                events = epoll.poll()
            except OSError:
                return  # epoll closed (after fork, or at exit)
            for fd, _ in events:
                with self._lock:
                    entry = self._entries.pop(fd, None)
                if entry is None:
                    continue
                conn, method = entry
                callback = method()
                if callback is not None:
                    callback(conn)

    def _after_fork(self) -> None:
        # The child shares the parent's epoll; give it its own, started on first use.
        self._lock = threading.Lock()
        self._entries = {}
        self._epoll = None
        self._thread = None


watcher = IdleWatcher()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=watcher._after_fork)
