"""Name resolution for dialing: the system resolver, a user's hook, and a deadline for both.

A resolver is any callable ``resolver(host, port) -> iterable of IP address strings`` (IPv6
without brackets, optionally with ``%scope``), most preferred first. ``system_resolver`` is
the default (``getaddrinfo``); ``Session(resolver=...)`` and ``AsyncSession(resolver=...)``
take another, for instance to make a name resolve to several addresses in a test, or to pin
a host to an address. An IP literal host is never passed to a resolver.

``getaddrinfo`` cannot be interrupted, so the threaded body resolves on a daemon thread of
a small pool and waits for it no longer than the dial's deadline (``resolve_within``). At
most ``MAX_RESOLVER_THREADS`` run at once: if the resolver hangs, dials fail with
ResolveTimeout instead of piling up threads. The asyncio body uses ``loop.getaddrinfo`` (or
runs a custom resolver in the loop's executor) under the same deadline; see ``aio.dial``.
There, as for ``getaddrinfo`` itself, a resolver that hangs keeps its executor thread, and
``asyncio.run`` waits for that thread when it shuts the executor down.
"""

from __future__ import annotations

import collections
import functools
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..exceptions import ResolveError, ResolveTimeout

__all__ = [
    "MAX_RESOLVER_THREADS",
    "Resolver",
    "addresses_of",
    "is_ip_literal",
    "resolve_within",
    "run_resolver",
    "system_resolver",
]

Resolver = Callable[[str, int], Iterable[str]]

MAX_RESOLVER_THREADS = 16
IDLE_EXIT = 5.0  # seconds a resolver thread waits for work before it ends


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives ``host`` for TCP, in its order, without repeats.

    Raises ``socket.gaierror`` (or UnicodeError for a name IDNA cannot encode) like it.
    """
    return addresses_of(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


def addresses_of(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    """The IP address strings of ``getaddrinfo`` results, in order, without repeats."""
    found: list[str] = []
    for family, _, _, _, sockaddr in infos:
        ip = str(sockaddr[0])
        if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3] and "%" not in ip:
            ip = f"{ip}%{sockaddr[3]}"  # a link-local address needs its interface
        if ip not in found:
            found.append(ip)
    return found


@functools.lru_cache(maxsize=256)  # asked at every dial, of the same few hosts
def is_ip_literal(host: str) -> bool:
    """Is ``host`` (brackets allowed) an IP address, so that nothing needs resolving?"""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def run_resolver(resolver: Resolver, host: str, port: int) -> list[str]:
    """Call ``resolver``; its failure becomes a ResolveError naming ``host``."""
    try:
        return [str(ip) for ip in resolver(host, port)]
    except ResolveError:
        raise
    except (OSError, UnicodeError, ValueError) as exc:
        raise ResolveError(f"cannot resolve {host!r}: {exc}") from None


def resolve_within(resolver: Resolver, host: str, port: int, deadline: float | None) -> list[str]:
    """The addresses for ``host``, or ResolveTimeout once ``deadline`` (monotonic) passes.

    With no deadline the resolver runs on the calling thread; otherwise on one of the
    resolver threads, which is left to finish on its own if the deadline passes first.
    """
    if deadline is None:
        return run_resolver(resolver, host, port)
    started = time.monotonic()
    job = _Job(resolver, host, port)
    _workers.submit(job)
    if not job.done.wait(max(0.0, deadline - time.monotonic())):
        job.abandoned = True  # a worker that has not started it yet skips it
        spent = time.monotonic() - started
        raise ResolveTimeout(f"resolving {host!r} timed out after {spent:.3f}s")
    if job.error is not None:
        raise job.error
    return job.result


class _Job:
    __slots__ = ("abandoned", "done", "error", "host", "port", "resolver", "result")

    def __init__(self, resolver: Resolver, host: str, port: int) -> None:
        self.resolver, self.host, self.port = resolver, host, port
        self.result: list[str] = []
        self.error: BaseException | None = None
        self.abandoned = False
        self.done = threading.Event()

    def run(self) -> None:
        if self.abandoned:
            return
        try:
            self.result = run_resolver(self.resolver, self.host, self.port)
        except BaseException as exc:  # handed to the waiting thread
            self.error = exc
        finally:
            self.done.set()


class _Workers:
    """At most ``MAX_RESOLVER_THREADS`` daemon threads, started when a job finds no worker
    waiting and ended after ``IDLE_EXIT`` seconds without work: a dial to a named host does
    not pay for a thread start, and a resolver that hangs holds a bounded number of them
    (and at most as many jobs wait behind them; beyond that a dial fails at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._jobs: collections.deque[_Job] = collections.deque()
        self._waiting = 0  # workers blocked in wait(), free for a job
        self.threads = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            self._jobs.append(job)
            if self._waiting < len(self._jobs):  # no free worker for this one
                if self.threads < MAX_RESOLVER_THREADS:
                    self._start()
                elif len(self._jobs) > MAX_RESOLVER_THREADS and self._purge():
                    self._jobs.pop()
                    raise ResolveTimeout(
                        f"cannot resolve {job.host!r} now: {MAX_RESOLVER_THREADS} "
                        "resolutions are still running and as many are waiting"
                    )
            self._work.notify()

    def _purge(self) -> bool:
        """Drop the queued jobs whose callers gave up; True if too many still wait."""
        self._jobs = collections.deque(j for j in self._jobs if not j.abandoned)
        return len(self._jobs) > MAX_RESOLVER_THREADS

    def _start(self) -> None:
        try:
            threading.Thread(target=self._serve, name="tether-resolve", daemon=True).start()
        except BaseException:
            self._jobs.pop()
            raise
        self.threads += 1

    def _serve(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    self._waiting += 1
                    woken = self._work.wait(IDLE_EXIT)
                    self._waiting -= 1
                    if not woken and not self._jobs:
                        self.threads -= 1
                        return
                job = self._jobs.popleft()
            job.run()


def _fresh_workers() -> None:
    # A forked child has none of the parent's resolver threads.
    global _workers
    _workers = _Workers()


_workers = _Workers()
os.register_at_fork(after_in_child=_fresh_workers)
