"""Request-side data: origins, URLs, headers, timeouts and the request itself.

Everything here validates on construction, so that a `Request` that exists can be written to a
socket without further checks: a CR, LF or NUL in a method, target, header name or value is
refused here, before any connection is touched.
"""

from __future__ import annotations

import io
import ipaddress
import itertools
import os
import re
import stat
from base64 import b64encode
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Union
from urllib.parse import quote, unquote, urlencode, urlsplit

import idna

from .exceptions import InvalidHeader, InvalidURL, TimeoutException, TotalTimeout

__all__ = ["URL", "Headers", "Origin", "Request", "Timeout"]

DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 9110 token characters: what a method and a header name may contain.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Field values: visible ASCII, obs-text, space and tab; never CR, LF or NUL.
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Anything that would end the request line early or smuggle a second one.
_BAD_URL = re.compile(r"[\x00-\x1f\x7f]")
_BAD_TARGET = re.compile(r"[\x00-\x1f\x7f]")
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
# A % that does not start a %XX escape: sent as %25 (as browsers do), so it stays a percent.
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# The authority ends at the first of these (WHATWG also ends it at a backslash: see URL).
_AUTHORITY_END = re.compile(r"[/?#]")


class Origin(NamedTuple):
    """Where a connection goes: scheme, host and port. Hashable (and fast to hash): a pool key."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, scheme: str, host: str, port: int | None = None) -> Origin:
        """The origin of ``scheme://host:port``, validated; ``port`` defaults to the scheme's.

        ``host`` is a name, an IPv4 address or an IPv6 address with or without its brackets
        (``"::1"`` and ``"[::1]"`` are the same origin); names are lower-cased and IDNA-encoded.
        """
        if not isinstance(scheme, str) or scheme.lower() not in DEFAULT_PORTS:
            raise InvalidURL(f"unsupported scheme {scheme!r} (http, https)")
        scheme = scheme.lower()
        if not isinstance(host, str) or not host.strip("[]"):
            raise InvalidURL(f"invalid host {host!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
            if ":" not in host:
                raise InvalidURL(f"only an IPv6 address goes in brackets, not {host!r}")
        if port is None:
            port = DEFAULT_PORTS[scheme]
        elif isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidURL(f"invalid port {port!r} for host {host!r} (1-65535)")
        return cls(scheme, _check_host(host.lower(), host), port)

    def __str__(self) -> str:
        return f"{self.scheme}://{_netloc(self.host)}:{self.port}"


def _netloc(host: str) -> str:
    """``host`` as written in a URL: IPv6 in brackets, a zone id's % as %25 (RFC 6874)."""
    return f"[{host.replace('%', '%25')}]" if ":" in host else host


