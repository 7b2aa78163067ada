"""One HTTP/1.1 connection for asyncio: an `asyncio.Protocol` around the same protocol reader.

The event loop reads into a reused buffer (``BufferedReads``) and ``data_received`` gets what
arrived; it goes straight into the sans-I/O `ResponseReader` (no asyncio streams: they add a
buffer, a lock and a task switch per read).
A coroutine waiting for the head or the body sleeps on one future that ``data_received``
resolves. The record the pool's brain reads (``in_flight``, ``accepting``, ``stop_reason``,
``go_idle``, ``expires_at``...) and the facts written on each `Exchange` (``wrote_any``,
``response_started``, ``ttfb``) are those of `sync.http11.HTTP11Connection`.

An idle connection is always being read by the loop, so a server that closes it (or says
something nobody asked for) is noticed at once: ``on_idle_event`` tells the pool, which closes
the socket (no CLOSE_WAIT, no watcher thread).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from ..exceptions import ReadError, ReadTimeout, TransportError, WriteError, WriteTimeout
from ..io import resets
from ..io.sockets import DialInfo
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
from .transport import BodyPieces, BufferedReads, Waiter, tls_facts

__all__ = ["AsyncHTTP11Connection", "IdleEvent"]

IdleEvent = Callable[[Any, CloseReason], None]
# A streamed body is read from the socket only this far ahead of its reader (backpressure).
_READ_AHEAD = 1024 * 1024
_ids = itertools.count(1)


class AsyncHTTP11Connection(BufferedReads):
    """A persistent HTTP/1.1 connection to one origin (owned by an `AsyncConnectionPool`)."""

    multiplexed = False
    proxy_head: bytes | None = None  # see HTTP11Connection.proxy_head
    stream_limit = 1
    protocol = "http/1.1"

    def __init__(self, origin: Origin, clock: Callable[[], float], on_idle: IdleEvent) -> None:
        self.id = next(_ids)
        self.origin = origin
        self._clock = clock
        self._on_idle = on_idle
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self._wait = Waiter(loop)
        self._reader: ResponseReader | None = None
        self._exchange: Exchange | None = None
        self._error: TransportError | None = None  # what broke the current exchange
        self._eof = False
        self._eof_kept = False  # EOF before the response, transport kept to watch for a reset
        self._fastest_ttfb = 0.0  # of all exchanges (0: none yet), for the reset's wait
        self._idle_note: CloseReason | None = None  # what an idle connection heard
        self._first_byte = 0.0
        self._taken = 0  # body bytes handed to the caller (for the read-ahead bound)
        self._reading_all = False
        self._sent = False  # the whole request is written (a cut upload leaves it False)
        self._paused = False
        self.timings = DialInfo()
        self.tls: tuple[str | None, str | None, str | None] = (None, None, None)
        self.local_address = self.remote_address = ("", 0)
        self.created_at = self.idle_since = clock()
        self.requests = 0
        self.rtt = 0.0
        self.server_timeout: float | None = None
        self.server_max: int | None = None
        self.expires_at = float("inf")
        self.expiry_reason: CloseReason | None = None
        self.hangup_seen = False  # the brain's field; the loop reports hang-ups at once
        self.close_reason: CloseReason | None = None
        self.in_flight = 0
        self.accepting = True
        self.stop_reason: CloseReason | None = None
        self.ttfb = 0.0
        self.lost: asyncio.Future[None] = loop.create_future()

    @property
    def released(self) -> bool:
        """The loop has closed the socket (``lost`` is done)."""
        return self.lost.done()

    def started(self, timings: DialInfo) -> None:
        """The dial finished: record how (the transport is connected)."""
        self.timings = timings
        self.rtt = timings.rtt  # the winner's handshake: no race delay
        self.local_address = timings.local_address
        self.remote_address = timings.remote_address
        assert self._transport is not None
        self.tls = tls_facts(self._transport)

    # -- what the event loop calls ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        exchange = self._exchange
        if reader is None or exchange is None or self.in_flight == 0:
            self._heard_while_idle(CloseReason.UNSOLICITED_DATA)
            return
        if not exchange.response_started:
            exchange.response_started = True
            self._first_byte = self._clock()
        try:
            reader.feed(data)
        except TransportError as exc:
            self._error = exc
        if not self._reading_all and reader.body_received - self._taken > _READ_AHEAD:
            self._pause()
        self._wait.wake()

    def eof_received(self) -> bool:
        self._eof = True
        exchange, reader = self._exchange, self._reader
        in_exchange = exchange is not None and reader is not None and self.in_flight > 0
        if in_exchange and reader is not None and reader.bytes_received == 0:
            assert exchange is not None
            exchange.eof_first = True
            if exchange.watch_reset and exchange.one_send and exchange.reused:
                sock = self._transport.get_extra_info("socket") if self._transport else None
                exchange.one_segment = exchange.one_send <= resets.segment_size(sock)
            # Keep the socket open a moment to see whether a reset follows (_race).
            self._eof_kept = exchange.one_segment
        self._ended(None)
        return self._eof_kept  # otherwise let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if not self._eof:
            self._eof = True
            self._ended(exc)
        self._wait.fail(ConnectionResetError("the connection was closed"))

    def pause_writing(self) -> None:
        self._wait.pause_writing()

    def resume_writing(self) -> None:
        self._wait.resume_writing()

    def _ended(self, exc: Exception | None) -> None:
        reader = self._reader
        if self.close_reason is not None:
            return
        if reader is None or self._exchange is None or self.in_flight == 0:
            self._heard_while_idle(CloseReason.SERVER_CLOSED_IDLE)
            return
        self.accepting = False
        self.stop_reason = CloseReason.SERVER_CLOSED
        if self._error is None:
            try:
                if exc is not None:
                    raise ReadError(f"reading the response from {self.origin} failed: {exc}")
                if reader.bytes_received == 0:
                    raise ReadError(f"{self.origin} closed the connection without a response")
                reader.feed_eof()
            except TransportError as error:
                self._error = error
        self._wait.wake()

    def _heard_while_idle(self, reason: CloseReason) -> None:
        if self._idle_note is None and self.close_reason is None:
            self._idle_note = reason
            if self.in_flight == 0:
                self._on_idle(self, reason)

    def _pause(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _resume(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    # -- lifecycle questions the pool asks ----------------------------------------------------

    def go_idle(self, now: float, limits: Limits, learned: float | None) -> CloseReason | None:
        """Start an idle period: fix when it must end. A reason means: do not pool it at all."""
        self.idle_since = now
        self.expires_at, self.expiry_reason = expiry(self, limits, learned)
        return self.expiry_reason if self.expires_at <= now else None

    def check_idle(self) -> CloseReason | None:
        """The liveness check on checkout: the loop has read everything that arrived."""
        if self._idle_note is not None:
            return self._idle_note
        transport = self._transport
        if self._eof or transport is None or transport.is_closing():
            return CloseReason.SERVER_CLOSED_IDLE
        return None

    # -- one request --------------------------------------------------------------------------

    async def send_request(
        self, exchange: Exchange, request: Request, timeout: Timeout
    ) -> ResponseHead:
        """Write ``request`` and wait for the end of the response head (see the sync driver)."""
        transport = self._transport
        if transport is None or self._eof or transport.is_closing() or self._idle_note:
            raise ReadError(f"the connection to {self.origin} was closed", request=request)
        self.accepting = False  # until a complete, persistent response says otherwise
        self.stop_reason = CloseReason.NOT_PERSISTENT
        reader = self._reader
        head_request = request.method == "HEAD"
        if reader is None:
            reader = self._reader = ResponseReader(head_request=head_request)
        else:
            reader.restart(head_request=head_request)
        self._exchange = exchange
        self._error = None
        self._taken = 0
        self._reading_all = False
        self._sent = False
        data, wants_close, _ = request_bytes(request, self.proxy_head)  # checked there
        body = request.body
        transport.write(data)
        exchange.wrote_any = True
        if exchange.watch_reset and self._one_send(transport, body):
            exchange.one_send = len(data)
        if body is not None and not isinstance(body, bytes):
            await self._write_stream(body, request, timeout)
        elif self._wait.write_paused:
            await self._drain(request, timeout)
        self._sent = True
        exchange.sent_at = sent_at = self._clock()
        try:
            while reader.head is None:
                await self._receive(request, timeout)
        except ReadError:
            if self._eof_kept:
                await self._race(exchange, timeout.read)
            raise
        self.ttfb = exchange.ttfb = max(self._first_byte - sent_at, 0.0)
        if self.ttfb < self.rtt:
            self.rtt = self.ttfb
        if self._fastest_ttfb == 0.0 or self.ttfb < self._fastest_ttfb:
            self._fastest_ttfb = self.ttfb
        head = reader.head
        self._learn(head)
        if wants_close:
            head.keep_alive = False
        return head

    def _one_send(self, transport: asyncio.Transport, body: object) -> bool:
        # All of it taken by the one send() the transport tries at once (nothing left
        # buffered). Plain TCP only: asyncio's TLS transport hides how its records went out.
        if body is not None and not isinstance(body, bytes):
            return False
        return self.tls[0] is None and not transport.get_write_buffer_size()

    async def _race(self, exchange: Exchange, read_timeout: float | None) -> None:
        """EOF came before any response byte: watch a moment for the reset that proves the
        server closed before our request arrived (``rules.closed_before_request``; see the
        sync driver for the wait). The loop no longer reads this socket: poll it."""
        transport = self._transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return
        loop = asyncio.get_running_loop()
        wait = reset_wait(max(self.timings.rtt, self._fastest_ttfb))
        deadline = loop.time() + (wait if read_timeout is None else min(wait, read_timeout))
        while not resets.reset_pending(sock):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.001))
        exchange.reset_after_eof = True

    def _learn(self, head: ResponseHead) -> None:
        if head.keep_alive_timeout is not None:
            self.server_timeout = head.keep_alive_timeout
        if head.keep_alive_max is not None:
            limit = self.requests + head.keep_alive_max - 1  # see sync.http11 for why
            if self.server_max is None or limit < self.server_max:
                self.server_max = limit

    async def read_all(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The rest of the body, read to the end of the response."""
        reader = self._reader
        assert reader is not None
        if not reader.complete:
            self._reading_all = True
            self._resume()
            while not reader.complete:
                await self._receive(request, timeout)
        self._response_done(reader)
        return reader.take_body()

    async def read_body(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The next piece of the body; b"" once the response is complete."""
        reader = self._reader
        assert reader is not None
        data = reader.take_body()
        while not data and not reader.complete:
            self._resume()
            await self._receive(request, timeout)
            data = reader.take_body()
        self._taken += len(data)
        if reader.body_received - self._taken <= _READ_AHEAD:
            self._resume()
        if reader.complete and not data:
            self._response_done(reader)
        return data

    def _response_done(self, reader: ResponseReader) -> None:
        head = reader.head
        assert head is not None
        self.accepting = head.keep_alive and reader.reusable and not self._eof

    def trailers(self, exchange: Exchange) -> list[tuple[bytes, bytes]] | None:
        """HTTP/1.1 trailers are read and dropped by the reader."""
        return None

    async def close_early(
        self, exchange: Exchange, request: Request, timeout: Timeout, clock: Callable[[], float]
    ) -> CloseReason | None:
        """A streamed response closed before its end: drain it if little is left and it comes
        quickly (``rules.should_drain``). None: fit for reuse; a reason: must be closed."""
        reader = self._reader
        head = reader.head if reader is not None else None
        if reader is None or head is None:
            return CloseReason.BODY_NOT_CONSUMED
        if reader.complete:
            self._response_done(reader)
            return None if self.accepting else self.stop_reason
        if not should_drain(
            persistent=head.keep_alive and reader.reusable,
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
                piece = await self.read_body(exchange, request, Timeout(read=remaining))
                if not piece:
                    return None if self.accepting else self.stop_reason
                drained += len(piece)
        except TransportError:
            pass
        return CloseReason.BODY_NOT_CONSUMED

    def release_unread(self, exchange: Exchange) -> bool:
        """A streamed response was garbage-collected unread: the socket must be closed."""
        self.accepting = False
        self.stop_reason = CloseReason.BODY_NOT_CONSUMED
        return True

    def abandon(self, exchange: Exchange) -> None:
        """The exchange was interrupted (cancelled): reusable only if the whole request was
        written and its response was complete and persistent (a server may answer before an
        upload ends); otherwise the connection's state is unknown and it is closed."""
        reader = self._reader
        if self._sent and reader is not None and reader.complete and reader.head is not None:
            self._response_done(reader)
            if self.accepting:
                return
        self.accepting = False
        self.stop_reason = CloseReason.ABANDONED

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def close(self, reason: CloseReason) -> None:
        """Close the socket (exactly once) and remember why."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.accepting = False
        if self._transport is not None:
            self._transport.abort()  # nothing left to flush: the exchange is over

    # -- waiting ------------------------------------------------------------------------------

    async def _receive(self, request: Request, timeout: Timeout) -> None:
        """Wait for the next bytes (or the end); raise what broke the exchange."""
        if self._error is None:
            try:
                await self._wait.wait(timeout.read)
            except TimeoutError:
                raise ReadTimeout(
                    f"no response bytes from {self.origin} within {timeout.read}s",
                    request=request,
                    may_have_reached_server=True,
                ) from None
            except OSError as exc:
                self._error = ReadError(f"reading the response from {self.origin} failed: {exc}")
        error = self._error
        if error is not None:
            error.request = request
            error.may_have_reached_server = True
            raise error

    async def _drain(self, request: Request, timeout: Timeout) -> None:
        try:
            await self._wait.drained(timeout.write)
        except TimeoutError:
            raise WriteTimeout(
                f"writing the request to {self.origin} timed out after {timeout.write}s",
                request=request,
                may_have_reached_server=True,
            ) from None
        except OSError as exc:
            raise WriteError(
                f"writing the request to {self.origin} failed: {exc}",
                request=request,
                may_have_reached_server=True,
            ) from None

    async def _write_stream(self, body: Iterable[bytes], request: Request, t: Timeout) -> None:
        """Send an iterable body: chunked, or as is when the caller declared its length."""
        pieces = BodyPieces(body)
        try:
            await self._write_pieces(pieces, request, t)
        finally:
            await pieces.aclose()  # stopped early (or failed): the source's cleanup runs now

    async def _write_pieces(self, pieces: BodyPieces, request: Request, t: Timeout) -> None:
        transport = self._transport
        assert transport is not None
        declared = request.declared_length
        sent = 0
        while (piece := await pieces.next()) is not None:
            if transport.is_closing():
                raise WriteError(
                    f"the connection to {self.origin} closed while sending the request body",
                    request=request,
                    may_have_reached_server=True,
                )
            if declared is None:
                if piece:
                    transport.write(encode_chunk(piece))
            else:
                sent += len(piece)
                if sent > declared:
                    break
                transport.write(piece)
            if self._wait.write_paused:
                await self._drain(request, t)
        if declared is None:
            transport.write(encode_chunk(b""))
        elif sent != declared:
            raise WriteError(
                f"the request body's iterator produced {'more than ' if sent > declared else ''}"
                f"{sent} bytes, its Content-Length says {declared}; the connection is closed",
                request=request,
                may_have_reached_server=True,
            )
        if self._wait.write_paused:
            await self._drain(request, t)

    def __repr__(self) -> str:
        state = f"closed: {self.close_reason.name}" if self.close_reason else "open"
        return f"<AsyncHTTP11Connection #{self.id} {self.origin} requests={self.requests} {state}>"
