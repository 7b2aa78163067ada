"""Which cookies go to which URL, and what a Set-Cookie may store: the stdlib's rules, adapted.

``http.cookiejar`` already knows the rules (domain and path matching, Secure only over https,
expiry, a Domain attribute the host may not set is ignored, the little public-suffix safety
the stdlib has), but speaks ``urllib.request`` objects. `_UrllibRequest` and `_UrllibResponse`
are the smallest such objects that carry a tether URL and headers; nothing else here is I/O.

The jar itself, `tether.Cookies`, is in ``tether.cookiejar``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from http.cookiejar import CookieJar
from typing import Any

from ..cookiejar import Cookies, CookieTypes
from ..models import URL, Headers

__all__ = [
    "any_cookies",
    "cookie_header",
    "extract_cookies",
    "scoped_cookies",
]


def scoped_cookies(cookies: CookieTypes, url: URL) -> Cookies | None:
    """Per-request ``cookies=``: a mapping's cookies are for ``url``'s host only (requests
    sends them to any host a redirect leads to; tether does not), a jar keeps its own scopes."""
    if not cookies:
        return None
    if isinstance(cookies, CookieJar):
        return Cookies(cookies)
    jar = Cookies()
    for name, value in cookies.items():
        jar.set(name, value, domain=url.origin.host)
    return jar


def cookie_header(jars: Iterable[CookieJar | None], url: URL) -> str | None:
    """The Cookie header for ``url`` from ``jars`` (earlier jars win for a name), or None."""
    pairs: dict[str, str] = {}
    for jar in jars:
        if jar is None or not jar._cookies:  # type: ignore[attr-defined]  # skip len()'s walk
            continue
        probe = _UrllibRequest(url, Headers())
        jar.add_cookie_header(probe)  # type: ignore[arg-type]
        value = probe.added.get("Cookie")
        if value:
            for part in value.split("; "):
                name, _, _ = part.partition("=")
                pairs.setdefault(name, part)
    return "; ".join(pairs.values()) or None


def extract_cookies(jar: CookieJar, response_headers: Headers, url: URL) -> None:
    """Store what the response's Set-Cookie headers may set for ``url`` in ``jar``."""
    jar.extract_cookies(_UrllibResponse(response_headers), _UrllibRequest(url, Headers()))  # type: ignore[arg-type]


def any_cookies(jars: Iterable[CookieJar | None]) -> bool:
    """Whether any of ``jars`` holds a cookie (without CookieJar.__len__'s walk)."""
    return any(jar is not None and jar._cookies for jar in jars)  # type: ignore[attr-defined]


class _UrllibRequest:
    """What ``CookieJar`` asks of a ``urllib.request.Request``, for a tether URL."""

    def __init__(self, url: URL, headers: Headers) -> None:
        self._url = url
        self._headers = headers
        self.added: dict[str, str] = {}
        self.type = url.origin.scheme
        self.host = url.host_header
        self.origin_req_host = url.origin.host
        self.unverifiable = False

    def get_full_url(self) -> str:
        return str(self._url)

    def get_host(self) -> str:
        return self.host

    def get_type(self) -> str:
        return self.type

    def is_unverifiable(self) -> bool:
        return False

    def get_origin_req_host(self) -> str:
        return self.origin_req_host

    def has_header(self, name: str) -> bool:
        return name in self._headers or name.capitalize() in self.added

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name, self.added.get(name.capitalize(), default))

    def header_items(self) -> list[tuple[str, str]]:
        return [*self._headers.items(), *self.added.items()]

    def add_unredirected_header(self, name: str, value: str) -> None:
        self.added[name.capitalize()] = value


class _UrllibResponse:
    """What ``CookieJar.extract_cookies`` asks of a response: ``info().get_all(name)``."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def info(self) -> _UrllibResponse:
        return self

    def get_all(self, name: str, default: Any = None) -> list[str] | Any:
        values = self._headers.get_list(name)
        return values or default

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)