class URL(str):
    """An absolute http(s) URL, parsed and validated once; a ``str`` of its normalised form.

    Being a str, it goes wherever a URL string went (requests' ``r.url`` is one):
    ``r.url == "http://h/x"``, ``r.url.startswith("https:")``, ``"/x" in r.url``, ``r.url +
    "?a=1"``, ``json.dumps(r.url)``, dict keys (the hash is the string's). Two URLs are equal
    when their text and their credentials are.

    ``target`` is the request-target as it goes on the wire (path and query, percent-encoded;
    a ``%`` that starts no ``%XX`` escape is sent as ``%25``; the fragment is dropped, with
    anything after ``#``, a ``?`` included). ``host_header`` is the Host value (an IPv6 zone id,
    ``[fe80::1%25eth0]``, is used to connect but not sent: RFC 6874).

    Userinfo (``http://user:pass@host/``) becomes ``auth``, which a Request sends as Basic
    authorization; it is never part of the text, so never in ``str()``, ``repr()`` or an error.

    A backslash in the authority is refused: WHATWG parsers read it as ``/``
    (``http://a.example\\@b.example/`` goes to a.example), RFC 3986 parsers as userinfo (to
    b.example); a URL that means different hosts to different parsers is an attack.
    """

    __slots__ = ("auth", "host_header", "origin", "target")

    origin: Origin
    target: str
    auth: tuple[str, str] | None
    host_header: str

    def __new__(cls, url: str) -> URL:
        if not isinstance(url, str):
            raise InvalidURL(f"URL must be a str, not {type(url).__name__}")
        url = str.strip(url, " ")
        shown = _redact(url)
        # urlsplit silently strips CR, LF and tab (bpo-43882), so look before it does.
        if _BAD_URL.search(url):
            raise InvalidURL(f"URL contains a control character (CR, LF, NUL, TAB...): {shown!r}")
        _, sep, rest = url.partition("://")
        if sep and "\\" in _AUTHORITY_END.split(rest, 1)[0]:
            raise InvalidURL(f"URL has a backslash in its authority (host part): {shown!r}")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise InvalidURL(f"invalid URL {shown!r}: {str(exc).replace(url, shown)}") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise InvalidURL(f"unsupported URL scheme {parts.scheme!r} in {shown!r} (http, https)")
        host = parts.hostname or ""
        if not host:
            raise InvalidURL(f"URL has no host: {shown!r}")
        host = _check_host(host, shown)
        if port is None:
            port = DEFAULT_PORTS[scheme]
        elif port == 0:
            raise InvalidURL(f"invalid port 0 in {shown!r}")
        path = quote(_BARE_PERCENT.sub("%25", parts.path or "/"), safe=_SAFE_PATH)
        query = quote(_BARE_PERCENT.sub("%25", parts.query), safe=_SAFE_QUERY)
        target = f"{path}?{query}" if parts.query else path
        netloc = _netloc(host)
        port_part = f":{port}" if port != DEFAULT_PORTS[scheme] else ""
        self = super().__new__(cls, f"{scheme}://{netloc}{port_part}{target}")
        self.origin = Origin(scheme, host, port)
        self.target = target
        self.auth = None
        if parts.username is not None or parts.password is not None:
            self.auth = (unquote(parts.username or ""), unquote(parts.password or ""))
        self.host_header = (f"[{host.partition('%')[0]}]" if ":" in host else host) + port_part
        return self

    @classmethod
    def from_parts(cls, origin: Origin, target: str) -> URL:
        """The URL of ``target`` (a path with optional query) on ``origin``."""
        if not target.startswith("/"):
            raise InvalidURL(f"request target must start with '/': {target!r}")
        return cls(f"{origin}{target}")

    def with_query(self, params: QueryParams) -> URL:
        """This URL with ``params`` appended to its query string (``auth`` is kept)."""
        encoded = encode_query(params)
        if not encoded:
            return self
        joiner = "&" if "?" in self.target else "?"
        url = URL(f"{self}{joiner}{encoded}")
        url.auth = self.auth
        return url

    def basic_auth(self) -> str | None:
        """The Authorization value for the URL's userinfo (None if it has none)."""
        if self.auth is None:
            return None
        user, password = self.auth
        return "Basic " + b64encode(f"{user}:{password}".encode()).decode("ascii")

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, URL) and other.auth != self.auth:
            return False
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:  # str's own __ne__ would ignore ``auth``
        return not self == other

    __hash__ = str.__hash__

    def __getnewargs__(self) -> tuple[str]:  # copy and pickle: parse the text again
        return (str(self),)


def _redact(url: str) -> str:
    """``url`` with any userinfo replaced by ``***``, for messages."""
    scheme, sep, rest = url.partition("://")
    authority = _AUTHORITY_END.split(rest, 1)[0]
    if not sep or "@" not in authority:
        return url
    return f"{scheme}://***@{rest[authority.rindex('@') + 1 :]}"


def _check_host(host: str, url: str) -> str:
    """``host`` (lower case, no brackets) as it goes to the resolver; InvalidURL names ``url``.

    An IPv6 zone id may be written ``%25eth0`` (RFC 6874) or ``%eth0``; it comes back as
    ``fe80::1%eth0``, the resolver's spelling. Names go through IDNA 2008 with UTS 46
    mapping (``straße.de`` is ``xn--strae-oqa.de``, not IDNA 2003's ``strasse.de``).
    """
    if ":" in host:
        address, percent, zone = host.partition("%")
        zone = zone[2:] if zone.startswith("25") and len(zone) > 2 else zone
        if percent and not re.fullmatch(r"[A-Za-z0-9._~-]+", zone):
            raise InvalidURL(f"invalid IPv6 zone id {zone!r} in {url!r}")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise InvalidURL(f"invalid IPv6 address {address!r} in {url!r}") from None
        return f"{address}%{zone}" if percent else address
    if host.isascii():
        if any(c in host for c in "@/\\%"):
            raise InvalidURL(f"invalid host {host!r} in {url!r}")
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidURL(f"invalid international host {host!r} in {url!r}: {exc}") from None


