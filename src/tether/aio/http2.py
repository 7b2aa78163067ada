"""One HTTP/2 connection for asyncio, shared by many tasks: streams, flow control, GOAWAY.

The protocol is `protocol.http2.H2Protocol` (sans-I/O), as in `sync.http2`; the event loop is
the reader. ``data_received`` feeds the protocol and dispatches its events to the streams, each
of which wakes its task through one future. The sync driver's two rules come for free here:

- **Wire order.** Allocating a stream id, HPACK-encoding and writing the HEADERS frame are one
  synchronous step (no ``await`` between them), so ids, HPACK state and the bytes on the wire
  agree whatever the tasks do.
- **Whoever waits, the loop reads.** No reader task, no read lock: a task waits only for its
  own stream's future.

A task cancelled while it owns a stream resets it (RST_STREAM(CANCEL)); the connection goes on
carrying the others. A GOAWAY, a SETTINGS change or a failure is reported to the pool through
``on_event``, so waiting requests go elsewhere at once; streams the server never processed
(above GOAWAY's last id, REFUSED_STREAM) are marked ``unprocessed`` and may be resent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from ..exceptions import (
    ConnectError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteTimeout,
)
from ..io.sockets import DialInfo
from ..lifecycle.exchange import Exchange
from ..lifecycle.rules import CloseReason, Limits, expiry, ping_due, ping_limit
from ..models import Origin, Request, Timeout
from ..protocol import http2 as h2p
from ..protocol.h2streams import H2ResponseHead, Inbox, StreamRefused, StreamTable, request_head
from .transport import BodyPieces, BufferedReads, Waiter, tls_facts

__all__ = ["AsyncHTTP2Connection"]

EventCallback = Callable[[Any, CloseReason | None], None]
_ids = itertools.count(2_000_001)  # distinct from other connection ids at a glance
_pings = itertools.count(1)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class _Stream(Inbox):
    """One stream's inbox, filled by ``data_received`` and drained by its task."""

    __slots__ = ("fut",)

    def __init__(self, stream_id: int) -> None:
        super().__init__(stream_id)
        self.fut: asyncio.Future[None] | None = None

    def wake(self) -> None:
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_result(None)


