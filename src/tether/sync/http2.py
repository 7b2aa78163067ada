"""One HTTP/2 connection shared by many threads: streams, flow control, GOAWAY, pings.

The protocol is `protocol.http2.H2Protocol` (sans-I/O); this driver does the I/O and the
waiting. Its two rules:

- **Wire order.** Allocating a stream id, HPACK-encoding the headers and writing the HEADERS
  frame happen as one step under ``_lock``, so ids, HPACK state and the bytes on the wire always
  agree, whatever the threads do (httpx's threaded HTTP/2 breaks this rule and nginx answers
  PROTOCOL_ERROR).
- **Whoever waits reads.** There is no reader thread. A thread waiting for its stream takes
  ``_read_lock`` if nobody holds it, reads the socket and dispatches what arrives to every
  stream; the others sleep on their stream's event until their data is there or the reader
  leaves (then one of them takes over). A single thread thus never hops threads, and many
  threads hop only when one's data arrives on another's read.

The pool's brain sees ``stream_limit`` (the server's max concurrent streams) and ``accepting``;
a GOAWAY, a SETTINGS change or a connection failure is reported to the pool through
``on_event`` (outside this connection's locks), so waiting requests go elsewhere at once.
"""

from __future__ import annotations

import _thread
import itertools
import os
import select
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Literal