_url_cache: dict[str, URL] = {}


def parse_url(url: str | URL) -> URL:
    """Parse ``url``, reusing the result for a URL seen recently (the hot path of a loop)."""
    if isinstance(url, URL):
        return url
    parsed = _url_cache.get(url)
    if parsed is None:
        parsed = URL(url)
        if len(_url_cache) >= 512:
            _url_cache.clear()
        _url_cache[url] = parsed
    return parsed


QueryParams = Mapping[str, object] | Iterable[tuple[str, object]] | str | bytes | None


def encode_query(params: QueryParams) -> str:
    """Form-encode ``params`` (a mapping, pairs, or an already encoded string); None values
    are left out."""
    if not params:
        return ""
    if isinstance(params, bytes):
        return params.decode("ascii")
    if isinstance(params, str):
        return params
    pairs: list[tuple[str, object]] = [
        (name, value)
        for name, value in (params.items() if isinstance(params, Mapping) else params)
        if value is not None  # requests' rule: a None value leaves the name out
    ]
    return urlencode(pairs, doseq=True)


_METHODS = {m: m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}


def check_method(method: str) -> str:
    """Return ``method`` upper-cased, or raise InvalidHeader if it is not an HTTP token."""
    known = _METHODS.get(method)
    if known is not None:
        return known
    if not isinstance(method, str) or not _TOKEN.match(method.encode("latin-1", "replace")):
        raise InvalidHeader(f"invalid HTTP method {method!r}")
    return method.upper()


def check_target(target: str) -> str:
    """Refuse a request target that would break the request line.

    A space is accepted: URL percent-encodes it (``/a b`` is sent as ``/a%20b``), the same rule
    for a pool's path as for a Session's URL.
    """
    if not isinstance(target, str) or not target.startswith("/") or _BAD_TARGET.search(target):
        raise InvalidURL(f"invalid request target {target!r}: must start with '/', no CR/LF/NUL")
    return target


# Header versions: unique across all Headers (itertools.count's next is atomic under the GIL).
_versions = itertools.count()
# (version, encoded, (has Host, has length, close), the RequestFraming of a body tether frames)
_Wire = tuple[int, bytes, tuple[bool, bool, bool], "RequestFraming"]

# A None value means "no such header" (in ``merged``: remove the default of that name).
HeaderInput = Union["Headers", Mapping[str, str | None], Iterable[tuple[str, str | None]], None]


