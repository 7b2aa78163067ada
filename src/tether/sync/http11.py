"""One HTTP/1.1 connection: a socket, the protocol reader, and the facts its lifecycle needs.

A connection carries one exchange at a time (``stream_limit`` 1). The pool's brain decides
whether to reuse it (through ``go_idle``, ``expires_at``, ``accepting`` and the liveness check
``check_idle``); the connection only does the I/O and keeps the record: when it was made, how
many requests it carried, when it went idle, what the server announced in Keep-Alive, how long
a round trip takes. What happened to one request is written on its ``Exchange``.
"""

from __future__ import annotations

import itertools
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator

from ..exceptions import (
    ReadError,
    ReadTimeout,
    TransportError,
    WriteError,
    WriteTimeout,
)
from ..io import forksafety, resets
from ..io.sockets import DialInfo, idle_socket_state
from ..io.tlsbio import TLSTransport
from ..lifecycle.exchange import Exchange
from ..lifecycle.rules import (
    DRAIN_LIMIT,
    DRAIN_TIMEOUT,
    CloseReason,
    Limits,
    expiry,
    reset_wait,
    should_drain,
)
from ..models import Origin, Request, Timeout
from ..protocol.http11 import ResponseHead, ResponseReader, encode_chunk, request_bytes

__all__ = ["HTTP11Connection"]

_RECV_SIZE = 65536
_ids = itertools.count(1)


def _nothing_buffered() -> int:
    return 0