from ..exceptions import (
    ConnectError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from ..io import forksafety
from ..io.sockets import DialInfo
from ..io.tlsbio import TLSTransport
from ..lifecycle.coalescing import cert_names
from ..lifecycle.exchange import Exchange
from ..lifecycle.rules import PING_AFTER_IDLE as PING_AFTER_IDLE  # where tests look
from ..lifecycle.rules import PING_TIMEOUT as PING_TIMEOUT
from ..lifecycle.rules import CloseReason, Limits, expiry, ping_due, ping_limit
from ..models import Origin, Request, Timeout
from ..protocol import http2 as h2p
from ..protocol.h2streams import H2ResponseHead, Inbox, StreamRefused, StreamTable, request_head

__all__ = ["HTTP2Connection", "HTTP2Mode", "start_http2"]

HTTP2Mode = bool | Literal["prior-knowledge"]
EventCallback = Callable[["HTTP2Connection", CloseReason | None], None]

_RECV_SIZE = 65536
_ids = itertools.count(1_000_001)  # distinct from HTTP/1.1 connection ids at a glance


class _Stream(Inbox):
    """One stream's inbox, filled by whichever thread reads and drained by its owner."""

    __slots__ = ("signal",)

    def __init__(self, stream_id: int) -> None:
        super().__init__(stream_id)
        # Its owner sleeps on this lock (held = no signal; a release is the signal): a C-level
        # binary semaphore, several times cheaper than threading.Event. Made only if needed.
        self.signal: _thread.LockType | None = None

    def wake(self) -> None:
        signal = self.signal
        if signal is not None:
            try:
                signal.release()
            except RuntimeError:
                pass  # already signalled


class HTTP2Connection:
    """An HTTP/2 connection to one origin, owned by a pool, used by many threads at once."""

    multiplexed = True
    protocol = "h2"

    def __init__(
        self,
        origin: Origin,
        sock: socket.socket,
        timings: DialInfo,
        clock: Callable[[], float],
        on_event: EventCallback,
    ) -> None:
        self.id = next(_ids)
        self.origin = origin
        self.timings = timings
        self._sock = sock
        self.fd = sock.fileno()
        self._clock = clock
        self._on_event = on_event
        self._goaway_told = False  # the pool hears of the GOAWAY once, from whichever thread
        self._proto = h2p.H2Protocol()
        self._lock = threading.Lock()  # protocol state and socket writes
        self._read_lock = threading.Lock()  # who reads the socket
        self._table = StreamTable(origin)  # the streams, and what each event means for them
        self._waiting: set[_Stream] = set()  # streams whose owner sleeps on its event
        self._writer: int | None = None  # the thread inside a socket write, if any
        self._out: list[bytes] = []  # frames queued in wire order (under _lock), not yet sent
        self._write_lock = threading.Lock()  # who writes the socket
        self._pings: dict[bytes, threading.Event] = {}
        self._poller = select.poll()
        self._poller.register(self.fd, select.POLLIN)
        self._pending: Callable[[], int] = getattr(sock, "pending", int)  # TLS: buffered bytes
        self._timeout_set: float | None = -1.0  # the socket's current timeout (-1: unknown)
        self.created_at = clock()
        self.idle_since = self.created_at
        self.last_received = self.created_at
        self.requests = 0
        self.rtt = timings.rtt  # the winner's handshake: no race delay
        self.server_timeout: float | None = None  # HTTP/2 announces no idle timeout
        self.server_max: int | None = None
        self.expires_at = float("inf")
        self.expiry_reason: CloseReason | None = None
        self.watched = False
        self.hangup_seen = False
        self.close_reason: CloseReason | None = None
        self.in_flight = 0
        self.accepting = True
        self.stop_reason: CloseReason | None = None
        self.stream_limit = self._proto.peer_max_concurrent_streams
        forksafety.register_connection(self)
        self.local_address = timings.local_address
        self.remote_address = timings.remote_address
        self.tls: tuple[str | None, str | None, str | None] = (
            sock.tls_info() if isinstance(sock, TLSTransport) else (None, None, None)
        )
        # Names a verified certificate covers: which other hosts may share it (coalescing).
        self.cert_names: tuple[str, ...] = (
            cert_names(sock.getpeercert()) if isinstance(sock, TLSTransport) else ()
        )

    # -- set-up -------------------------------------------------------------------------------

    def start(self, timeout: float | None) -> None:
        """Send our preface and wait for the server's SETTINGS.

        Waiting costs at most one round trip once per connection, and it means the first
        requests already respect the server's stream limit: nghttpd, hypercorn and node answer
        a client that exceeds it with GOAWAY, so assuming 100 would cost whole connections.
        """
        self._set_timeout(timeout)
        try:
            self._sock.sendall(self._proto.initiate())
            while not self._proto.peer_settings_received:
                data = self._sock.recv(_RECV_SIZE)
                if not data:
                    raise ConnectError(f"{self.origin} closed the connection before its SETTINGS")
                if data.startswith(b"HTTP/1."):
                    raise RemoteProtocolError(
                        f"{self.origin} answered in HTTP/1.x: it does not speak HTTP/2 with prior "
                        "knowledge (use http2=True for ALPN on https, or leave http2 off)"
                    )
                events = self._proto.receive(data)
                out = self._proto.data_to_send()
                if out:
                    self._sock.sendall(out)
                self._apply_settings(events)
        except TimeoutError:
            raise ConnectError(f"{self.origin} sent no HTTP/2 SETTINGS within {timeout}s") from None
        except h2p.H2ProtocolError as exc:
            raise RemoteProtocolError(f"HTTP/2 set-up with {self.origin} failed: {exc}") from None
        except TransportError:
            raise  # our own (an OSError too): not a socket failure to wrap again
        except OSError as exc:
            raise ConnectError(f"HTTP/2 set-up with {self.origin} failed: {exc}") from None
        self.last_received = self._clock()

    def _apply_settings(self, events: list[h2p.Event]) -> None:
        for event in events:
            if isinstance(event, h2p.SettingsChanged):
                self.stream_limit = max(event.max_concurrent_streams, 0)

    # -- lifecycle questions the pool asks ----------------------------------------------------

    def go_idle(self, now: float, limits: Limits, learned: float | None) -> CloseReason | None:
        """Start an idle period: fix when it must end. A reason means: do not pool it at all."""
        self.idle_since = now
        self.expires_at, self.expiry_reason = expiry(self, limits, learned)
        return self.expiry_reason if self.expires_at <= now else None

    def check_idle(self) -> CloseReason | None:
        """Read what an idle connection received (PING, SETTINGS, GOAWAY, EOF); None if fit.

        A connection silent for ``PING_AFTER_IDLE`` is pinged first and must answer within
        ``PING_TIMEOUT`` (or its round-trip estimate, if larger).
        """
        reason = self._read_idle()
        if reason is not None or not ping_due(self._clock(), self.last_received):
            return reason
        return self._ping()

    def quiet(self) -> bool:
        """Nothing has arrived that nobody read yet."""
        return not self._poller.poll(0) and not self._pending()

    def _read_idle(self) -> CloseReason | None:
        # Read only what is there (poll says so), never by changing the socket's timeout: other
        # threads may already be writing on this connection (a busy HTTP/2 connection is shared
        # before its checker is done), and a non-blocking socket would fail their writes.
        if self.quiet():
            return None  # the common case: nothing arrived while idle
        if not self._read_lock.acquire(blocking=False):
            return None  # someone is reading: it is in use, so it is alive
        try:
            while self._poller.poll(0) or self._pending():
                try:
                    data = self._sock.recv(_RECV_SIZE)
                except (BlockingIOError, TimeoutError):
                    break
                except (OSError, ValueError):
                    return CloseReason.SERVER_CLOSED_IDLE
                if not data:
                    return CloseReason.SERVER_CLOSED_IDLE
                if not self._dispatch(data):
                    return self.stop_reason or CloseReason.PROTOCOL_ERROR
        finally:
            self._read_lock.release()
        if self._proto.goaway is not None or self._proto.closed:
            return CloseReason.GOAWAY
        return None

    def _ping(self) -> CloseReason | None:
        opaque = b"tether\x00\x01"
        answered = threading.Event()
        self._pings[opaque] = answered
        try:
            with self._lock:
                self._out.append(self._proto.ping(opaque))
            if self._flush() is not None:
                return CloseReason.NETWORK_ERROR
        except h2p.LocalProtocolError:
            return CloseReason.PROTOCOL_ERROR
        limit = ping_limit(self.rtt)
        deadline = self._clock() + limit
        stream = _Stream(0)
        try:
            # The limit is also the socket's read timeout: with None, a peer that went silent
            # would block this recv for ever, the very case the PING is there to catch.
            self._wait(stream, answered.is_set, deadline, limit)
        except TransportError:
            return CloseReason.PING_TIMEOUT
        finally:
            self._pings.pop(opaque, None)
        return None

    # -- one request --------------------------------------------------------------------------

    def send_request(
        self, exchange: Exchange, request: Request, timeout: Timeout
    ) -> H2ResponseHead:
        """Open a stream, send the request and wait for the response head.

        A request refused before it was processed (the connection stopped taking streams, a
        GOAWAY above its id, REFUSED_STREAM) sets ``exchange.unprocessed``: the pool may send it
        again on another connection whatever its method.
        """
        body = request.body
        stream = self._open_stream(exchange, request, end=not body, timeout=timeout)
        try:
            if body:
                self._send_body(exchange, stream, body, request, timeout)
            exchange.sent_at = sent_at = self._clock()
            self._wait_for(stream, lambda: stream.head is not None, request, timeout)
        except TransportError:
            exchange.unprocessed = stream.unprocessed
            raise
        exchange.response_started = True
        exchange.ttfb = ttfb = self._clock() - sent_at
        if ttfb < self.rtt:
            self.rtt = ttfb
        assert stream.head is not None
        return stream.head

    def _open_stream(
        self, exchange: Exchange, request: Request, end: bool, timeout: Timeout
    ) -> _Stream:
        headers = request_head(request)
        with self._lock:  # id, HPACK state and wire order agree: one step under the lock
            try:
                stream, data = self._table.open(self._proto, headers, end, self.accepting, _Stream)
            except StreamRefused as exc:
                exchange.unprocessed = True  # nothing was sent: any method may go elsewhere
                refused: ReadError | None = ReadError(str(exc), request=request)
            else:
                refused = None
                exchange.stream = stream
                exchange.stream_id = stream.id
                # One socket timeout for both directions (Python has one): the read timeout, so
                # that a request costs no settimeout call; writes here are small frames.
                self._set_timeout(timeout.read)
                self._out.append(data)
        if refused is not None:
            # The reader may have parsed a GOAWAY and not told the pool yet: tell it now, or
            # the retry would be handed this connection again (and again, within one GIL slice).
            if self._proto.goaway is not None:
                self._tell_goaway()
            raise refused
        exchange.wrote_any = True  # queued: from here on it may reach the server
        failure = self._flush()
        if failure is not None:
            raise failure
        return stream

    def read_all(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The whole body (flow-control credit is returned as it is read)."""
        pieces: list[bytes] = []
        while True:
            piece = self.read_body(exchange, request, timeout)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)

    def read_body(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The next piece of the body; b"" once the stream ended."""
        stream: _Stream = exchange.stream
        if not stream.chunks and not stream.ended:
            self._wait_for(stream, lambda: bool(stream.chunks) or stream.ended, request, timeout)
        chunks = stream.chunks
        if not chunks:
            self._forget(stream)
            return b""
        stream.chunks = []
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        owed, stream.owed = stream.owed, 0
        if stream.ended:
            self._forget(stream)
        if owed:
            self._acknowledge(stream.id, owed)
        return data

    def trailers(self, exchange: Exchange) -> list[tuple[bytes, bytes]] | None:
        stream: _Stream | None = exchange.stream
        return stream.trailers if stream is not None else None

    def close_early(
        self, exchange: Exchange, request: Request, timeout: Timeout, clock: Callable[[], float]
    ) -> CloseReason | None:
        """A streamed response closed before its end: reset the stream (CANCEL); the
        connection carries on for the others. Never a reason to close it."""
        stream: _Stream | None = exchange.stream
        if stream is not None:
            if stream.ended:
                self._forget(stream)
            else:
                self._reset(stream, h2p.ErrorCode.CANCEL, blocking=True)
        return None

    def abandon(self, exchange: Exchange) -> None:
        """Interrupted by an exception that was not the network's: reset the stream. If the
        interruption hit a socket write, the framing is broken and so is the connection."""
        if self._writer == threading.get_ident():
            self._fail(CloseReason.ABANDONED, None)
            return
        stream: _Stream | None = exchange.stream
        if stream is not None and not stream.ended:
            self._reset(stream, h2p.ErrorCode.CANCEL, blocking=True)

    def release_unread(self, exchange: Exchange) -> bool:
        """A streamed response was garbage-collected unread: reset its stream if that can be
        done without waiting (a finalizer must not block). False: keep the connection."""
        stream: _Stream | None = exchange.stream
        if stream is not None and not stream.ended:
            self._reset(stream, h2p.ErrorCode.CANCEL, blocking=False)
        return False

    # -- sending ------------------------------------------------------------------------------

    def _send_body(
        self,
        exchange: Exchange,
        stream: _Stream,
        body: bytes | Iterable[bytes],
        request: Request,
        timeout: Timeout,
    ) -> None:
        """DATA frames as the peer's windows allow; END_STREAM after the last piece."""
        pieces: Iterable[bytes] = (body,) if isinstance(body, bytes) else body
        for piece in pieces:
            view = memoryview(piece)
            while view:
                self._wait_for_window(stream, request, timeout)
                if stream.ended:  # the server answered before the upload ended (RFC 9113 §8.1)
                    return
                if stream.error is not None:
                    raise stream.error
                with self._lock:
                    try:
                        chunk = bytes(view[: self._proto.send_window(stream.id)])
                        if chunk:
                            self._out.append(self._proto.send_data(stream.id, chunk, False))
                    except h2p.LocalProtocolError:
                        # Closed for sending by what another thread is dispatching right now
                        # (a GOAWAY, a reset, RST_STREAM(NO_ERROR) after a complete answer):
                        # stop the upload; the reader's events say what became of the stream.
                        return
                failure = self._flush()
                if failure is not None:
                    raise failure
                view = view[len(chunk) :]
        with self._lock:
            if not stream.ended and stream.error is None and not self._proto.closed:
                try:
                    self._out.append(self._proto.end_stream(stream.id))
                except h2p.LocalProtocolError:
                    return  # closed meanwhile (see above)
        failure = self._flush()
        if failure is not None:
            raise failure

    def _wait_for_window(self, stream: _Stream, request: Request, timeout: Timeout) -> None:
        def credit() -> bool:
            if stream.ended or stream.error is not None:
                return True
            try:
                return self._proto.send_window(stream.id) > 0
            except h2p.LocalProtocolError:  # the stream was reset meanwhile
                return True

        if not credit():
            self._wait_for(stream, credit, request, timeout)

    def _flush(self) -> TransportError | None:
        """Send what is queued, unless another thread is sending: it sends ours too.

        Frames are queued in wire order under ``_lock`` (ids, HPACK and bytes agree) and
        written outside it, so threads whose frames arrive while one writes share its next
        write: one system call for many requests. A failed write fails the connection
        (a frame may be half sent) and is returned to the caller.
        """
        while self._out:
            if not self._write_lock.acquire(blocking=False):
                return None  # the writer loops until the queue is empty
            try:
                with self._lock:
                    out, self._out = self._out, []
                if out:
                    # An interruption inside sendall leaves _writer set: a frame may be half
                    # sent, and abandon() then fails the connection.
                    self._writer = threading.get_ident()
                    self._sock.sendall(out[0] if len(out) == 1 else b"".join(out))
                    self._writer = None
            except (TimeoutError, BlockingIOError):
                return self._write_failed(
                    CloseReason.TIMEOUT, f"writing to {self.origin} timed out", WriteTimeout
                )
            except (OSError, ValueError) as exc:  # ValueError: closed by another thread
                return self._write_failed(
                    CloseReason.NETWORK_ERROR, f"writing to {self.origin} failed: {exc}", WriteError
                )
            finally:
                self._write_lock.release()
        return None

    def _write_failed(
        self, reason: CloseReason, message: str, kind: type[TransportError]
    ) -> TransportError:
        self._writer = None
        self._fail(reason, message)
        return kind(message, may_have_reached_server=True)

    def _acknowledge(self, stream_id: int, n: int) -> None:
        with self._lock:
            if self._proto.closed:
                return
            try:
                out = self._proto.acknowledge(stream_id, n)
            except h2p.LocalProtocolError:
                return
            if not out:
                return
            self._out.append(out)
        self._flush()  # a failure is the connection's: its streams hear of it

    def _reset(self, stream: _Stream, code: int, blocking: bool) -> None:
        self._forget(stream)
        if not self._lock.acquire(blocking=blocking):
            return  # a finalizer on a busy connection: the stream stays open until it ends
        try:
            if not self._proto.closed:
                self._out.append(self._proto.reset_stream(stream.id, code))
        except h2p.LocalProtocolError:
            pass
        finally:
            self._lock.release()
        self._flush()

    # -- waiting and reading ------------------------------------------------------------------

    def _wait_for(
        self, stream: _Stream, ready: Callable[[], bool], request: Request, timeout: Timeout
    ) -> None:
        deadline = None if timeout.read is None else self._clock() + timeout.read
        try:
            self._wait(stream, ready, deadline, timeout.read)
        except TransportError as exc:
            if exc.request is None:
                exc.request = request
            if isinstance(exc, ReadTimeout) and stream.error is None:
                self._reset(stream, h2p.ErrorCode.CANCEL, blocking=True)
            raise

    def _wait(
        self,
        stream: _Stream,
        ready: Callable[[], bool],
        deadline: float | None,
        read_timeout: float | None,
    ) -> None:
        """Return once ``ready()``; read the socket meanwhile if nobody else does."""
        try:
            self._wait_loop(stream, ready, deadline, read_timeout)
        finally:
            # Woken to take over reading but our own data came first: pass the turn on, or
            # the others sleep with nobody reading.
            if self._waiting and not self._read_lock.locked():
                self._hand_over()

    def _wait_loop(
        self,
        stream: _Stream,
        ready: Callable[[], bool],
        deadline: float | None,
        read_timeout: float | None,
    ) -> None:
        waiting = self._waiting
        read_lock = self._read_lock
        while True:
            if stream.error is not None:
                raise stream.error
            if ready():
                return
            remaining = None if deadline is None else deadline - self._clock()
            if remaining is not None and remaining <= 0:
                raise ReadTimeout(
                    f"no response from {self.origin} within {read_timeout}s",
                    may_have_reached_server=True,
                )
            if read_lock.acquire(blocking=False):
                try:
                    self._read_until(stream, ready, remaining, read_timeout)
                finally:
                    read_lock.release()
                    self._hand_over()
                continue
            # Someone else reads: sleep until it hands us data or leaves. Registered before
            # the last checks, so neither its dispatch nor its leaving can be missed.
            signal = stream.signal
            if signal is None:
                signal = stream.signal = _thread.allocate_lock()
            signal.acquire(blocking=False)  # drop a stale signal: we check everything next
            waiting.add(stream)
            try:
                if stream.error is None and not ready() and read_lock.locked():
                    signal.acquire(timeout=-1 if remaining is None else remaining)
            finally:
                waiting.discard(stream)

    def _read_until(
        self,
        stream: _Stream,
        ready: Callable[[], bool],
        remaining: float | None,
        read_timeout: float | None,
    ) -> None:
        # Holding the read lock: read and dispatch until this stream is ready or failed. The
        # socket's timeout is the read timeout; ``_wait`` keeps the overall deadline.
        self._set_timeout(read_timeout)
        while stream.error is None and not ready():
            if self.close_reason is not None:
                stream.fail(ReadError(f"the connection to {self.origin} was closed"))
                return
            try:
                data = self._sock.recv(_RECV_SIZE)
            except (TimeoutError, BlockingIOError):
                raise ReadTimeout(
                    f"no response from {self.origin} within {read_timeout}s",
                    may_have_reached_server=True,
                ) from None
            except (OSError, ValueError) as exc:  # ValueError: closed by another thread
                self._fail(CloseReason.NETWORK_ERROR, f"reading from {self.origin} failed: {exc}")
                return
            if not data:
                self._fail(CloseReason.SERVER_CLOSED, f"{self.origin} closed the connection")
                return
            if not self._dispatch(data):
                return

    def _hand_over(self) -> None:
        # The reader left: wake one sleeper so that it takes over reading.
        for other in tuple(self._waiting):
            other.wake()
            return

    def _dispatch(self, data: bytes) -> bool:
        """Feed what arrived to the protocol and the streams. False if the connection failed."""
        self.last_received = self._clock()
        error: h2p.H2ProtocolError | None = None
        with self._lock:
            try:
                events = self._proto.receive(data)
            except h2p.H2ProtocolError as exc:
                events, error = exc.events, exc
            out = self._proto.data_to_send()
            if out:
                self._out.append(out)
        if out:
            self._flush()  # ACKs (and our GOAWAY after a protocol error)
        applied = self._table.apply(events)
        for stream_id, flow in applied.refunds:
            self._acknowledge(stream_id, flow)
        for opaque in applied.pings:
            answered = self._pings.get(opaque)
            if answered is not None:
                answered.set()
        if applied.settings is not None:
            self.stream_limit = max(applied.settings.max_concurrent_streams, 0)
        if error is not None:
            message = f"HTTP/2 protocol error from {self.origin}: {error}"
            self._fail(CloseReason.PROTOCOL_ERROR, message, error.error_code)
            return False
        if applied.goaway is not None:
            self._tell_goaway()
        elif applied.settings is not None:
            self._on_event(self, None)
        return True

    def _tell_goaway(self) -> None:
        with self._lock:
            if self._goaway_told:
                return
            self._goaway_told = True
        self._on_event(self, CloseReason.GOAWAY)

    def _forget(self, stream: _Stream) -> None:
        self._table.streams.pop(stream.id, None)

    # -- failure and closing ------------------------------------------------------------------

    def _fail(
        self, reason: CloseReason, message: str | None, error_code: int | None = None
    ) -> None:
        """The connection is done for: every stream fails, the pool is told, the socket closed.

        A protocol error reaches each request as ``H2ProtocolError`` with the code we sent in
        our GOAWAY (never retried: the server may have acted on it); anything else as a
        ``ReadError`` (a network failure, which the retry rules may allow for a reused one).
        Safe to call with ``_lock`` held elsewhere: nothing here waits for it.
        """
        self._table.fail_all(message or f"the connection to {self.origin} broke", error_code)
        if self.accepting:
            self._on_event(self, reason)
        self.close(reason)

    def close(self, reason: CloseReason) -> None:
        """Close the connection (exactly once): GOAWAY if it can be sent at once, then the socket.

        Threads blocked reading or writing it are woken (shutdown) and fail their streams.
        """
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.accepting = False
        if self._write_lock.acquire(blocking=False):  # nobody mid-frame: a GOAWAY fits
            try:
                if self._lock.acquire(blocking=False):
                    try:
                        if not self._proto.closed:
                            self._sock.setblocking(False)
                            self._sock.send(self._proto.close())
                    finally:
                        self._lock.release()
            except (OSError, ValueError):
                pass
            finally:
                self._write_lock.release()
        try:
            # The TCP socket's shutdown (TLSTransport's is that too): it wakes a blocked reader
            # without touching the TLS state another thread may be using.
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._table.fail_all(f"the connection to {self.origin} was closed ({reason.name})")

    def forget_after_fork(self) -> None:
        """In a forked child: close this process's copy of the socket, sending nothing (no
        GOAWAY, no TLS close_notify): the parent's connection goes on untouched."""
        if self.close_reason is not None:
            return
        self.close_reason = CloseReason.POOL_CLOSED
        self.accepting = False
        try:
            os.close(self._sock.detach())
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def _set_timeout(self, value: float | None) -> None:
        if value != self._timeout_set:
            self._timeout_set = value
            self._sock.settimeout(value)

    def __repr__(self) -> str:
        state = f"closed: {self.close_reason.name}" if self.close_reason else "open"
        return (
            f"<HTTP2Connection #{self.id} {self.origin} streams={self.in_flight}/"
            f"{self.stream_limit} requests={self.requests} {state}>"
        )


def start_http2(
    origin: Origin,
    sock: socket.socket,
    timings: DialInfo,
    clock: Callable[[], float],
    timeout: Timeout,
    on_event: EventCallback,
) -> HTTP2Connection:
    """A new HTTP/2 connection on a connected socket, its preface exchanged."""
    conn = HTTP2Connection(origin, sock, timings, clock, on_event)
    conn.start(timeout.connect)
    return conn