class Headers(MutableMapping[str, str]):
    """Case-insensitive, multi-valued HTTP headers that keep their order and spelling.

    ``headers["set-cookie"]`` joins repeated values with ", "; ``get_list()`` returns them apart.
    Names and values are validated when set: CR, LF and NUL are refused (header injection).

    The wire form is cached with the version of the headers it was made from, and every change
    takes a new version: a thread that encodes while another changes the headers (a session's
    defaults, shared by every request) may store a stale form, but nobody will use it.
    """

    __slots__ = ("_cache", "_items", "_version")

    def __init__(self, headers: HeaderInput = None) -> None:
        self._items: list[tuple[str, str, str]] = []  # (lower name, name, value)
        self._version = next(_versions)
        self._cache: _Wire | None = None
        if headers is not None:
            pairs = headers.items() if isinstance(headers, Mapping) else headers
            if isinstance(headers, Headers):
                self._items = list(headers._items)
            else:
                for name, value in pairs:
                    if value is not None:  # None: no such header (see ``merged``)
                        self.add(name, value)

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        """Headers received from a server (already validated by the parser)."""
        self = cls()
        self._items = [
            (n.decode("latin-1").lower(), n.decode("latin-1"), v.decode("latin-1")) for n, v in raw
        ]
        return self

    def add(self, name: str, value: str) -> None:
        """Append a value, keeping any existing ones (for repeated headers)."""
        name, value = _check_header(name, value)
        self._items.append((name.lower(), name, value))
        self._version = next(_versions)  # after the change: see _fill

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name``, in the order received."""
        key = name.lower()
        return [v for k, _, v in self._items if k == key]

    def __getitem__(self, name: str) -> str:
        values = self.get_list(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        name, value = _check_header(name, value)
        key = name.lower()
        self._items = [item for item in self._items if item[0] != key]
        self._items.append((key, name, value))
        self._version = next(_versions)

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        kept = [item for item in self._items if item[0] != key]
        if len(kept) == len(self._items):
            raise KeyError(name)
        self._items = kept
        self._version = next(_versions)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(k == key for k, _, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, str] = {}
        for key, name, _ in self._items:
            seen.setdefault(key, name)
        return iter(seen.values())

    def __len__(self) -> int:
        return len({k for k, _, _ in self._items})

    def lower_items(self) -> list[tuple[str, str]]:
        """Every (lowercased name, value) pair, in order: HTTP/2's spelling of header names."""
        return [(k, v) for k, _, v in self._items]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, repeated names included, in order."""
        return [(n, v) for _, n, v in self._items]

    def copy(self) -> Headers:
        """An independent copy (it keeps the encoded form, which is the same)."""
        version = self._version  # before the items: see _fill
        items = list(self._items)
        cache = self._cache
        if cache is None or cache[0] != version:
            cache = self._fill(version, items)  # once here, not once per copy
        new = Headers()
        new._items = items
        new._cache = (new._version, *cache[1:])
        return new

    def merged(self, other: HeaderInput) -> Headers:
        """A copy of these headers with ``other``'s names replacing ours.

        A name whose value is None in ``other`` is removed (requests' way to drop a session
        default: ``headers={"User-Agent": None}``).
        """
        merged = self.copy()
        if not other:
            return merged
        removed: set[str] = set()
        if isinstance(other, Headers):
            extra = other
        else:
            extra = Headers()
            for name, value in other.items() if isinstance(other, Mapping) else other:
                if value is None:
                    removed.add(str(name).lower())
                else:
                    extra.add(name, value)
        replaced = {k for k, _, _ in extra._items} | removed
        merged._items = [item for item in merged._items if item[0] not in replaced]
        merged._items.extend(extra._items)
        merged._version = next(_versions)  # the copy's cached wire form is stale now
        return merged

    def encode(self) -> bytes:
        """The header lines as they go on the wire (cached until the headers change)."""
        cache = self._cache
        if cache is None or cache[0] != self._version:
            cache = self._fill(self._version, list(self._items))
        return cache[1]

    def framing(self) -> tuple[bool, bool, bool]:
        """(has Host, has Content-Length or Transfer-Encoding, asks Connection: close)."""
        cache = self._cache
        if cache is None or cache[0] != self._version:
            cache = self._fill(self._version, list(self._items))
        return cache[2]

    def wire(self) -> tuple[bytes, tuple[bool, bool, bool]]:
        """``encode()`` and ``framing()`` of one and the same version of these headers."""
        cache = self._cache
        if cache is not None and cache[0] == self._version:
            return cache[1], cache[2]  # the hot path: no lock, no copy
        cache = self._fill(self._version, list(self._items))
        return cache[1], cache[2]

    def _fill(self, version: int, items: list[tuple[str, str, str]]) -> _Wire:
        # ``version`` was read before ``items`` and a change bumps the version after it
        # changes the items, so a form made from older items carries an older version.
        encoded = "".join(f"{n}: {v}\r\n" for _, n, v in items).encode("latin-1")
        keys = {k for k, _, _ in items}
        close = any(k == "connection" and "close" in v.lower() for k, _, v in items)
        length = "content-length" in keys or "transfer-encoding" in keys
        has_host = "host" in keys
        framing = _new_framing((encoded, has_host, length, close, None))
        cache = (version, encoded, (has_host, length, close), framing)
        self._cache = cache
        return cache

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((k, v) for k, _, v in self._items) == sorted(
                (k, v) for k, _, v in other._items
            )
        if isinstance(other, Mapping):
            return self == Headers(other)
        return NotImplemented

    def __repr__(self) -> str:
        # Credentials and cookies end up in logs through reprs: show that they are there only.
        shown = [(n, "***" if k in _SECRET_HEADERS else v) for k, n, v in self._items]
        return f"Headers({shown!r})"


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def _check_header(name: str, value: str) -> tuple[str, str]:
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    elif value is None:
        raise InvalidHeader(f"header {name!r} has the value None (leave it out to send none)")
    elif not isinstance(value, str):
        value = str(value)
    if not isinstance(name, str) or not _TOKEN.match(name.encode("latin-1", "replace")):
        raise InvalidHeader(f"invalid header name {name!r}")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidHeader(f"header {name!r} has a value that is not latin-1: {value!r}") from None
    if _BAD_VALUE.search(raw):
        raise InvalidHeader(f"header {name!r} has CR, LF, NUL or a control byte: {value!r}")
    return name, value.strip(" \t")


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timeouts in seconds for each phase; None waits for ever.

    ``connect`` covers TCP and TLS set-up, ``read`` each wait for response bytes, ``write`` each
    send, ``pool`` the wait for a free connection when the pool blocks. ``total`` (off by
    default) bounds the whole request: pool wait, connect, writing, the head and the body (a
    streamed body too, each read of it); past it the request fails with `TotalTimeout`.
    """

    connect: float | None = 10.0
    read: float | None = 30.0
    write: float | None = 30.0
    pool: float | None = 10.0
    total: float | None = None

    def __post_init__(self) -> None:
        if self.total is not None:
            _seconds(self.total, self.total)

    def deadline(self, now: float) -> Deadline | None:
        """The deadline of a request starting at ``now`` (None without a ``total``)."""
        return None if self.total is None else Deadline(self, now + self.total)

    @classmethod
    def of(cls, value: TimeoutTypes) -> Timeout:
        """Normalise what a user passes: a Timeout, one number for every phase, None, or a
        ``(connect, read)`` pair as requests takes it.

        In a pair, ``connect`` also bounds the wait for a free pooled connection and ``read``
        also bounds writing the request (requests has no separate write or pool timeout).
        Raises TypeError or ValueError naming what is wrong (a negative number, a triple).
        """
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None, None, None)
        if isinstance(value, (tuple, list)):
            if len(value) != 2:
                raise TypeError(f"a timeout pair is (connect, read), not {value!r}")
            connect, read = (_seconds(v, value) for v in value)
            return cls(connect, read, read, connect)
        seconds = _seconds(value, value)
        return cls(seconds, seconds, seconds, seconds)


