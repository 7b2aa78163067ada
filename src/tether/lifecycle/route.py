"""How a pool's connections reach its origin: directly, through a proxy's tunnel, or forwarded.

One decision for both bodies (the threaded and the asyncio pool each hold a `Route` and ask
it where to dial and how to label what they carried):

- direct: TCP (and TLS) to the origin;
- tunnel: TCP to the proxy, a CONNECT or SOCKS handshake for the origin, then TLS to the
  origin inside (https). The tunnel is the pooled connection: kept, checked and reused like
  a direct one, so the handshake is paid once per connection, not once per request;
- forward: http:// through an HTTP proxy. TCP to the proxy; requests go in absolute-form
  with the proxy's credentials, which therefore never reach an origin (a tunnel's
  credentials travel in the CONNECT only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..models import Origin
from ..protocol.proxy import Proxy

__all__ = ["Route"]


@dataclass(frozen=True, slots=True)
class Route:
    """What a pool's connections are, and what it says about the connections it made (the
    dial itself is ``io.proxy.connect_via`` / ``aio.transport.dial``, by the same rule)."""

    origin: Origin
    proxy: Proxy | None
    tunnel: bool  # each connection is a tunnel through ``proxy`` to ``origin``
    forward: bool  # each connection goes to ``proxy`` itself and carries absolute-form requests
    head: bytes  # header lines added to forwarded requests (Proxy-Authorization)

    @classmethod
    def of(cls, origin: Origin, proxy: Proxy | None) -> Route:
        if proxy is None:
            return cls(origin, None, False, False, b"")
        if proxy.tunnels(origin):
            return cls(origin, proxy, True, False, b"")
        return cls(origin, proxy, False, True, proxy.authorization() or b"")

    def describe(self, info: Any) -> None:
        """Label a response's ConnectionInfo: which proxy carried it, and how."""
        if self.proxy is not None:
            info.proxy = self.proxy.url
            info.tunneled = self.tunnel
