"""What each HTTP/2 event means for the streams of one connection, for both bodies.

``H2Protocol`` turns bytes into events; ``StreamTable.apply`` turns events into stream state:
a head, body pieces with their flow-control cost, trailers, the end, or a typed error
(a reset; a GOAWAY above the stream's id, which means "never processed"). The threaded and
the asyncio drivers differ only in how a stream's owner sleeps and is woken (``Inbox.wake``)
and in the I/O they do with what ``apply`` reports back. No socket, no clock, no lock.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..exceptions import (
    H2ProtocolError,
    LocalProtocolError,
    ReadError,
    StreamReset,
    TransportError,
)
from ..models import Origin, Request
from .h2events import (
    Data,
    Event,
    GoAway,
    PingAcked,
    ResponseHeaders,
    SettingsChanged,
    Trailers,
    WindowUpdated,
)
from .h2events import StreamReset as ResetEvent
from .h2frames import ErrorCode
from .h2headers import request_headers
from .http2 import H2Protocol

__all__ = [
    "Applied",
    "H2ResponseHead",
    "Inbox",
    "StreamRefused",
    "StreamTable",
    "code_name",
    "request_head",
]


def request_head(request: Request) -> list[tuple[bytes, bytes]]:
    """A request's HTTP/2 header list; a bytes body gets its ``content-length``."""
    url = request.url
    fields = request.wire_headers().lower_items()
    body = request.body
    if isinstance(body, bytes) and body and not request.wire_headers().get("content-length"):
        fields.append(("content-length", str(len(body))))
    return request_headers(request.method, url.origin.scheme, url.host_header, url.target, fields)


class StreamRefused(Exception):
    """No stream could be opened; nothing was sent, so any method may go elsewhere."""


