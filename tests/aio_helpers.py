"""Running the asyncio tests: on plain asyncio or uvloop, with a leak check at the end."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None
LOOPS = [
    "asyncio",
    pytest.param(
        "uvloop", marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop not installed")
    ),
]


def run(coro: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """Run ``coro`` to the end on a new loop of the given kind; fail if it left tasks behind."""

    async def checked() -> T:
        result = await coro
        await asyncio.sleep(0)  # let closed transports report connection_lost
        others = asyncio.all_tasks() - {asyncio.current_task()}
        assert not others, f"tasks left pending: {others}"
        return result

    if loop == "uvloop":
        import uvloop

        return uvloop.run(checked())
    return asyncio.run(checked())


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``condition`` (a fact another side updates) while the loop runs, up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def fd_links() -> dict[str, str]:
    """What each open descriptor of this process is (for a leak's message)."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass  # the listing's own descriptor, already closed
    return out


def socket_count() -> int:
    """Open sockets of this process: what a leak of ours would be (the in-process servers'
    own selectors come and go with their threads, so all descriptors would be noisy)."""
    return sum(link.startswith("socket:") for link in fd_links().values())