def _seconds(value: object, given: object) -> float | None:
    """One timeout in seconds (None: no limit), or a TypeError/ValueError naming ``given``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a timeout is seconds (a number) or None, not {given!r}")
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"a timeout cannot be negative or NaN: {given!r}")
    return value


TimeoutTypes = Timeout | float | tuple[float | None, float | None] | None


@dataclass(frozen=True, slots=True)
class Deadline:
    """One request's total deadline, fixed once when it starts; both pool bodies ask it.

    Before each phase the body takes ``clip(now)``: the phase timeouts cut to what is left
    (`TotalTimeout` if nothing is). A timeout once the deadline has passed is reported by
    ``error`` as the total's, whichever phase's wait noticed it.
    """

    timeout: Timeout
    at: float

    def left(self, now: float) -> float:
        """Seconds left (0.0 once passed)."""
        return max(self.at - now, 0.0)

    def clip(self, now: float, reached: bool = False) -> Timeout:
        """The phase timeouts, none beyond the deadline; raises TotalTimeout if it passed
        (``reached``: whether the request may have reached the server by now)."""
        left = self.at - now
        if left <= 0:
            raise self.error(None, None, reached)  # the pool names the request
        t = self.timeout
        return Timeout(
            _upto(t.connect, left), _upto(t.read, left), _upto(t.write, left), _upto(t.pool, left)
        )

    def error(
        self, request: Request | None, cause: BaseException | None = None, reached: bool = False
    ) -> TotalTimeout:
        """The error for a request that ran out of time (``cause``: the wait that noticed)."""
        return TotalTimeout(
            f"the request did not complete within its total timeout of {self.timeout.total}s",
            request=request,
            may_have_reached_server=reached or getattr(cause, "may_have_reached_server", False),
        )

    def explain(self, exc: TimeoutException, request: Request, now: float) -> TimeoutException:
        """``exc`` as the caller sees it: a phase's timeout that fired once the deadline had
        passed is the total's (the phase's wait was only cut short to meet it)."""
        if isinstance(exc, TotalTimeout):
            exc.request = exc.request or request
            return exc
        return exc if now < self.at else self.error(request, exc)


def _upto(seconds: float | None, left: float) -> float:
    return left if seconds is None or seconds > left else seconds


class RequestFraming(NamedTuple):
    """What a protocol needs to put a request on the wire (see ``Request.framing``)."""

    header_block: bytes  # the caller's header lines, encoded (``Headers.encode``)
    has_host: bool
    has_length: bool  # the caller gave Content-Length or Transfer-Encoding (checked)
    wants_close: bool
    # An iterable body's length: the caller's Content-Length, or else the size of a file body
    # (the protocol then sends Content-Length itself); None: unknown, so chunked.
    declared_length: int | None


_new_framing = RequestFraming._make  # tuple.__new__: a third of the NamedTuple call's cost

FILE_BLOCK = 64 * 1024  # a file body is read in blocks of this size


def _file_blocks(file: Any) -> tuple[Iterator[bytes], int | None]:
    """A file object's content from its current position, in blocks, and its size if known."""
    text = isinstance(file, io.TextIOBase)
    return _read_blocks(file, text), None if text else _remaining_size(file)