class HTTP11Connection:
    """A persistent HTTP/1.1 connection to one origin (owned by a pool)."""

    # Set by the pool on a connection to a forward proxy: requests go in absolute-form with
    # these header lines (Proxy-Authorization) added; None for a connection to the origin.
    proxy_head: bytes | None = None

    def __init__(
        self,
        origin: Origin,
        sock: socket.socket,
        timings: DialInfo,
        clock: Callable[[], float],
    ) -> None:
        self.id = next(_ids)
        self.origin = origin
        self.timings = timings
        self._sock = sock
        self._clock = clock
        self.fd = sock.fileno()
        self._poller = select.poll()
        self._poller.register(self.fd, select.POLLIN)
        # Blocking mode with kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO), TLS included (TLS runs
        # over memory BIOs, so OpenSSL never retries a timed-out read): Python's own timeout
        # mode polls before every send and recv, two extra system calls per request.
        self._timeouts: dict[int, float | None] = {}
        sock.settimeout(None)
        # TLS bytes buffered where a poll cannot see them (0 for a plain socket).
        self._buffered: Callable[[], int] = (
            sock.pending if isinstance(sock, TLSTransport) else _nothing_buffered
        )
        self.created_at = clock()
        self.idle_since = self.created_at
        self.requests = 0
        # Round-trip estimate: the TCP handshake, then the fastest first byte seen.
        self.rtt = timings.rtt  # the winner's handshake: no race delay
        self._fastest_ttfb = 0.0  # of all exchanges (0: none yet); see _race
        self.server_timeout: float | None = None
        self.server_max: int | None = None
        self.expires_at = float("inf")
        self.expiry_reason: CloseReason | None = None
        self.watched = False  # registered with the idle watcher (by the pool)
        self.hangup_seen = False  # the watcher reported a hang-up while it was busy
        self.close_reason: CloseReason | None = None
        # What the pool's brain reads and counts (see lifecycle.poolstate.Pooled).
        self.in_flight = 0
        self.accepting = True
        self.stop_reason: CloseReason | None = None
        self.ttfb = 0.0  # of the latest exchange
        self._reader: ResponseReader | None = None
        self.local_address = timings.local_address
        self.remote_address = timings.remote_address
        self.tls: tuple[str | None, str | None, str | None] = (
            sock.tls_info() if isinstance(sock, TLSTransport) else (None, None, None)
        )
        forksafety.register_connection(self)

    # -- lifecycle questions the pool asks ----------------------------------------------------

    def go_idle(self, now: float, limits: Limits, learned: float | None) -> CloseReason | None:
        """Start an idle period: fix when it must end. A reason means: do not pool it at all."""
        self.idle_since = now
        self.expires_at, self.expiry_reason = expiry(self, limits, learned)
        return self.expiry_reason if self.expires_at <= now else None

    def check_idle(self) -> CloseReason | None:
        """The liveness check on checkout: None if the socket is fit for a request."""
        if self.close_reason is not None:  # forgotten after a fork: its fd may be another's
            return self.close_reason
        if not self._poller.poll(0) and not self._buffered():  # the common case: quiet
            return None
        state = idle_socket_state(self._sock, self._poller)
        if state == "ok":
            return None
        return CloseReason.SERVER_CLOSED_IDLE if state == "closed" else CloseReason.UNSOLICITED_DATA

    # -- one request --------------------------------------------------------------------------

    multiplexed = False
    stream_limit = 1
    protocol = "http/1.1"

    def send_request(self, exchange: Exchange, request: Request, timeout: Timeout) -> ResponseHead:
        """Write ``request`` and read up to the end of the response head.

        On failure raises a TransportError; the exchange's ``wrote_any`` and
        ``response_started`` then tell the pool whether a retry is allowed.
        """
        data, wants_close, declared = request_bytes(request, self.proxy_head)  # checked there
        self.accepting = False  # until a complete, persistent response says otherwise
        self.stop_reason = CloseReason.NOT_PERSISTENT
        reader = self._reader
        if reader is None:
            reader = self._reader = ResponseReader(head_request=request.method == "HEAD")
        else:
            reader.restart(head_request=request.method == "HEAD")
        self._set_timeout(socket.SO_SNDTIMEO, timeout.write)
        early = self._write_request(exchange, request, data, declared, timeout)
        if early is not None:
            return early
        exchange.sent_at = sent_at = self._clock()
        self._set_timeout(socket.SO_RCVTIMEO, timeout.read)
        self._receive(exchange, reader, request, timeout)
        self.ttfb = exchange.ttfb = self._clock() - sent_at  # to the first response bytes
        while reader.head is None:
            self._receive(exchange, reader, request, timeout)
        if self.ttfb < self.rtt:
            self.rtt = self.ttfb  # the fastest exchange seen: least server think time in it
        if self._fastest_ttfb == 0.0 or self.ttfb < self._fastest_ttfb:
            self._fastest_ttfb = self.ttfb
        head = reader.head
        if head.keep_alive_timeout is not None:
            self.server_timeout = head.keep_alive_timeout
        if head.keep_alive_max is not None:
            # Servers disagree on what max counts (Apache: requests left; Node and others: a
            # fixed total). requests + max - 1 is safe under both, and it only ever decreases.
            limit = self.requests + head.keep_alive_max - 1
            if self.server_max is None or limit < self.server_max:
                self.server_max = limit
        if wants_close:
            head.keep_alive = False
        return head

    def _write_request(
        self,
        exchange: Exchange,
        request: Request,
        data: bytes,
        declared: int | None,
        timeout: Timeout,
    ) -> ResponseHead | None:
        """Write the request; if the write fails, the response the server sent before it closed
        (a 413 or 401 refusing an upload), as curl and httpcore report it."""
        body = request.body
        try:
            whole = self._write(exchange, data, timeout.write)
            if body is not None and not isinstance(body, bytes):
                whole = False
                self._write_stream(exchange, _pieces(body), declared, timeout.write)
            if exchange.watch_reset and whole:
                sock = self._sock  # TLS: the one record's ciphertext is what must fit
                tls = isinstance(sock, TLSTransport)
                exchange.one_send = sock.last_transmit if tls else len(data)  # type: ignore[attr-defined]
        except _BodyFailed as failed:
            raise failed.error from None  # the caller's body failed (a disk read), as it is
        except (TimeoutError, BlockingIOError):  # BlockingIOError: a kernel timeout
            raise WriteTimeout(
                f"writing the request to {self.origin} timed out after {timeout.write}s",
                request=request,
                may_have_reached_server=exchange.wrote_any,
            ) from None
        except OSError as exc:
            early = self._early_response(exchange)
            if early is None:
                raise WriteError(
                    f"writing the request to {self.origin} failed: {exc}",
                    request=request,
                    may_have_reached_server=exchange.wrote_any,
                ) from None
            return early
        return None

    def _race(self, exchange: Exchange, read_timeout: float | None) -> None:
        """EOF before any response byte: record whether a reset follows (the first-contact
        race, ``rules.closed_before_request``). Watched only when the verdict could be yes.

        The wait is a couple of round trips: the handshake's, or the fastest first byte if
        slower (a proxy or load balancer answers the handshake itself, the reset comes from
        further away); at most ``rules.reset_wait``'s cap and the read timeout, only on this
        failing path.
        """
        exchange.eof_first = True
        if exchange.watch_reset and exchange.one_send and exchange.reused:
            exchange.one_segment = exchange.one_send <= resets.segment_size(self._sock)
        if exchange.one_segment:
            wait = reset_wait(max(self.timings.rtt, self._fastest_ttfb))
            if read_timeout is not None:
                wait = min(wait, read_timeout)
            exchange.reset_after_eof = resets.wait_reset(self._sock, wait)

    def _early_response(self, exchange: Exchange) -> ResponseHead | None:
        """The head of a response that had already arrived when a write failed, if any."""
        reader = self._reader
        assert reader is not None
        try:
            while reader.head is None and self._poller.poll(0):
                data = self._sock.recv(_RECV_SIZE)
                if not data:
                    break
                reader.feed(data)
        except (OSError, TransportError):
            return None
        head = reader.head
        if head is None:
            return None
        exchange.response_started = True
        head.keep_alive = False  # the request was cut short: the connection cannot go on
        return head

    def read_all(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The rest of the body, read to the end of the response."""
        reader = self._reader
        assert reader is not None
        while not reader.complete:
            self._receive(exchange, reader, request, timeout)
        self._response_done(reader)
        return reader.take_body()

    def read_body(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The next piece of the body; b"" once the response is complete."""
        reader = self._reader
        assert reader is not None
        data = reader.take_body()
        if not data and not reader.complete:
            self._set_timeout(socket.SO_RCVTIMEO, timeout.read)
        while not data and not reader.complete:
            self._receive(exchange, reader, request, timeout)
            data = reader.take_body()
        if reader.complete and not data:
            self._response_done(reader)
        return data

    def _response_done(self, reader: ResponseReader) -> None:
        head = reader.head
        assert head is not None
        self.accepting = head.keep_alive and reader.reusable

    def trailers(self, exchange: Exchange) -> None:
        """HTTP/1.1 trailers are read and dropped by the reader."""
        return None

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def close_early(
        self, exchange: Exchange, request: Request, timeout: Timeout, clock: Callable[[], float]
    ) -> CloseReason | None:
        """A streamed response is closed before its end: keep the connection if cheap.

        What is left is read if it is little and arrives quickly (``rules.should_drain``);
        None means the connection is fit for reuse, a reason that it must be closed.
        """
        reader = self._reader
        head = reader.head if reader is not None else None
        if reader is None or head is None:
            return CloseReason.BODY_NOT_CONSUMED
        if reader.complete:  # nothing was left (HEAD, 204, 304, or read to the end)
            self._response_done(reader)
            return None if self.accepting else self.stop_reason
        persistent = head.keep_alive and reader.reusable
        if not should_drain(
            persistent=persistent,
            content_length=head.content_length,
            chunked=head.chunked,
            received=reader.body_received,
        ):
            return CloseReason.BODY_NOT_CONSUMED
        deadline = clock() + min(DRAIN_TIMEOUT, timeout.read or DRAIN_TIMEOUT)
        drained = 0
        try:
            while drained <= DRAIN_LIMIT:
                remaining = deadline - clock()
                if remaining <= 0:
                    break
                piece = self.read_body(exchange, request, Timeout(read=remaining))
                if not piece:
                    return None if self.accepting else self.stop_reason
                drained += len(piece)
        except TransportError:
            pass
        return CloseReason.BODY_NOT_CONSUMED

    def release_unread(self, exchange: Exchange) -> bool:
        """A streamed response was garbage-collected unread: the socket must be closed (by the
        caller, now: a finalizer cannot wait for a drain)."""
        self.accepting = False
        self.stop_reason = CloseReason.BODY_NOT_CONSUMED
        return True

    def abandon(self, exchange: Exchange) -> None:
        """The exchange was interrupted (not by the network): the connection's state is unknown."""
        self.accepting = False
        self.stop_reason = CloseReason.ABANDONED

    def forget_after_fork(self) -> None:
        """In a forked child: close this process's copy of the socket, sending nothing.

        The parent still has the socket, so closing our descriptor sends no FIN; detaching
        first means no TLS shutdown (close_notify) either, just ``close(fd)``.
        """
        if self.close_reason is not None:
            return
        self.close_reason = CloseReason.POOL_CLOSED  # the child's pool no longer has it
        self.accepting = False
        try:
            os.close(self._sock.detach())
        except OSError:
            pass

    def close(self, reason: CloseReason) -> None:
        """Close the socket (exactly once) and remember why."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.accepting = False
        self._sock.close()

    # -- I/O ----------------------------------------------------------------------------------

    def _set_timeout(self, which: int, value: float | None) -> None:
        if self._timeouts.get(which, -1.0) == value:
            return
        self._timeouts[which] = value
        seconds = 0.0 if value is None else max(value, 1e-6)  # 0 means "never" to the kernel
        whole = int(seconds)
        timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
        self._sock.setsockopt(socket.SOL_SOCKET, which, timeval)

    def _write(self, exchange: Exchange, data: bytes, timeout: float | None) -> bool:
        """Send all of ``data`` within ``timeout`` seconds, however many send calls it takes.
        True if the first call took all of it.

        A socket's timeout (SO_SNDTIMEO, or Python's for TLS) bounds each send call, and a
        slow reader lets each one make a little progress: so the remaining time is set again
        before each further call. Most writes take one call and pay nothing extra.
        """
        started = time.monotonic()
        # send() reports exactly what went out, so a failure in the first means nothing did.
        sent = self._sock.send(data)
        exchange.wrote_any = True
        if sent == len(data):
            return True
        view = memoryview(data)
        deadline = None if timeout is None else started + timeout
        which = socket.SO_SNDTIMEO
        while sent < len(view):
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"write timeout of {timeout}s")
                self._set_timeout(which, remaining)
            sent += self._sock.send(view[sent:])
        if deadline is not None:
            self._set_timeout(which, timeout)  # the next write starts with the whole timeout
        return False

    def _write_stream(
        self, exchange: Exchange, body: Iterable[bytes], declared: int | None, timeout: float | None
    ) -> None:
        """Send an iterable body: chunked, or as is when the caller declared its length.

        The write timeout bounds the sending of each piece, not the wait for the iterator.
        """
        if declared is None:
            for piece in body:
                if piece:
                    self._write(exchange, encode_chunk(piece), timeout)
            self._write(exchange, encode_chunk(b""), timeout)
            return
        sent = 0
        for piece in body:
            sent += len(piece)
            if sent > declared:
                break
            self._write(exchange, piece, timeout)
        if sent != declared:
            raise BrokenPipeError(
                f"the request body's iterator produced {'more than ' if sent > declared else ''}"
                f"{sent} bytes, its Content-Length says {declared}; the connection is closed"
            )

    def _receive(
        self, exchange: Exchange, reader: ResponseReader, request: Request, timeout: Timeout
    ) -> None:
        try:
            data = self._sock.recv(_RECV_SIZE)
        except (TimeoutError, BlockingIOError):  # BlockingIOError: a kernel timeout
            raise ReadTimeout(
                f"no response bytes from {self.origin} within {timeout.read}s",
                request=request,
                may_have_reached_server=True,
            ) from None
        except OSError as exc:
            raise ReadError(
                f"reading the response from {self.origin} failed: {exc}",
                request=request,
                may_have_reached_server=True,
            ) from None
        try:
            if data:
                exchange.response_started = True
                reader.feed(data)
            elif reader.bytes_received == 0:
                self._race(exchange, timeout.read)
                raise ReadError(
                    f"{self.origin} closed the connection without sending a response",
                    request=request,
                    may_have_reached_server=True,
                )
            else:
                reader.feed_eof()
        except TransportError as exc:
            exc.request = request
            exc.may_have_reached_server = True
            raise

    def __repr__(self) -> str:
        state = f"closed: {self.close_reason.name}" if self.close_reason else "open"
        return f"<HTTP11Connection #{self.id} {self.origin} requests={self.requests} {state}>"


class _BodyFailed(Exception):
    """The request body's own iterator raised OSError (not the socket): carried past the
    handler that turns socket errors into WriteError."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _pieces(body: Iterable[bytes]) -> Iterator[bytes]:
    """``body``'s pieces, with an OSError it raises marked as the body's, not the socket's."""
    iterator = iter(body)
    while True:
        try:
            piece = next(iterator)
        except StopIteration:
            return
        except OSError as exc:
            raise _BodyFailed(exc) from exc
        yield piece
