"""Leak-hunting helpers for tests (Linux only: they read /proc)."""

from __future__ import annotations

import os

from tether.testing import close_wait_count  # shipped: the demo uses it too

__all__ = ["close_wait_count", "fd_count"]


def fd_count() -> int:
    """Number of file descriptors this process has open right now."""
    return len(os.listdir("/proc/self/fd"))
