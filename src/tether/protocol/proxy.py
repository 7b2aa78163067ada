"""Proxies without I/O: the proxy as a value, and the handshakes that open a route through it.

A `Proxy` is parsed once from its URL and is part of a pool key: two proxies with the same
host but other credentials get other pools (a tunnel opened as alice is never lent to bob).
Its ``repr``, ``str`` and ``url`` never carry the credentials.

The handshakes are sans-I/O, so the threaded and the asyncio bodies pump the same objects:
``to_send()`` gives bytes to write, ``feed(available)`` takes what the socket holds (read with
MSG_PEEK) and returns how many of those bytes belong to the handshake, and the body then reads
exactly that many off the socket. Nothing past the handshake is consumed, so the first TLS
record (or HTTP byte) after a CONNECT's 200 stays in the socket for what comes next.

SOCKS handshakes live in ``protocol.socks`` (on ``socksio``, imported only when a SOCKS proxy
is used: the ``socks`` extra).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ..exceptions import InvalidProxyURL, ProxyError
from ..models import Origin

__all__ = [
    "PROXY_SCHEMES",
    "ConnectHandshake",
    "Handshake",
    "Proxy",
    "handshake_for",
]

PROXY_SCHEMES = frozenset({"http", "https", "socks5", "socks5h", "socks4", "socks4a"})
_DEFAULT_PORTS = {
    "http": 8080,
    "https": 443,
    "socks5": 1080,
    "socks5h": 1080,
    "socks4": 1080,
    "socks4a": 1080,
}
MAX_CONNECT_HEAD = 16 * 1024  # a CONNECT reply head longer than this is not a proxy talking


@dataclass(frozen=True, slots=True)
class Proxy:
    """A proxy: scheme (http, https, socks5, socks5h, socks4, socks4a), host, port, credentials.

    ``https`` is an HTTP proxy reached over TLS (its certificate checked against ``host``):
    forwarded requests and CONNECT travel inside that TLS connection, and an https origin's
    own TLS runs inside the tunnel (TLS in TLS).
    ``socks5h`` and ``socks4a`` let the proxy resolve the origin's name; ``socks5`` and
    ``socks4`` resolve it here. Credentials are compared and hashed (they are part of the pool
    key) but never shown.
    """

    scheme: str
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str | Proxy) -> Proxy:
        """A Proxy from ``scheme://user:pass@host:port`` (user and pass percent-decoded).

        A URL without a scheme is taken as http (as curl and requests do). Raises
        InvalidProxyURL for an unsupported scheme, a missing host or a bad port.
        """
        if isinstance(url, Proxy):
            return url
        text = url.strip()
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise InvalidProxyURL(f"bad proxy URL {_redact(text)!r}: bad port or host") from None
        scheme = parts.scheme.lower()
        if scheme not in PROXY_SCHEMES:
            raise InvalidProxyURL(
                f"unsupported proxy scheme {scheme!r} in {_redact(text)!r} "
                f"(supported: {', '.join(sorted(PROXY_SCHEMES))})"
            )
        host = parts.hostname
        if not host:
            raise InvalidProxyURL(f"proxy URL {_redact(text)!r} has no host")
        origin = Origin.of("http", host, port or _DEFAULT_PORTS[scheme])
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(scheme, origin.host, origin.port, user, password)

    @property
    def tls(self) -> bool:
        """Is the connection to the proxy itself TLS (an https:// proxy)?"""
        return self.scheme == "https"

    @property
    def origin(self) -> Origin:
        """Where the TCP connection to the proxy goes (scheme http even for an https proxy:
        ``tls`` says whether TLS runs on it)."""
        return Origin("http", self.host, self.port)

    @property
    def url(self) -> str:
        """The proxy's URL without credentials (what connection_info and errors show)."""
        return f"{self.scheme}://{_bracketed(self.host)}:{self.port}"

    @property
    def forwards_http(self) -> bool:
        """http:// requests go to this proxy as absolute-form requests (no tunnel)."""
        return self.scheme in ("http", "https")

    def tunnels(self, origin: Origin) -> bool:
        """Does a connection to ``origin`` go through a tunnel (CONNECT or SOCKS)?"""
        return not (self.forwards_http and origin.scheme == "http")

    def authorization(self) -> bytes | None:
        """The ``Proxy-Authorization`` header line (Basic), or None without credentials."""
        if self.username is None:
            return None
        raw = f"{self.username}:{self.password or ''}".encode()
        return b"Proxy-Authorization: Basic " + base64.b64encode(raw) + b"\r\n"

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        auth = " (with credentials)" if self.username is not None else ""
        return f"<Proxy {self.url}{auth}>"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _redact(url: str) -> str:
    """``url`` with any userinfo replaced, for error messages."""
    return re.sub(r"^([^:/]*://)[^/]*@", r"\1***@", url)


class Handshake:
    """What both bodies pump: write ``to_send()``, ``feed`` what is readable, until ``done``."""

    done = False

    def __init__(self, proxy: Proxy, origin: Origin) -> None:
        self.proxy = proxy
        self.origin = origin
        self._out = b""
        self._buf = b""

    def to_send(self) -> bytes:
        out, self._out = self._out, b""
        return out

    def feed_read(self, data: bytes) -> None:
        """``feed`` for bytes already taken off the connection (a TLS connection to the proxy
        cannot be peeked). The reply must end where they end: the origin's TLS has not begun,
        so a byte past the reply is the proxy's, and no origin speaks before the client."""
        used = self.feed(data)
        if self.done and used < len(data):
            raise self.error(
                f"{len(data) - used} unexpected bytes after the reply, before the TLS handshake"
            )

    def feed(self, available: bytes) -> int:
        """Take what the socket holds; return how many of its bytes the handshake used."""
        raise NotImplementedError

    def eof(self) -> ProxyError:
        """The error for a proxy that closed the connection mid-handshake."""
        return self.error("the proxy closed the connection during the handshake")

    def error(self, reason: str, status: int | None = None) -> ProxyError:
        return ProxyError(
            f"proxy {self.proxy.url} refused the route to {self.origin}: {reason}",
            proxy=self.proxy.url,
            status=status,
            reason=reason,
        )


class ConnectHandshake(Handshake):
    """``CONNECT host:port`` (with Proxy-Authorization when the proxy URL has credentials)."""

    def __init__(self, proxy: Proxy, origin: Origin) -> None:
        super().__init__(proxy, origin)
        authority = f"{_bracketed(origin.host)}:{origin.port}"
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
        self._out = head + (proxy.authorization() or b"") + b"\r\n"
        self.status = 0

    def feed(self, available: bytes) -> int:
        seen = len(self._buf)
        buf = self._buf + available
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_CONNECT_HEAD:
                raise self.error(f"CONNECT reply head longer than {MAX_CONNECT_HEAD} bytes")
            self._buf = buf
            return len(available)
        self._answer(buf[:end])
        return end + 4 - seen

    def _answer(self, head: bytes) -> None:
        line = head.split(b"\r\n", 1)[0]
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise self.error(f"not an HTTP reply to CONNECT: {line[:80]!r}")
        status = int(parts[1])
        reason = parts[2].decode("latin-1", "replace").strip() if len(parts) > 2 else ""
        if not 200 <= status < 300:
            # The reply body (an error page) is not read: the connection is closed anyway.
            raise self.error(f"CONNECT answered {status} {reason}".rstrip(), status)
        self.status = status
        self.done = True


def remote_dns(proxy: Proxy) -> bool:
    """Does the proxy resolve the origin's name (socks5h, socks4a) rather than us?"""
    return proxy.scheme in ("socks5h", "socks4a")


def handshake_for(proxy: Proxy, origin: Origin, address: str) -> Handshake:
    """The handshake that opens a tunnel to ``origin`` (``address``: what to ask SOCKS for)."""
    if proxy.forwards_http:
        return ConnectHandshake(proxy, origin)
    try:
        from .socks import Socks4Handshake, Socks5Handshake
    except ImportError:  # socksio missing
        raise InvalidProxyURL(
            f"{proxy.scheme} proxies need the socksio package (pip install 'tether[socks]')"
        ) from None
    if proxy.scheme in ("socks5", "socks5h"):
        return Socks5Handshake(proxy, origin, address)
    if proxy.scheme == "socks4" and not _is_ipv4(address):
        raise InvalidProxyURL(f"socks4 carries IPv4 addresses only, not {address!r}: use socks4a")
    return Socks4Handshake(proxy, origin, address)


def _is_ipv4(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 4
    except ValueError:
        return False
