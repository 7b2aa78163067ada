"""Name resolution for dialing: the system resolver, a user's hook, and a deadline for both.

A resolver is any callable ``resolver(host, port) -> iterable of IP address strings`` (IPv6
without brackets, optionally with ``%scope``), most preferred first. ``system_resolver`` is
the default (``getaddrinfo``); ``Session(resolver=...)`` and ``AsyncSession(resolver=...)``
take another, for instance to make a name resolve to several addresses in a test, or to pin
a host to an address. An IP literal host is never passed to a resolver.

``getaddrinfo`` cannot be interrupted, so the threaded body resolves on a short-lived daemon
thread and waits for it no longer than the dial's deadline (``resolve_within``). At most
``MAX_RESOLVER_THREADS`` run at once: if the resolver hangs, dials fail with ResolveTimeout
instead of piling up threads. The asyncio body uses ``loop.getaddrinfo`` (or runs a custom
resolver in the loop's executor) under the same deadline; see ``aio.dial``.
"""

from __future__ import annotations

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
_slots = threading.BoundedSemaphore(MAX_RESOLVER_THREADS)


def _fresh_slots() -> None:
    # A forked child has none of the parent's resolver threads: their slots are free.
    global _slots
    _slots = threading.BoundedSemaphore(MAX_RESOLVER_THREADS)


os.register_at_fork(after_in_child=_fresh_slots)


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

    With no deadline the resolver runs on the calling thread; otherwise on a daemon thread
    that is left to finish on its own if the deadline passes first.
    """
    if deadline is None:
        return run_resolver(resolver, host, port)
    started = time.monotonic()
    result: list[list[str] | BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            result.append(run_resolver(resolver, host, port))
        except BaseException as exc:  # handed to the waiting thread
            result.append(exc)
        finally:
            slots.release()
            done.set()

    slots = _slots
    if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise ResolveTimeout(
            f"resolving {host!r} timed out: {MAX_RESOLVER_THREADS} earlier resolutions "
            "are still running"
        )
    try:
        threading.Thread(target=work, name=f"tether-resolve {host}", daemon=True).start()
    except BaseException:
        slots.release()
        raise
    if not done.wait(max(0.0, deadline - time.monotonic())):
        spent = time.monotonic() - started
        raise ResolveTimeout(f"resolving {host!r} timed out after {spent:.3f}s")
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
