"""The response bodies nginx serves (shared by the server setup and the clients)."""

from __future__ import annotations

SMALL_BODY = b"Hello, world\n"  # 13 bytes
LARGE_SIZE = 64 * 1024
SLOW_SIZE = 2048


def large_body() -> bytes:
    """64 KiB of deterministic bytes (a counter in hex, so misplaced chunks show)."""
    out = bytearray()
    i = 0
    while len(out) < LARGE_SIZE:
        out += f"{i:08x}".encode() * 8
        i += 1
    return bytes(out[:LARGE_SIZE])


def slow_body() -> bytes:
    return b"s" * SLOW_SIZE


def body(name: str) -> bytes:
    if name == "small":
        return SMALL_BODY
    if name == "large":
        return large_body()
    if name == "slow":
        return slow_body()
    raise ValueError(f"unknown body {name!r}")
