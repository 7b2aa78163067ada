"""HTTP/2 header lists: a request's, built from HTTP/1.1-style fields, and a response's, checked.

RFC 9113 section 8.2-8.3: names are lowercase, pseudo-headers come first, connection-specific
fields are forbidden, and a response carries exactly one ``:status`` and no request
pseudo-headers. A response that breaks one of these rules is *malformed*: a stream error, so
the caller resets that stream and the connection lives on. Values are latin-1, as in HTTP/1.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..exceptions import InvalidHeader

__all__ = ["MalformedHeaders", "parse_response_head", "parse_trailers", "request_headers"]

CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
SENSITIVE = frozenset({b"authorization", b"cookie", b"proxy-authorization"})
# Anything but a lowercase token character; checked once over all names joined by "-".
_BAD_NAMES = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9a-z]")
_BAD_VALUES = re.compile(rb"[\r\n\x00]")


class MalformedHeaders(Exception):
    """A response header block breaks RFC 9113 section 8; the message says how."""


def _as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("latin-1")


def request_headers(
    method: str,
    scheme: str,
    authority: str,
    target: str,
    headers: Iterable[tuple[str | bytes, str | bytes]],
) -> list[tuple[bytes, bytes]]:
    """HTTP/1.1-style request fields as an HTTP/2 header list, pseudo-headers first.

    Names are lowercased; Host becomes ``:authority`` when ``authority`` is empty and is dropped
    otherwise; connection-specific fields (and any field that Connection names) are dropped;
    TE survives only as ``te: trailers``.
    """
    pairs = [(_as_bytes(name).lower(), _as_bytes(value)) for name, value in headers]
    dropped = set(CONNECTION_SPECIFIC)
    for name, value in pairs:
        if name == b"connection":
            dropped.update(token.strip().lower() for token in value.split(b","))
    host = b""
    regular: list[tuple[bytes, bytes]] = []
    for name, value in pairs:
        if name == b"host":
            host = host or value
        elif name == b"te":
            tokens = {token.split(b";")[0].strip().lower() for token in value.split(b",")}
            if b"trailers" in tokens:
                regular.append((b"te", b"trailers"))
        elif name not in dropped:
            regular.append((name, value))
    where = _as_bytes(authority) if authority else host
    if not where:
        raise InvalidHeader("an HTTP/2 request needs an authority (or a Host header)")
    return [
        (b":method", method.encode("ascii")),
        (b":scheme", scheme.encode("ascii")),
        (b":authority", where),
        (b":path", target.encode("ascii")),
        *regular,
    ]


def parse_response_head(
    fields: list[tuple[bytes, bytes, bool]],
) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status and the regular fields of a decoded response head, or MalformedHeaders."""
    status = -1
    regular: list[tuple[bytes, bytes]] = []
    for name, value, _ in fields:
        if name[:1] != b":":
            regular.append((name, value))
        elif regular:
            raise MalformedHeaders(f"pseudo-header {name!r} after a regular header")
        elif name != b":status":
            raise MalformedHeaders(f"pseudo-header {name!r} is not allowed in a response")
        elif status != -1:
            raise MalformedHeaders("repeated :status")
        elif len(value) != 3 or not value.isdigit():
            raise MalformedHeaders(f":status {value!r} is not a three-digit code")
        else:
            status = int(value)
    if status == -1:
        raise MalformedHeaders("no :status in the response head")
    check_fields(regular)
    return status, regular


def parse_trailers(fields: list[tuple[bytes, bytes, bool]]) -> list[tuple[bytes, bytes]]:
    """The fields of a trailer block, or MalformedHeaders (no pseudo-header may appear)."""
    regular = [(name, value) for name, value, _ in fields]
    for name, _ in regular:
        if name[:1] == b":":
            raise MalformedHeaders(f"pseudo-header {name!r} in trailers")
    check_fields(regular)
    return regular


def check_fields(fields: list[tuple[bytes, bytes]]) -> None:
    """Raise MalformedHeaders for an uppercase or non-token name, a connection-specific field,
    or CR, LF or NUL in a value. One regex pass over all names and one over all values."""
    if not fields:
        return
    names = [name for name, _ in fields]
    if not all(names) or _BAD_NAMES.search(b"-".join(names)):
        bad = next(n for n in names if not n or _BAD_NAMES.search(n))
        raise MalformedHeaders(f"header name {bad!r} is not a lowercase token")
    if _BAD_VALUES.search(b" ".join(value for _, value in fields)):
        bad = next(n for n, v in fields if _BAD_VALUES.search(v))
        raise MalformedHeaders(f"header {bad!r} has CR, LF or NUL in its value")
    forbidden = CONNECTION_SPECIFIC.intersection(names)
    if forbidden or (b"te" in names and any(n == b"te" and v != b"trailers" for n, v in fields)):
        bad = min(forbidden) if forbidden else b"te"
        raise MalformedHeaders(f"connection-specific header {bad!r} in a response")


def content_length(fields: list[tuple[bytes, bytes]]) -> int | None:
    """The declared content-length, None if absent, or MalformedHeaders if it is not one
    non-negative number (repeats must agree)."""
    found = None
    for name, value in fields:
        if name == b"content-length":
            for part in value.split(b","):
                part = part.strip()
                if (
                    not part.isdigit()
                    or len(part) > 18
                    or (found is not None and int(part) != found)
                ):
                    raise MalformedHeaders(f"bad content-length {value!r}")
                found = int(part)
    return found
