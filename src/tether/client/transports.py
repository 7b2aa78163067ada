"""What a session sends its requests through: the pools by default, or a transport of yours.

A transport is anything with ``send(request, timeout, stream, tls) -> Response`` and
``close()`` (``async`` ones for `AsyncSession`): a `PoolManager` is one. ``Session(transport=
...)`` replaces the pools; ``mounts={"https://api.example.com": t}`` sends the URLs under a
prefix to ``t`` (the longest matching prefix wins). `MockTransport` answers with a function of
yours, so code that uses a session can be tested without a network, as httpx users do::

    def handler(request: tether.Request) -> tether.Response:
        return tether.build_response(200, json={"path": request.url.path})

    with tether.Session(transport=tether.MockTransport(handler)) as s:
        assert s.get("https://api.example/users").json() == {"path": "/users"}
"""

from __future__ import annotations

import inspect
import json as jsonlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..io.tls import TLSConfig
from ..models import URL, HeaderInput, Headers, Request, TimeoutTypes
from ..response import AsyncResponse, ConnectionInfo, Response, has_raw_header

__all__ = [
    "AsyncMockTransport",
    "AsyncTransport",
    "MockTransport",
    "Mounts",
    "Transport",
    "build_response",
]


class Transport(Protocol):
    """What `Session` sends through (`PoolManager` is one)."""

    def send(
        self,
        request: Request,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        tls: TLSConfig | None = None,
    ) -> Any: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    """What `AsyncSession` sends through (`AsyncPoolManager` is one)."""

    async def send(
        self,
        request: Request,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        tls: TLSConfig | None = None,
    ) -> Any: ...

    async def aclose(self) -> None: ...


T = TypeVar("T")


class Mounts(Generic[T]):
    """Which transport a URL goes to: the longest mounted prefix it starts with, else the
    default.

    A prefix matches at a boundary only: ``"https://api.example"`` takes
    ``https://api.example/x`` and ``https://api.example:8443/``, never
    ``https://api.example.evil.test/`` (a prefix ending in "/" matches what follows it).
    """

    def __init__(self, default: T, mounts: Mapping[str, T] | None = None) -> None:
        self.default = default
        for prefix in mounts or {}:
            if not isinstance(prefix, str) or "://" not in prefix:
                raise ValueError(f"a mount is a URL prefix such as 'https://host', not {prefix!r}")
        # Longest first: the first match is the most specific.
        self._mounts = sorted((mounts or {}).items(), key=lambda item: -len(item[0]))

    def for_url(self, url: URL) -> T:
        """The transport for ``url``."""
        if not self._mounts:
            return self.default
        text = str(url)
        lowered = text.lower()
        for prefix, transport in self._mounts:
            if lowered.startswith(prefix.lower()) and _at_boundary(prefix, text):
                return transport
        return self.default

    def all(self) -> list[T]:
        """Every transport, each once (to close them)."""
        seen: list[T] = [self.default]
        for _, transport in self._mounts:
            if not any(transport is known for known in seen):
                seen.append(transport)
        return seen


def _at_boundary(prefix: str, url: str) -> bool:
    if prefix.endswith("/") or len(url) == len(prefix):
        return True
    return url[len(prefix)] in "/?#:" if prefix.count("/") == 2 else url[len(prefix)] in "/?#"


@dataclass
class _MockConn:
    """The ConnectionFacts of a response that no connection carried."""

    id: int = 0
    protocol: str = "mock"
    timings: Any = field(default_factory=lambda: _Timings())
    local_address: tuple[str, int] = ("", 0)
    remote_address: tuple[str, int] = ("", 0)
    tls: tuple[str | None, str | None, str | None] = (None, None, None)


@dataclass
class _Timings:
    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0


@dataclass
class _MockExchange:
    conn: _MockConn = field(default_factory=_MockConn)
    request_number: int = 1
    idle_time: float = 0.0
    ttfb: float = 0.0
    stream_id: int = 0
    streams_in_flight: int = 0