def _read_blocks(file: Any, text: bool) -> Iterator[bytes]:
    while block := file.read(FILE_BLOCK):
        yield block.encode("utf-8") if text else bytes(block)


def _remaining_size(file: Any) -> int | None:
    """Bytes from the current position to the end: fstat for a regular file, else seek."""
    try:
        info = os.fstat(file.fileno())
        if stat.S_ISREG(info.st_mode):
            return max(0, info.st_size - int(file.tell()))
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        pass
    try:
        if file.seekable():
            here = file.tell()
            end = file.seek(0, os.SEEK_END)
            file.seek(here)
            return max(0, int(end - here))
    except (AttributeError, OSError, ValueError):
        pass
    return None  # a pipe, a socket file, a custom reader: sent chunked


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class AsyncBody:
    """An async iterable request body (``source``): only the asyncio clients can send it, and
    they stream it as it comes. It is an Iterable only so that ``Request.body`` keeps one type;
    iterating it is the mistake of giving it to a threaded client, and says so."""

    __slots__ = ("source",)

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self.source = source

    def __iter__(self) -> Iterator[bytes]:
        raise TypeError(
            "an async iterable request body can only be sent by AsyncSession, "
            "AsyncConnectionPool or AsyncPoolManager"
        )


class Request:
    """One HTTP request, validated: what a pool sends. Build it with a Session or a pool."""

    __slots__ = ("_body_length", "_headers", "_shared", "body", "method", "url")

    def __init__(
        self,
        method: str,
        url: URL | str,
        *,
        headers: HeaderInput = None,
        body: bytes | str | Iterable[bytes] | AsyncIterable[bytes] | None = None,
    ) -> None:
        self.method = check_method(method)
        self.url = parse_url(url)
        # A Headers object passed in (a session's defaults, say) is shared until someone asks
        # for ``request.headers``, which then gets a copy of its own: no copy per request.
        self._shared = isinstance(headers, Headers)
        self._headers = headers if isinstance(headers, Headers) else Headers(headers)
        if self.url.auth is not None and "authorization" not in self._headers:
            # Userinfo in the URL is Basic credentials, unless the caller chose others.
            self._headers = self._headers.merged({"Authorization": self.url.basic_auth()})
            self._shared = False
        self._body_length: int | None = None  # an iterable body's size, when tether knows it
        if body is None or isinstance(body, bytes):
            self.body: bytes | Iterable[bytes] | None = body
        elif hasattr(body, "read"):  # a file object: iterating it would give one chunk a line
            self.body, self._body_length = _file_blocks(body)
        elif isinstance(body, str):
            self.body = body.encode("utf-8")
        elif isinstance(body, (bytearray, memoryview)):
            self.body = bytes(body)
        elif isinstance(body, AsyncIterable):
            self.body = AsyncBody(body)
        elif isinstance(body, Mapping) or not isinstance(body, Iterable):
            raise TypeError(
                f"request body must be bytes, str or an (async) iterable of bytes, not "
                f"{type(body).__name__} (form fields and JSON have their own arguments)"
            )
        else:
            self.body = body
        # The body's framing is tether's; headers that would contradict it are refused here,
        # before anything is sent (a mismatch would make the server read a second request),
        # and again by ``framing()`` when the request is encoded, whatever changed in between.
        if self._headers.framing()[1]:
            self._check_framing()

    def framing(self) -> RequestFraming:
        """The header block to send and the framing facts, checked against the body now.

        Every protocol calls this where it encodes the request (HTTP/1.1 and HTTP/2 alike):
        headers changed after construction (``req.headers["Content-Length"] = "1"``) are
        checked here, so a Content-Length that does not match the body never reaches the wire.
        Raises InvalidHeader. Costs one cache probe when no framing header was given.
        """
        headers = self._headers
        cache = headers._cache
        if cache is None or cache[0] != headers._version:
            cache = headers._fill(headers._version, list(headers._items))
        if not cache[2][1] and self._body_length is None:
            return cache[3]  # the usual case: nothing to check, made once per headers version
        block, (has_host, has_length, close) = cache[1], cache[2]
        declared = self._check_framing() if has_length else self._body_length
        return _new_framing((block, has_host, has_length, close, declared))

    @property
    def declared_length(self) -> int | None:
        """An iterable body's length: the caller's Content-Length or a file's size (None:
        unknown, sent chunked)."""
        return self.framing().declared_length

    def _check_framing(self) -> int | None:
        headers, body = self._headers, self.body
        length = headers.get("content-length")
        coding = headers.get("transfer-encoding")
        if length is not None and coding is not None:
            raise InvalidHeader("both Content-Length and Transfer-Encoding were given")
        if coding is not None:
            if body is None or isinstance(body, bytes) or coding.strip().lower() != "chunked":
                raise InvalidHeader(
                    f"Transfer-Encoding {coding!r} is only accepted as 'chunked' with an "
                    f"iterable body; tether frames bytes bodies with Content-Length itself"
                )
            return None
        if length is None:
            return None  # both removed since the cached framing facts were computed
        if not length.strip().isdigit():
            raise InvalidHeader(f"invalid Content-Length {length!r}")
        declared = int(length)
        size = 0 if body is None else len(body) if isinstance(body, bytes) else None
        if size is not None and size != declared:
            raise InvalidHeader(f"Content-Length {declared} does not match a {size}-byte body")
        return declared if size is None else None  # an iterable body is sent as is, counted

    @property
    def headers(self) -> Headers:
        """This request's headers (its own copy: changing them changes nothing else)."""
        if self._shared:
            self._headers = self._headers.copy()
            self._shared = False
        return self._headers

    def wire_headers(self) -> Headers:
        """The headers as they will be sent, without copying (for the connection; read-only)."""
        return self._headers

    @property
    def replayable(self) -> bool:
        """May this request be sent again after it may have reached the server?

        Go net/http's rule: an idempotent method, or an ``Idempotency-Key`` header, and a body
        that can be produced again (bytes or none; not a one-shot iterator).
        """
        if self.body is not None and not isinstance(self.body, bytes):
            return False
        headers = self._headers
        return self.method in IDEMPOTENT_METHODS or (
            "idempotency-key" in headers or "x-idempotency-key" in headers
        )

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"