class H2ResponseHead:
    """A response's status and headers as HTTP/2 delivered them."""

    __slots__ = ("raw_headers", "status")

    http_version = "HTTP/2"
    has_body = True

    def __init__(self, status: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.raw_headers = raw_headers

    def has_header(self, name: bytes) -> bool:
        """Is there a header ``name`` (lower case, as HTTP/2 field names are)?"""
        return any(n == name for n, _ in self.raw_headers)

    @property
    def reason(self) -> str:
        """HTTP/2 has no reason phrase; the standard one for the status."""
        try:
            return http.HTTPStatus(self.status).phrase
        except ValueError:
            return ""


class Inbox:
    """One stream's inbox, filled from events and drained by its owner. Bodies subclass it
    to say how the owner is woken (``wake``)."""

    __slots__ = ("chunks", "ended", "error", "head", "id", "owed", "trailers", "unprocessed")

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.head: H2ResponseHead | None = None
        self.chunks: list[bytes] = []
        self.owed = 0  # flow-controlled bytes received and not yet acknowledged
        self.ended = False
        self.error: TransportError | None = None
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.unprocessed = False  # the server promised it never processed it (safe to resend)

    def wake(self) -> None:
        """Tell the owner something changed (overridden by each body)."""

    def fail(self, error: TransportError, unprocessed: bool = False) -> None:
        if self.error is None and not self.ended:
            self.error = error
            self.unprocessed = unprocessed
        self.wake()


@dataclass
class Applied:
    """What the body must act on after ``apply``: refunds to send for streams nobody reads,
    a GOAWAY or new SETTINGS to report to the pool, PINGs answered."""

    refunds: list[tuple[int, int]] = field(default_factory=list)  # (stream id, flow bytes)
    goaway: GoAway | None = None
    settings: SettingsChanged | None = None
    pings: list[bytes] = field(default_factory=list)


InboxT = TypeVar("InboxT", bound=Inbox)


class StreamTable:
    """The open streams of one connection, by id."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.streams: dict[int, Inbox] = {}

    def open(
        self,
        proto: H2Protocol,
        headers: list[tuple[bytes, bytes]],
        end: bool,
        accepting: bool,
        make: Callable[[int], InboxT],
    ) -> tuple[InboxT, bytes]:
        """Open a stream: its id allocated and its HEADERS encoded in one step (the caller
        writes the bytes before anything else touches the protocol). StreamRefused if the
        connection takes no new streams (a GOAWAY, closed, stopped by the pool)."""
        if proto.goaway is not None or proto.closed or not accepting:
            raise StreamRefused(
                f"the HTTP/2 connection to {self.origin} stopped taking new streams"
            )
        try:
            stream_id, data = proto.send_headers(headers, end_stream=end)
        except LocalProtocolError as exc:
            raise StreamRefused(f"cannot open a stream to {self.origin}: {exc}") from None
        stream = make(stream_id)
        self.streams[stream_id] = stream
        return stream, data

    def apply(self, events: list[Event]) -> Applied:
        """Deliver ``events`` to their streams (waking their owners)."""
        out = Applied()
        streams = self.streams
        for event in events:
            if isinstance(event, Data):
                stream = streams.get(event.stream_id)
                if stream is None:  # nobody reads it any more: the connection gets it back
                    out.refunds.append((event.stream_id, event.flow_length))
                    continue
                stream.chunks.append(event.data)
                stream.owed += event.flow_length
                stream.ended = event.end_stream
                stream.wake()
            elif isinstance(event, ResponseHeaders):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.head = H2ResponseHead(event.status, event.headers)
                    stream.ended = event.end_stream
                    stream.wake()
            elif isinstance(event, Trailers):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.trailers = event.headers
                    stream.ended = True
                    stream.wake()
            else:
                self._control(event, out)
        return out

    def _control(self, event: Event, out: Applied) -> None:
        if isinstance(event, ResetEvent):
            self._reset(event)
        elif isinstance(event, GoAway):
            self._goaway(event)
            out.goaway = event
        elif isinstance(event, SettingsChanged):
            out.settings = event
            self.wake_all()  # a new initial window may let uploads go on
        elif isinstance(event, WindowUpdated):
            stream = self.streams.get(event.stream_id) if event.stream_id else None
            if stream is not None:
                stream.wake()
            elif event.stream_id == 0:
                self.wake_all()
        elif isinstance(event, PingAcked):
            out.pings.append(event.opaque)

    def _reset(self, event: ResetEvent) -> None:
        stream = self.streams.pop(event.stream_id, None)
        if stream is None:
            return
        refused = event.error_code == ErrorCode.REFUSED_STREAM and stream.head is None
        code = code_name(event.error_code)
        if event.remote:
            text = f"{self.origin} reset stream {event.stream_id} ({code})"
        else:  # we found the response invalid and reset the stream ourselves
            text = f"invalid response on stream {event.stream_id} from {self.origin}: "
            text += f"{event.message} (stream reset with {code})"
        error = StreamReset(text, error_code=event.error_code, may_have_reached_server=not refused)
        stream.fail(error, unprocessed=refused)

    def _goaway(self, event: GoAway) -> None:
        # Streams above last_stream_id were not processed (RFC 9113 §6.8): any method may be
        # sent again elsewhere. Those at or below it finish normally.
        for stream_id, stream in list(self.streams.items()):
            if stream_id > event.last_stream_id:
                del self.streams[stream_id]
                error = ReadError(
                    f"{self.origin} sent GOAWAY (last stream {event.last_stream_id}, "
                    f"{code_name(event.error_code)}) before processing stream {stream_id}",
                    may_have_reached_server=False,
                )
                stream.fail(error, unprocessed=True)

    def fail_all(self, message: str, error_code: int | None = None) -> None:
        """The connection is lost: every stream fails. A protocol error reaches each request
        as ``H2ProtocolError`` with the code sent in our GOAWAY (never retried: the server may
        have acted); anything else as ``ReadError`` (a network failure)."""
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            if error_code is None:
                stream.fail(ReadError(message, may_have_reached_server=True))
            else:
                stream.fail(H2ProtocolError(message, error_code=error_code))

    def wake_all(self) -> None:
        for stream in tuple(self.streams.values()):
            stream.wake()


def code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error code {code}"
