"""Helpers for the HTTP/2 integration tests: bounded thread fan-out, server-side counting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

JOIN_TIMEOUT = 60.0  # far above any test's expected run; a hang fails instead of stalling


def run_threads(
    n: int, work: Callable[[int], T], timeout: float = JOIN_TIMEOUT
) -> tuple[list[T], list[BaseException]]:
    """Run ``work(i)`` on ``n`` threads released together; return (results, errors).

    Every thread is joined within ``timeout`` seconds in total; one still running after
    that fails the caller with an AssertionError naming how many hung.
    """
    barrier = threading.Barrier(n, timeout=10)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body(i: int) -> None:
        try:
            barrier.wait()
            value = work(i)
        except BaseException as exc:  # collected: the test reports them all
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    assert hung == 0, f"{hung} of {n} threads still running after {timeout}s"
    return results, errors


def wait_until(check: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True