@dataclass(frozen=True)
class _Head:
    status: int
    http_version: str
    reason: str
    raw_headers: list[tuple[bytes, bytes]]

    def has_header(self, name: bytes) -> bool:
        return has_raw_header(self.raw_headers, name)


def build_response(
    status: int,
    headers: HeaderInput = None,
    content: bytes = b"",
    *,
    text: str | None = None,
    json: Any = None,
    request: Request | None = None,
) -> Response:
    """A complete `Response` made here, not received: for `MockTransport` handlers and tests.

    ``text`` is sent as UTF-8 (``text/plain; charset=utf-8`` unless a Content-Type is given),
    ``json`` as JSON (``application/json``); Content-Length is set. ``request`` defaults to
    the one the transport is answering (the transport sets it).
    """
    response: Response = _build(Response, status, headers, content, text, json, request)
    return response


def _build(
    cls: type[Response],
    status: int,
    headers: HeaderInput,
    content: bytes,
    text: str | None,
    json: Any,
    request: Request | None,
) -> Any:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"a response status is an int from 100 to 999, not {status!r}")
    merged = Headers(headers)
    if text is not None or json is not None:
        if content or (text is not None and json is not None):
            raise TypeError("give only one of content, text or json")
        if json is not None:
            content, ctype = jsonlib.dumps(json, ensure_ascii=False).encode(), "application/json"
        else:
            assert text is not None
            content, ctype = text.encode(), "text/plain; charset=utf-8"
        merged.setdefault("Content-Type", ctype)
    if not isinstance(content, bytes):
        raise TypeError(f"response content must be bytes, not {type(content).__name__}")
    merged.setdefault("Content-Length", str(len(content)))
    raw = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in merged.multi_items()
    ]
    head = _Head(status, "HTTP/1.1", _reason(status), raw)
    info = ConnectionInfo(_MockExchange(), 0, "HTTP/1.1")
    return cls(head, request or Request("GET", "http://mock.invalid/"), info, 0.0, None, content)


def _raw(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers.multi_items()]


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class MockTransport:
    """A transport that answers every request with ``handler(request)``: no network.

    ``handler`` returns a `Response` (``tether.build_response(...)``) or raises (a
    ``tether.ConnectError`` it raises reaches the caller as a real one would). Responses are
    complete: ``stream=True`` changes nothing.
    """

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self.handler = handler

    def send(
        self,
        request: Request,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        tls: TLSConfig | None = None,
    ) -> Response:
        """``handler(request)``, with the response's ``request`` set to this one."""
        response = self.handler(request)
        if not isinstance(response, Response):
            raise TypeError(
                f"a MockTransport handler returns a tether.Response (build_response), "
                f"not {type(response).__name__}"
            )
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to close."""


class AsyncMockTransport:
    """`MockTransport` for `AsyncSession`: ``handler`` may be a plain or an async function."""

    def __init__(self, handler: Callable[[Request], Response | Awaitable[Response]]) -> None:
        self.handler = handler

    async def send(
        self,
        request: Request,
        timeout: TimeoutTypes | None = None,
        stream: bool = False,
        tls: TLSConfig | None = None,
    ) -> AsyncResponse:
        """``await handler(request)`` (or its plain result), as an `AsyncResponse`."""
        result = self.handler(request)
        response = await result if inspect.isawaitable(result) else result
        if not isinstance(response, Response):
            raise TypeError(
                f"an AsyncMockTransport handler returns a tether.Response (build_response), "
                f"not {type(response).__name__}"
            )
        if not isinstance(response, AsyncResponse):
            raw = [
                (n.encode("latin-1"), v.encode("latin-1"))
                for n, v in response.headers.multi_items()
            ]
            head = _Head(response.status, response.http_version, response.reason, raw)
            response = AsyncResponse(
                head,
                request,
                response.connection_info,
                response.elapsed_seconds,
                None,
                response.content,
            )
        response.request = request
        return response

    async def aclose(self) -> None:
        """Nothing to close."""
