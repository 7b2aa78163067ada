"""tether: an HTTP client whose connections are reused, checked and accounted for.

    >>> import tether
    >>> with tether.Session() as s:                       # doctest: +SKIP
    ...     r = s.get("http://127.0.0.1:8080/")
    ...     r.status, r.connection_info.reused

The layers, bottom up (each package's docstring says what it owns; imports point down only):
``models``, ``exceptions``, ``decoding``, ``response``; ``protocol`` (sans-I/O HTTP/1.1 and HTTP/2);
``lifecycle`` (every reuse rule and the pool's decisions); ``io`` (sockets, TLS, the watcher);
``sync`` and ``aio`` (the threaded and asyncio bodies: connections, pool, pool manager);
``client`` (Session, AsyncSession);
``cli`` and ``testing`` on top.
"""

from .aio.pool import AsyncConnectionPool
from .aio.poolmanager import AsyncPoolManager
from .client.asession import AsyncSession
from .client.auth import Auth, BasicAuth, DigestAuth, FunctionAuth, TokenAuth
from .client.proxies import proxy_for
from .client.retry import Retry
from .client.session import Session, delete, get, head, options, patch, post, put, request
from .client.transports import AsyncMockTransport, MockTransport, build_response
from .cookiejar import Cookies
from .decoding import ACCEPT_ENCODING, DecodeLimits
from .exceptions import (
    BodyNotReplayable,
    ConnectError,
    ConnectTimeout,
    DecodingError,
    DecompressionLimitError,
    HTTPStatusError,
    InvalidHeader,
    InvalidProxyURL,
    InvalidRedirect,
    InvalidRequest,
    InvalidURL,
    NetworkError,
    PoolClosed,
    PoolTimeout,
    ProxyError,
    ReadError,
    ReadTimeout,
    RedirectError,
    RemoteProtocolError,
    RequestError,
    ResolveError,
    ResolveTimeout,
    StreamClosed,
    StreamConsumed,
    StreamError,
    StreamReset,
    TetherError,
    TimeoutException,
    TLSError,
    TooManyRedirects,
    TotalTimeout,
    TransportError,
    WriteError,
    WriteTimeout,
)
from .io.resolver import Resolver, system_resolver
from .io.tls import TLSConfig
from .lifecycle import CloseReason, IdleTimeoutLearner, LearnerTable, Limits, trace
from .lifecycle.dialplan import DialAttempt
from .lifecycle.poolstate import PoolStats
from .lifecycle.trace import TraceEvent
from .models import URL, Headers, Origin, Request, Timeout
from .protocol.proxy import Proxy
from .response import AsyncResponse, ConnectionInfo, RawBody, Response, Timings
from .sync.pool import ConnectionPool
from .sync.poolmanager import PoolManager

__version__ = "0.1.0"

__all__ = [
    "ACCEPT_ENCODING",
    "URL",
    "AsyncConnectionPool",
    "AsyncMockTransport",
    "AsyncPoolManager",
    "AsyncResponse",
    "AsyncSession",
    "Auth",
    "BasicAuth",
    "BodyNotReplayable",
    "CloseReason",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionInfo",
    "ConnectionPool",
    "Cookies",
    "DecodeLimits",
    "DecodingError",
    "DecompressionLimitError",
    "DialAttempt",
    "DigestAuth",
    "FunctionAuth",
    "HTTPStatusError",
    "Headers",
    "IdleTimeoutLearner",
    "InvalidHeader",
    "InvalidProxyURL",
    "InvalidRedirect",
    "InvalidRequest",
    "InvalidURL",
    "LearnerTable",
    "Limits",
    "MockTransport",
    "NetworkError",
    "Origin",
    "PoolClosed",
    "PoolManager",
    "PoolStats",
    "PoolTimeout",
    "Proxy",
    "ProxyError",
    "RawBody",
    "ReadError",
    "ReadTimeout",
    "RedirectError",
    "RemoteProtocolError",
    "Request",
    "RequestError",
    "ResolveError",
    "ResolveTimeout",
    "Resolver",
    "Response",
    "Retry",
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
    "Timings",
    "TokenAuth",
    "TooManyRedirects",
    "TotalTimeout",
    "TraceEvent",
    "TransportError",
    "WriteError",
    "WriteTimeout",
    "__version__",
    "build_response",
    "delete",
    "get",
    "head",
    "options",
    "patch",
    "post",
    "proxy_for",
    "put",
    "request",
    "system_resolver",
    "trace",
]
