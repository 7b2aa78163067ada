"""A local address that black-holes connection attempts, without root: for happy-eyeballs tests.

A listening socket with a backlog of 0 holds one connection in its accept queue; once that
is filled (by a connection nobody accepts), Linux drops every further SYN to it instead of
answering (unless ``net.ipv4.tcp_abort_on_overflow`` is 1, when it resets them). A client
connecting there sees what an unreachable or firewalled address gives it: silence, the SYN
retransmitted until its timeout. Checked on the test machine for 127.0.0.1 and ::1.
"""

from __future__ import annotations

import socket

from ..closing import Closing

__all__ = ["BlackHole"]


class BlackHole(Closing):
    """Drops SYNs to ``(host, port)`` while open (``port`` 0: a free one). Use ``with``.

    The port may be one a server listens on at another address of the same host (a
    ``TestServer`` on 127.0.0.1 and a black hole on ::1, same port), so that one name resolving
    to both has a black-holed address and a working one.
    """

    __slots__ = ("_filler", "_listener", "host", "port")

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._filler: socket.socket | None = None
        try:
            self._listener.bind((host, port))
            self._listener.listen(0)
            self.host = host
            self.port: int = self._listener.getsockname()[1]
            self._filler = socket.create_connection((host, self.port), timeout=5)
        except BaseException:
            self.close()
            raise

    @property
    def address(self) -> tuple[str, int]:
        """Where connection attempts vanish."""
        return (self.host, self.port)

    def close(self) -> None:
        """Stop black-holing: the listener and the connection filling its queue close."""
        if self._filler is not None:
            self._filler.close()
            self._filler = None
        self._listener.close()
