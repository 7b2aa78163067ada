"""Public test utilities: servers that count connections and misbehave on cue, a slow proxy,
and a black-holed address (``BlackHole``) for happy-eyeballs tests.

``H2TestServer`` needs the ``h2`` package; it is imported on first use, so the HTTP/1.1
``TestServer`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .blackhole import BlackHole
from .testserver import DelayProxy, Exchange, TestServer, close_wait_count, pattern_bytes

if TYPE_CHECKING:
    from .h2server import H2TestServer

__all__ = [
    "BlackHole",
    "DelayProxy",
    "Exchange",
    "H2TestServer",
    "TestServer",
    "close_wait_count",
    "pattern_bytes",
]


def __getattr__(name: str) -> Any:
    if name == "H2TestServer":
        from .h2server import H2TestServer

        return H2TestServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
