"""In-process HTTP/2 test server that counts connections and streams and misbehaves on cue.

``H2TestServer`` speaks HTTP/2 with the ``h2`` library's server side (h2c prior knowledge,
or TLS with ALPN "h2"): one thread per connection running a small event loop (socket
readiness, timers, flow-controlled bodies), so a slow stream never blocks the others.
Faults that ``h2`` refuses to produce are written as raw frames (see ``h2faults``).

Routes (the path decides; bad arguments get 400 with a message naming them):

- ``/`` and any unknown path: 200, ``hello conn=<id> stream=<id>\\n``, header ``x-conn``.
- ``/echo``: 200, JSON: method, path, headers, body_length, body_sha256, connection_id,
  stream_id.
- ``/slow?ms=200``: the hello answer after that delay (at most 60 s), other streams go on.
- ``/bytes/<n>``: ``pattern_bytes(n)``, sent as the client's flow-control windows allow.
- ``/trailers?n=1000``: ``pattern_bytes(n)``, then trailers ``x-checksum: <sha256 hex>``.
- ``/goaway?last=<k>&code=<c>``: GOAWAY(c, last_stream_id = this stream - 2k); streams up
  to that id are answered, later ones never; the connection closes once they are done.
  The constructor's ``goaway_after=N`` does the same (NO_ERROR, last = the Nth stream) on
  every connection as soon as the Nth stream's HEADERS arrive.
- ``/refuse``: RST_STREAM(REFUSED_STREAM). ``/refuse-once``: refused the first time this
  server sees the path (on any connection), answered afterwards.
- ``/rst-mid-body``: head (content-length 1000), 100 bytes, RST_STREAM(INTERNAL_ERROR).
- ``/lower-streams?to=1``: SETTINGS MAX_CONCURRENT_STREAMS=to, then the hello answer.
- ``/close-mid-stream``: head (content-length 1000), 100 bytes, then FIN without GOAWAY.
- ``/misdirected``: 421 Misdirected Request when the connection was opened by a request for
  another ``:authority`` (a server that refuses coalesced requests), the hello answer otherwise.
- ``/bad/...``: malformed responses and floods, listed in ``h2faults.FAULTS``.

Uploads: ``initial_window_size`` is the server's SETTINGS_INITIAL_WINDOW_SIZE; received
DATA is credited back (WINDOW_UPDATE) ``upload_delay`` seconds after it arrives, and with
``initial_window_size=0`` each request stream is granted 65,535 bytes after that delay.
A client exceeding ``max_concurrent_streams`` gets GOAWAY(PROTOCOL_ERROR) from ``h2``.
``requests`` lists every complete request received, answered or not.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from h2.settings import SettingCodes

from .h2conn import Session, Stop
from .testserver import _Listener, _raw_shutdown

if TYPE_CHECKING:
    import trustme

__all__ = ["H2TestServer", "RequestRecord"]

RequestRecord = tuple[int, int, str, str, int]
"""(connection_id, stream_id, method, path, body_length) of one received request."""

_MAX_31 = 2**31 - 1


class H2TestServer(_Listener):
    """Threaded HTTP/2 server on loopback; see the module docstring for its routes.

    Counters (all thread-safe): ``connections_accepted``, ``open_connections``,
    ``streams_received`` (HEADERS seen), ``goaways_sent``, ``requests`` and ``errors``
    (exceptions in server threads: a teardown should check it is empty).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        max_concurrent_streams: int = 100,
        initial_window_size: int = 65535,
        host: str = "127.0.0.1",
        goaway_after: int | None = None,
        upload_delay: float = 0.0,
    ) -> None:
        super().__init__(host, 0)
        if not 0 <= max_concurrent_streams <= _MAX_31:
            raise ValueError(f"max_concurrent_streams={max_concurrent_streams}: not 0..2^31-1")
        if not 0 <= initial_window_size <= _MAX_31:
            raise ValueError(f"initial_window_size={initial_window_size}: not 0..2^31-1")
        if goaway_after is not None and goaway_after < 1:
            raise ValueError(f"goaway_after={goaway_after}: must be at least 1")
        if not 0.0 <= upload_delay <= 60.0:
            raise ValueError(f"upload_delay={upload_delay}: not 0..60 seconds")
        if tls is not None:
            tls.set_alpn_protocols(["h2"])  # the caller's context, set as documented
        self._tls = tls
        self._settings: dict[SettingCodes, int] = {
            SettingCodes.MAX_CONCURRENT_STREAMS: max_concurrent_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: initial_window_size,
        }
        self._goaway_after = goaway_after
        self._upload_delay = upload_delay
        self._streams = 0
        self._goaways = 0
        self._seen_paths: set[str] = set()
        self._sessions: set[Session] = set()
        self.requests: list[RequestRecord] = []
        """Every complete request received, in arrival order (appended under the lock)."""

    @staticmethod
    def tls_context(ca: trustme.CA) -> ssl.SSLContext:
        """A server context with a certificate from ``ca`` for 127.0.0.1, ::1 and localhost."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "::1", "localhost").configure_cert(ctx)
        ctx.set_alpn_protocols(["h2"])
        return ctx

    @property
    def url(self) -> str:
        """Base URL, ``https://127.0.0.1:PORT`` with TLS, else ``http://...`` (h2c)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}"

    @property
    def streams_received(self) -> int:
        """Request streams opened by clients (HEADERS frames that started a stream)."""
        with self._lock:
            return self._streams

    @property
    def goaways_sent(self) -> int:
        """GOAWAY frames this server sent on purpose (routes and ``goaway_after``)."""
        with self._lock:
            return self._goaways

    def _first_sighting(self, path: str) -> bool:
        with self._lock:
            first = path not in self._seen_paths
            self._seen_paths.add(path)
            return first

    def _count(self, *, streams: int = 0, goaways: int = 0) -> None:
        with self._lock:
            self._streams += streams
            self._goaways += goaways

    def _interrupt(self) -> None:
        with self._lock:
            for session in self._sessions:
                _raw_shutdown(session.sock, socket.SHUT_RDWR)

    def _after_stop(self) -> None:
        with self._lock:
            stuck = list(self._sessions)
        for session in stuck:
            self._close_session(session)

    def _close_session(self, session: Session) -> None:
        with self._lock:
            if session not in self._sessions:
                return
            self._sessions.discard(session)  # from here on stop() leaves this socket alone
        session.sock.close()
        self._connection_closed()

    def _run_connection(self, sock: socket.socket, cid: int) -> None:
        session = Session(self, sock, cid)
        try:
            with self._lock:
                self._sessions.add(session)
                if self._stopping.is_set():
                    return
            session.run()
        except (OSError, Stop):
            pass  # the client went away, stalled, or stop() shut the socket
        except Exception as exc:  # record, since nobody would see it in this thread
            self._record(exc)
        finally:
            self._close_session(session)
