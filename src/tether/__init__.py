"""tether: an HTTP client whose connections are reused, checked and accounted for.

    >>> import tether
    >>> with tether.Session() as s:                       # doctest: +SKIP
    ...     r = s.get("http://127.0.0.1:8080/")
    ...     r.status, r.connection_info.reused

The layers, bottom up: ``models`` and ``exceptions``; ``http11`` (sans-I/O protocol); ``sockets``
and ``tls`` (I/O); ``lifecycle`` (every reuse rule); ``connection``, ``pool``, ``watcher`` and
``poolmanager``; ``session`` on top.
"""

from .connection import ConnectionInfo
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
    TetherError,
    TimeoutException,
    TLSError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from .lifecycle import CloseReason, Limits
from .models import URL, Headers, Origin, Request, Timeout
from .pool import ConnectionPool, PoolStats
from .poolmanager import PoolManager
from .response import Response
from .session import Session, delete, get, head, options, patch, post, put, request
from .tls import TLSConfig

__version__ = "0.1.0"

__all__ = [
    "URL",
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
    "TLSConfig",
    "TLSError",
    "TetherError",
    "Timeout",
    "TimeoutException",
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
