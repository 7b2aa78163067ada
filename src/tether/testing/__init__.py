"""Public test utilities: a server that counts connections and misbehaves on cue, a slow proxy."""

from .testserver import DelayProxy, Exchange, TestServer, close_wait_count, pattern_bytes

__all__ = ["DelayProxy", "Exchange", "TestServer", "close_wait_count", "pattern_bytes"]
