"""The ASGI app the hypercorn fixture serves (run by ``hypercorn hypercorn_app:app``).

Routes: ``/`` -> ``hello\\n``; ``/slow?ms=N`` -> waits N ms (default 200, at most 10 s),
then ``slow\\n``; ``/echo`` -> the request body's length as decimal text; ``/bytes/<n>``
-> n pattern bytes (0, 1, ..., 255, 0, ...; at most 64 MiB); anything else 404.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_MAX_BYTES = 64 * 1024 * 1024


async def _body_length(receive: Receive) -> int:
    length = 0
    while True:
        message = await receive()
        length += len(message.get("body", b""))
        if not message.get("more_body"):
            return length


async def _answer(scope: dict[str, Any], receive: Receive) -> tuple[int, bytes]:
    path: str = scope["path"]
    if path == "/":
        return 200, b"hello\n"
    if path == "/slow":
        query = parse_qs(scope["query_string"].decode())
        await asyncio.sleep(min(int(query.get("ms", ["200"])[0]), 10_000) / 1000)
        return 200, b"slow\n"
    if path == "/echo":
        return 200, str(await _body_length(receive)).encode()
    if path.startswith("/bytes/") and path[7:].isdigit() and int(path[7:]) <= _MAX_BYTES:
        return 200, bytes(range(256)) * (int(path[7:]) // 256) + bytes(range(int(path[7:]) % 256))
    return 404, b"not found\n"


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """ASGI entry point (HTTP only; lifespan events are ignored)."""
    if scope["type"] != "http":
        return
    status, body = await _answer(scope, receive)
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
