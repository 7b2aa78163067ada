"""Closes idle pooled sockets as soon as the server closes them: no CLOSE_WAIT left behind.

When a server closes a keep-alive connection that sits idle in our pool, the kernel holds our
end in CLOSE_WAIT until we close it. Most clients notice only at the next request, which may be
never. One thread per process waits on epoll for the server's FIN or reset on every pooled
socket and hands the connection back to its pool, which closes it if it is idle.

Why it costs nothing per request: a socket is registered once, when it first goes idle, for
EPOLLRDHUP only (the peer closed), not EPOLLIN. A response arriving on a busy socket is data,
not a hang-up, so the thread never wakes for it and checkout/release make no epoll call. The
registration is one-shot: a close is reported once, and closing the socket removes it from the
epoll set. The thread sleeps in epoll_wait while nothing changes.

A report names a descriptor number, and the thread may read it, then wait for the CPU while
the pool closes that socket and a new connection gets the number and goes idle. Such a late
report is dropped (``_still_true``): handed on, it would take the healthy new connection off
the idle stack to check it, and a request arriving meanwhile would dial another connection.
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
# EPOLLHUP and EPOLLERR (a reset) are always reported; EPOLLRDHUP is the peer's FIN.
_EVENTS = select.EPOLLRDHUP | select.EPOLLONESHOT if _EPOLL else 0
# An idle HTTP/2 connection has things to say (PING, SETTINGS, GOAWAY): any readable byte.
_READABLE = _EVENTS | select.EPOLLIN if _EPOLL else 0
# What a poll of the socket shows while a report about it is true (hang-ups and errors stay).
_HUNG_UP = select.POLLRDHUP | select.POLLHUP | select.POLLERR if _EPOLL else 0


class Watched(Protocol):
    fd: int  # the socket's descriptor, kept after close so it can still be forgotten


Callback = weakref.WeakMethod[Callable[[Any], None]]


class IdleWatcher:
    """Calls back a connection's owner, on its own thread, when the peer closes the socket.

    Owners call ``watch`` once per connection and ``forget`` before closing it. The table is a
    dict whose single operations are atomic and the epoll set is the kernel's, so no lock of
    ours is needed.
    """

    def __init__(self) -> None:
        # Connections and callbacks are held weakly: a pool dropped without close() leaves
        # nothing alive here (its sockets are then closed by the garbage collector).
        self._entries: dict[int, tuple[weakref.ref[Watched], Callback, bool]] = {}
        self._epoll: select.epoll | None = None
        self._start_lock = threading.Lock()

    @property
    def available(self) -> bool:
        return _EPOLL

    def watch(self, conn: Watched, callback: Callback, readable: bool = False) -> None:
        """Report the peer's close of ``conn`` (``readable``: any byte) to ``callback(conn)``,
        once."""
        epoll = self._epoll or self._start()
        fd = conn.fd
        events = _READABLE if readable else _EVENTS
        self._entries[fd] = (weakref.ref(conn), callback, readable)
        try:
            epoll.register(fd, events)
        except FileExistsError:
            epoll.modify(fd, events)

    def pause(self, conn: Watched) -> None:
        """Report nothing about ``conn`` until the next ``watch`` (it is in use)."""
        epoll = self._epoll
        if epoll is not None:
            try:
                epoll.modify(conn.fd, 0)
            except OSError:
                pass  # not registered, or closed meanwhile

    def forget(self, conn: Watched) -> None:
        """``conn`` is about to be closed (closing its socket leaves the epoll set by itself)."""
        fd = conn.fd
        entry = self._entries.pop(fd, None)
        if entry is not None and entry[0]() not in (conn, None):
            self._entries[fd] = entry  # the number was reused by a newer connection

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
            self._dispatch(events)

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        for fd, _ in events:
            entry = self._entries.get(fd)
            if entry is None:
                continue
            conn, callback = entry[0](), entry[1]()
            if conn is None or callback is None:
                self._entries.pop(fd, None)  # its pool is gone
                continue
            if not _still_true(fd, entry[2]):
                continue  # about an earlier socket with this number; this one's watch stands
            try:
                callback(conn)
            except Exception:
                continue

    def _after_fork(self) -> None:
        # The child has a copy of the parent's epoll descriptor but not its thread: close the
        # copy (the parent's epoll lives on) and start a new epoll and thread on first use.
        epoll, self._epoll = self._epoll, None
        if epoll is not None:
            epoll.close()
        self._start_lock = threading.Lock()
        self._entries = {}

    @property
    def running(self) -> bool:
        """Has this process an epoll and a thread watching it (started on first ``watch``)?"""
        return self._epoll is not None


def _still_true(fd: int, readable: bool) -> bool:
    """Does the socket numbered ``fd`` now show what a report about it would mean? A hang-up
    or an error stays visible until the socket is closed, unread bytes until they are read;
    one system call, made only when a report arrives."""
    poller = select.poll()
    poller.register(fd, _HUNG_UP | (select.POLLIN if readable else 0))
    return bool(poller.poll(0))  # POLLNVAL (closed meanwhile) too: let the owner decide


watcher = IdleWatcher()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=watcher._after_fork)
