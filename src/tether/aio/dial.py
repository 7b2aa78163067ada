"""Happy eyeballs for asyncio: resolve under the deadline, then race the addresses.

The decisions are `lifecycle.dialplan.DialPlan`'s, the same plan the threaded dial
(``io.sockets.connect``) drives with ``poll``. Here each attempt is a non-blocking socket the
loop watches with ``add_writer``; registering and unregistering are synchronous, so a loser is
unwatched and closed in the same step that decides it lost, and the dial leaves no task, no
callback and no socket behind when it ends, fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time

from ..exceptions import ResolveError, ResolveTimeout
from ..io.resolver import Resolver, addresses_of, is_ip_literal, run_resolver
from ..io.sockets import attempt_error, literal_target, start_attempt
from ..lifecycle.dialplan import DialPlan, Target, targets_for
from ..models import Origin

__all__ = ["plan_dial", "race"]


async def plan_dial(
    origin: Origin, resolver: Resolver | None, deadline: float | None, began: float
) -> DialPlan:
    """Resolve ``origin``'s host before ``deadline`` and plan the attempts."""
    host = origin.host.strip("[]")
    if is_ip_literal(host):
        return DialPlan([literal_target(host, origin.port)], deadline, began)
    loop = asyncio.get_running_loop()
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        async with asyncio.timeout(left):
            if resolver is None:
                addresses = await _system(loop, host, origin.port)
            else:
                addresses = await loop.run_in_executor(
                    None, run_resolver, resolver, host, origin.port
                )
    except TimeoutError:
        raise ResolveTimeout(
            f"resolving {host!r} timed out after {time.monotonic() - began:.3f}s"
        ) from None
    return DialPlan(targets_for(host, addresses, origin.port), deadline, began)


async def _system(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[str]:
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ResolveError(f"cannot resolve {host!r}: {exc}") from None  # as run_resolver says
    return addresses_of(infos)


async def race(plan: DialPlan, origin: Origin) -> socket.socket:
    """Run ``plan``: the winner's connected non-blocking socket; every loser closed."""
    loop = asyncio.get_running_loop()
    pending: dict[int, tuple[socket.socket, Target]] = {}
    ready: list[int] = []
    wake: asyncio.Future[None] | None = None

    def writable(fd: int) -> None:
        loop.remove_writer(fd)
        ready.append(fd)
        if wake is not None and not wake.done():
            wake.set_result(None)

    try:
        while True:
            now = time.monotonic()
            while ready:  # the attempts that ended since the last turn
                sock, ended = pending.pop(ready.pop())
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    plan.won(ended)
                    return sock
                sock.close()
                plan.failed(ended, attempt_error(err))
            target = plan.due(now)
            while target is not None:
                sock, err = start_attempt(target)
                plan.started(target, now)
                if err == 0:
                    plan.won(target)
                    return sock
                if err == errno.EINPROGRESS:
                    pending[sock.fileno()] = (sock, target)
                    loop.add_writer(sock.fileno(), writable, sock.fileno())
                else:
                    plan.failed(target, attempt_error(err))
                target = plan.due(now)
            failure = plan.failure(now, origin)
            if failure is not None:
                raise failure from None
            wake = loop.create_future()
            wait = plan.wait(now)
            timer = None if wait is None else loop.call_later(wait, _fill, wake)
            try:
                await wake
            finally:
                if timer is not None:
                    timer.cancel()
    finally:
        for fd, (sock, _) in pending.items():
            if fd not in ready:
                loop.remove_writer(fd)
            sock.close()


def _fill(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
