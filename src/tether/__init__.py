"""tether: an HTTP client whose connections are reused, checked and accounted for.

    >>> import tether
    >>> with tether.Session() as s:                       # doctest: +SKIP
    ...     r = s.get("http://127.0.0.1:8080/")
    ...     r.status, r.connection_info.reused

The layers, bottom up (each package's docstring says what it owns; imports point down only):
``models``, ``exceptions``, ``response``; ``protocol`` (sans-I/O HTTP/1.1 and HTTP/2);
``lifecycle`` (every reuse rule and the pool's decisions); ``io`` (sockets, TLS, the watcher);
``sync`` and ``aio`` (the threaded and asyncio bodies: connections, pool, pool manager);
``client`` (Session, AsyncSession);
``cli`` and ``testing`` on top.
"""

from .aio.pool import AsyncConnectionPool
from .aio.poolmanager import AsyncPoolManager
from .client.asession import AsyncSession
from .client.session import Session, delete, get, head, options, patch, post, put, request
from .exceptions import (
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    InvalidHeader,
    InvalidRequest,
    InvalidURL,
    NetworkError,
    PoolClosed,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    RequestError,
    StreamClosed,
    StreamConsumed,
    StreamError,
    StreamReset,
    TetherError,
    TimeoutException,
    TLSError,
    TotalTimeout,
    TransportError,
    WriteError,
    WriteTimeout,
)
from .io.tls import TLSConfig
from .lifecycle import CloseReason, Limits
from .lifecycle.poolstate import PoolStats
from .models import URL, Headers, Origin, Request, Timeout
from .response import AsyncResponse, ConnectionInfo, Response
from .sync.pool import ConnectionPool
from .sync.poolmanager import PoolManager

__version__ = "0.1.0"

__all__ = [
    "URL",
    "AsyncConnectionPool",
    "AsyncPoolManager",
    "AsyncResponse",
    "AsyncSession",
    "CloseReason",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionInfo",
    "ConnectionPool",
    "HTTPStatusError",
    "Headers",
    "InvalidHeader",
    "InvalidRequest",
    "InvalidURL",
    "Limits",
    "NetworkError",
    "Origin",
    "PoolClosed",
    "PoolManager",
    "PoolStats",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Request",
    "RequestError",
    "Response",
    "Session",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "StreamReset",
    "TLSConfig",
    "TLSError",
    "TetherError",
    "Timeout",
    "TimeoutException",
    "TotalTimeout",
    "TransportError",
    "WriteError",
    "WriteTimeout",
    "__version__",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "put",
    "request",
]