class AsyncHTTP2Connection(BufferedReads):
    """An HTTP/2 connection to one origin, owned by an `AsyncConnectionPool`."""

    multiplexed = True
    protocol = "h2"

    def __init__(self, origin: Origin, clock: Callable[[], float], on_event: EventCallback):
        self.id = next(_ids)
        self.origin = origin
        self._clock = clock
        self._on_event = on_event
        self._proto = h2p.H2Protocol()
        self._transport: asyncio.Transport | None = None
        self._table = StreamTable(origin)  # the streams, and what each event means for them
        self._ready = False  # the preface was exchanged: the pool knows this connection
        self._settings = _Stream(0)  # woken when the server's first SETTINGS arrive
        self._write = Waiter(asyncio.get_running_loop())
        self._pings: dict[bytes, _Stream] = {}  # our PINGs awaiting their answer
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.timings = DialInfo()
        self.tls: tuple[str | None, str | None, str | None] = (None, None, None)
        self.local_address = self.remote_address = ("", 0)
        self.created_at = self.idle_since = self.last_received = clock()
        self.requests = 0
        self.rtt = 0.0
        self.server_timeout: float | None = None
        self.server_max: int | None = None
        self.expires_at = float("inf")
        self.expiry_reason: CloseReason | None = None
        self.hangup_seen = False
        self.close_reason: CloseReason | None = None
        self.in_flight = 0
        self.accepting = True
        self.stop_reason: CloseReason | None = None
        self.stream_limit = self._proto.peer_max_concurrent_streams

    @property
    def released(self) -> bool:
        return self.lost.done()

    # -- set-up -------------------------------------------------------------------------------

    async def start(self, timings: DialInfo, timeout: float | None) -> None:
        """Send our preface and wait for the server's SETTINGS (see `sync.http2` for why)."""
        self.timings = timings
        self.rtt = timings.rtt  # the winner's handshake: no race delay
        self.local_address = timings.local_address
        self.remote_address = timings.remote_address
        transport = self._transport
        assert transport is not None
        self.tls = tls_facts(transport)
        settings = self._settings
        while not self._proto.peer_settings_received:
            if settings.error is not None:
                raise ConnectError(f"HTTP/2 set-up with {self.origin} failed: {settings.error}")
            try:
                await self._sleep(settings, timeout)
            except TimeoutError:
                raise ConnectError(
                    f"{self.origin} sent no HTTP/2 SETTINGS within {timeout}s"
                ) from None
        self._ready = True

    # -- what the event loop calls ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        # The preface goes first, before anything that arrived is read (and acknowledged).
        transport.write(self._proto.initiate())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.last_received = self._clock()
        self._dispatch(data)

    def eof_received(self) -> bool:
        idle = self.in_flight == 0
        reason = CloseReason.SERVER_CLOSED_IDLE if idle else CloseReason.SERVER_CLOSED
        self._fail(reason, f"{self.origin} closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self._write.fail(ConnectionResetError("the connection was closed"))
        if self.close_reason is None:
            self._fail(CloseReason.NETWORK_ERROR, f"the connection to {self.origin} broke: {exc}")

    def pause_writing(self) -> None:
        self._write.pause_writing()

    def resume_writing(self) -> None:
        self._write.resume_writing()

    # -- lifecycle questions the pool asks ----------------------------------------------------

    def go_idle(self, now: float, limits: Limits, learned: float | None) -> CloseReason | None:
        """Start an idle period: fix when it must end. A reason means: do not pool it at all."""
        self.idle_since = now
        self.expires_at, self.expiry_reason = expiry(self, limits, learned)
        return self.expiry_reason if self.expires_at <= now else None

    def check_idle(self) -> CloseReason | None:
        """The loop has read what an idle connection received (PING, SETTINGS, GOAWAY, EOF)."""
        if self.close_reason is not None:
            return self.close_reason
        if self._proto.goaway is not None or self._proto.closed:
            return CloseReason.GOAWAY
        return None

    def ping_due(self) -> bool:
        """Silent long enough that ``ping`` must prove it alive before reuse (``rules``)."""
        return ping_due(self._clock(), self.last_received)

    async def ping(self) -> CloseReason | None:
        """PING the server and wait for the answer (``rules.ping_limit``); None if it came."""
        opaque = next(_pings).to_bytes(8, "big")  # its own: another task may ping too
        answer = self._pings[opaque] = _Stream(0)
        try:
            self._send(self._proto.ping(opaque))
            await self._sleep(answer, ping_limit(self.rtt))
        except TimeoutError:
            return CloseReason.PING_TIMEOUT
        except h2p.LocalProtocolError:
            return CloseReason.PROTOCOL_ERROR
        finally:
            self._pings.pop(opaque, None)
        return self.check_idle()  # the answer, or the failure that woke us

    # -- one request --------------------------------------------------------------------------

    async def send_request(
        self, exchange: Exchange, request: Request, timeout: Timeout
    ) -> H2ResponseHead:
        """Open a stream, send the request and wait for the response head."""
        body = request.body
        stream = self._open_stream(exchange, request, end=not body)
        try:
            if body:
                await self._send_body(stream, body, request, timeout)
            exchange.sent_at = sent_at = self._clock()
            while stream.head is None:
                await self._wait_for(stream, request, timeout)
        except TransportError:
            exchange.unprocessed = stream.unprocessed
            raise
        exchange.response_started = True
        exchange.ttfb = ttfb = self._clock() - sent_at
        if ttfb < self.rtt:
            self.rtt = ttfb
        return stream.head

    def _open_stream(self, exchange: Exchange, request: Request, end: bool) -> _Stream:
        # Id, HPACK state and wire order agree: one synchronous step.
        transport = self._transport
        try:
            if transport is None or transport.is_closing():
                raise StreamRefused(f"the HTTP/2 connection to {self.origin} was closed")
            headers = request_head(request)
            stream, data = self._table.open(self._proto, headers, end, self.accepting, _Stream)
        except StreamRefused as exc:
            exchange.unprocessed = True  # nothing was sent: any method may go elsewhere
            raise ReadError(str(exc), request=request) from None
        exchange.stream = stream
        exchange.stream_id = stream.id
        assert transport is not None
        transport.write(data)
        exchange.wrote_any = True
        return stream

    async def _send_body(
        self, stream: _Stream, body: bytes | Iterable[bytes], request: Request, timeout: Timeout
    ) -> None:
        """DATA frames as the peer's windows allow; END_STREAM after the last piece."""
        pieces = BodyPieces(body)
        try:
            await self._send_pieces(stream, pieces, request, timeout)
        finally:
            await pieces.aclose()  # stopped early (or failed): the source's cleanup runs now

    async def _send_pieces(
        self, stream: _Stream, pieces: BodyPieces, request: Request, timeout: Timeout
    ) -> None:
        while (piece := await pieces.next()) is not None:
            view = memoryview(piece)
            while view:
                while not self._credit(stream):
                    await self._wait_for(stream, request, Timeout(read=timeout.write))
                if stream.ended:  # the server answered before the upload ended (RFC 9113 §8.1)
                    return
                if stream.error is not None:
                    raise stream.error
                chunk = bytes(view[: self._proto.send_window(stream.id)])
                self._send(self._proto.send_data(stream.id, chunk, False))
                view = view[len(chunk) :]
                await self._drain(request, timeout)
        if not stream.ended and stream.error is None and not self._proto.closed:
            self._send(self._proto.end_stream(stream.id))

    def _credit(self, stream: _Stream) -> bool:
        if stream.ended or stream.error is not None:
            return True
        try:
            return self._proto.send_window(stream.id) > 0
        except h2p.LocalProtocolError:  # the stream was reset meanwhile
            return True

    async def read_all(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The whole body (flow-control credit is returned as it is read)."""
        pieces: list[bytes] = []
        while True:
            piece = await self.read_body(exchange, request, timeout)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)

    async def read_body(self, exchange: Exchange, request: Request, timeout: Timeout) -> bytes:
        """The next piece of the body; b"" once the stream ended."""
        stream: _Stream = exchange.stream
        while not stream.chunks and not stream.ended:
            await self._wait_for(stream, request, timeout)
        chunks = stream.chunks
        if not chunks:
            self._table.streams.pop(stream.id, None)
            return b""
        stream.chunks = []
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        owed, stream.owed = stream.owed, 0
        if stream.ended:
            self._table.streams.pop(stream.id, None)
        if owed and not self._proto.closed:
            try:
                self._send(self._proto.acknowledge(stream.id, owed))
            except h2p.LocalProtocolError:
                pass  # a failing connection: data_received reports it
        return data

    def trailers(self, exchange: Exchange) -> list[tuple[bytes, bytes]] | None:
        stream: _Stream | None = exchange.stream
        return stream.trailers if stream is not None else None

    async def close_early(
        self, exchange: Exchange, request: Request, timeout: Timeout, clock: Callable[[], float]
    ) -> CloseReason | None:
        """A streamed response closed before its end: reset the stream; never a reason to
        close the connection."""
        self.abandon(exchange)
        return None

    def abandon(self, exchange: Exchange) -> None:
        """Interrupted (cancelled): reset the stream; the connection carries on."""
        stream: _Stream | None = exchange.stream
        if stream is None:
            return
        self._table.streams.pop(stream.id, None)
        if not stream.ended and stream.error is None:
            self._reset(stream)

    def release_unread(self, exchange: Exchange) -> bool:
        """A streamed response was garbage-collected unread: reset its stream, keep the
        connection."""
        self.abandon(exchange)
        return False

    def _reset(self, stream: _Stream) -> None:
        # A stream whose END_STREAM arrived needs no RST_STREAM (h2's server side even treats
        # one as a connection error).
        if self._proto.closed or self._proto.stream_ended_remote(stream.id):
            return
        try:
            self._send(self._proto.reset_stream(stream.id, h2p.ErrorCode.CANCEL))
        except h2p.LocalProtocolError:
            pass

    # -- waiting and writing ------------------------------------------------------------------

    async def _sleep(self, stream: _Stream, seconds: float | None) -> None:
        fut = asyncio.get_running_loop().create_future()
        stream.fut = fut
        timer = None if seconds is None else fut.get_loop().call_later(seconds, _expire, fut)
        try:
            await fut
        finally:
            stream.fut = None
            if timer is not None:
                timer.cancel()

    async def _wait_for(self, stream: _Stream, request: Request, timeout: Timeout) -> None:
        """Until the stream has news (or failed: raised); a timeout resets the stream."""
        if stream.error is None:
            try:
                await self._sleep(stream, timeout.read)
            except TimeoutError:
                self._table.streams.pop(stream.id, None)
                self._reset(stream)
                raise ReadTimeout(
                    f"no response from {self.origin} within {timeout.read}s",
                    request=request,
                    may_have_reached_server=True,
                ) from None
        if stream.error is not None:
            if stream.error.request is None:
                stream.error.request = request
            raise stream.error

    def _send(self, data: bytes) -> None:
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def _drain(self, request: Request, timeout: Timeout) -> None:
        try:
            await self._write.drained(timeout.write)
        except TimeoutError:
            raise WriteTimeout(
                f"writing to {self.origin} timed out after {timeout.write}s", request=request
            ) from None
        except OSError as exc:
            raise ReadError(f"the connection to {self.origin} broke: {exc}") from None

    # -- what arrived -------------------------------------------------------------------------

    def _dispatch(self, data: bytes) -> None:
        error: h2p.H2ProtocolError | None = None
        try:
            events = self._proto.receive(data)
        except h2p.H2ProtocolError as exc:
            events, error = exc.events, exc
        self._send(self._proto.data_to_send())
        applied = self._table.apply(events)
        for stream_id, flow in applied.refunds:  # streams nobody reads any more
            if not self._proto.closed:
                self._send(self._proto.acknowledge(stream_id, flow))
        for opaque in applied.pings:
            answer = self._pings.get(opaque)
            if answer is not None:
                answer.wake()
        if applied.settings is not None:
            self.stream_limit = max(applied.settings.max_concurrent_streams, 0)
            self._settings.wake()
        if error is not None:
            message = f"HTTP/2 protocol error from {self.origin}: {error}"
            self._fail(CloseReason.PROTOCOL_ERROR, message, error.error_code)
        elif self._ready and (applied.goaway is not None or applied.settings is not None):
            self._on_event(self, CloseReason.GOAWAY if applied.goaway is not None else None)

    # -- failure and closing ------------------------------------------------------------------

    def _fail(self, reason: CloseReason, message: str, error_code: int | None = None) -> None:
        """The connection is done for: every stream fails (see ``StreamTable.fail_all``), the
        pool is told, it is closed."""
        if self.close_reason is not None:
            return
        self._table.fail_all(message, error_code)
        self._settings.fail(RemoteProtocolError(message))
        for answer in self._pings.values():
            answer.wake()  # ping() then sees close_reason
        if self.accepting and self._ready:
            self._on_event(self, reason)  # the brain stops it (and closes it when empty)
        self.close(reason)

    def close(self, reason: CloseReason) -> None:
        """Close the connection (exactly once): GOAWAY, then the socket once it is flushed."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        self.accepting = False
        transport = self._transport
        if transport is not None and not transport.is_closing():
            if not self._proto.closed:
                transport.write(self._proto.close())
            transport.close()
        self._table.fail_all(f"the connection to {self.origin} was closed ({reason.name})")

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def __repr__(self) -> str:
        state = f"closed: {self.close_reason.name}" if self.close_reason else "open"
        return (
            f"<AsyncHTTP2Connection #{self.id} {self.origin} streams={self.in_flight}/"
            f"{self.stream_limit} requests={self.requests} {state}>"
        )
