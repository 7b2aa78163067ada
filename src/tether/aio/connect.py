"""Opening a connection for the asyncio pool: dial, then the driver the server chose.

The TLS handshake says (ALPN) which protocol the connection speaks, but asyncio wants its
protocol object before the handshake. So the dial runs with a small `_Handoff` that keeps
whatever arrives early (an HTTP/2 server's SETTINGS often comes in the handshake's last
read), then hands the transport and those bytes to the driver: HTTP/2 if ALPN chose it or
the pool was told the server speaks it, HTTP/1.1 otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Literal

from ..io.resolver import Resolver
from ..lifecycle.rules import CloseReason
from ..models import Origin, Timeout
from ..protocol.proxy import Proxy
from .http2 import AsyncHTTP2Connection
from .http11 import AsyncHTTP11Connection, IdleEvent
from .transport import BufferedReads, dial, tls_facts

__all__ = ["Connection", "HTTP2Mode", "open_connection"]

HTTP2Mode = bool | Literal["prior-knowledge"]
Connection = AsyncHTTP11Connection | AsyncHTTP2Connection
ConnEvent = Callable[[Connection, CloseReason | None], None]


class _Handoff(asyncio.Protocol):
    """Holds a transport through the dial, keeping what arrives until the driver is chosen."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received: list[bytes] = []
        self.eof = False
        self.lost: tuple[Exception | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.received.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        return True  # keep the transport: the driver decides

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = (exc,)

    def hand_to(self, driver: BufferedReads) -> None:
        transport = self.transport
        assert transport is not None
        transport.set_protocol(driver)
        driver.connection_made(transport)
        for data in self.received:
            driver.data_received(data)
        if self.eof and not driver.eof_received():
            transport.close()
        if self.lost is not None:
            driver.connection_lost(self.lost[0])


async def open_connection(
    origin: Origin,
    ssl_context: ssl.SSLContext | None,
    http2: HTTP2Mode,
    timeout: Timeout,
    clock: Callable[[], float],
    on_idle: IdleEvent,
    on_event: ConnEvent,
    resolver: Resolver | None = None,
    proxy: Proxy | None = None,
    proxy_context: ssl.SSLContext | None = None,
) -> Connection:
    """A connected driver for ``origin`` (through a tunnel of ``proxy`` if given); nothing is
    left open if this fails or is cancelled."""
    handoff, timings = await dial(
        _Handoff, origin, timeout.connect, ssl_context, resolver, proxy, proxy_context
    )
    assert handoff.transport is not None
    alpn = tls_facts(handoff.transport)[2]
    if alpn == "h2" or (http2 == "prior-knowledge" and alpn is None):
        conn = AsyncHTTP2Connection(origin, clock, on_event)
        handoff.hand_to(conn)
        try:
            await conn.start(timings, timeout.connect)
        except BaseException:  # failed or cancelled while waiting for SETTINGS
            conn.close(CloseReason.PROTOCOL_ERROR)
            raise
        return conn
    h1 = AsyncHTTP11Connection(origin, clock, on_idle)
    handoff.hand_to(h1)
    h1.started(timings)
    return h1
