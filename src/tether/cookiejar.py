"""`Cookies`: the session's cookie jar, a real ``http.cookiejar.CookieJar`` that is dict-like.

Standard library only, on the floor, so that a `Response` can hold one (``response.cookies``);
the rules about which cookie goes where live in ``client.cookies``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookiejar import Cookie, CookieJar

__all__ = ["CookieTypes", "Cookies", "make_cookie"]

CookieTypes = Mapping[str, str] | CookieJar | None


class Cookies(CookieJar):
    """A ``http.cookiejar.CookieJar`` that is also dict-like by cookie name.

    ``jar["session"]``, ``jar.get("session")``, ``"session" in jar``, ``jar.keys()``,
    ``jar.items()``, ``dict(jar.items())``; ``jar["name"] = "v"`` sets a cookie for any host
    (as requests does); ``jar.set(name, value, domain=..., path=...)`` scopes it. When the same
    name is held for several domains, ``jar[name]`` raises KeyError naming them: say which
    with ``get(name, domain=...)``. Iterating yields ``http.cookiejar.Cookie`` objects (the
    CookieJar contract); ``keys()`` yields names.
    """

    def __init__(self, cookies: CookieTypes = None) -> None:
        super().__init__()
        if isinstance(cookies, CookieJar):
            for cookie in cookies:
                self.set_cookie(cookie)
        elif cookies:
            for name, value in cookies.items():
                self.set(name, value)

    def set(self, name: str, value: str, *, domain: str = "", path: str = "/") -> None:
        """Store cookie ``name``; ``domain`` "" sends it to every host (requests' rule)."""
        self.set_cookie(make_cookie(name, value, domain=domain, path=path))

    def get(
        self,
        name: str,
        default: str | None = None,
        *,
        domain: str | None = None,
        path: str | None = None,
    ) -> str | None:
        """The value of cookie ``name`` (narrowed to ``domain``/``path`` if given)."""
        found = self._find(name, domain, path)
        return default if not found else _one(name, found).value

    def _find(self, name: str, domain: str | None, path: str | None) -> list[Cookie]:
        return [
            c
            for c in self
            if c.name == name
            and (domain is None or c.domain.lstrip(".") == domain.lstrip("."))
            and (path is None or c.path == path)
        ]

    def __getitem__(self, name: str) -> str:
        found = self._find(name, None, None)
        if not found:
            raise KeyError(name)
        value = _one(name, found).value
        return value if value is not None else ""

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        found = self._find(name, None, None)
        if not found:
            raise KeyError(name)
        for c in found:
            self.clear(c.domain, c.path, c.name)

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self)

    def keys(self) -> list[str]:
        """Cookie names (a name held for two domains appears twice)."""
        return [c.name for c in self]

    def values(self) -> list[str]:
        """Cookie values, in ``keys()`` order."""
        return [c.value or "" for c in self]

    def items(self) -> list[tuple[str, str]]:
        """(name, value) pairs: ``dict(jar.items())`` is requests' ``get_dict()``."""
        return [(c.name, c.value or "") for c in self]

    def update(self, other: CookieTypes) -> None:
        """Add every cookie of ``other`` (a jar keeps its scopes; a mapping is for any host)."""
        for cookie in Cookies(other):
            self.set_cookie(cookie)

    def __repr__(self) -> str:
        # Values are secrets (session ids): names and domains only.
        shown = ", ".join(f"{c.name}@{c.domain or '*'}{c.path}" for c in self)
        return f"<Cookies [{shown}]>"

    __str__ = __repr__


def _one(name: str, found: list[Cookie]) -> Cookie:
    if len(found) > 1 and len({(c.domain, c.path) for c in found}) > 1:
        where = ", ".join(sorted(f"{c.domain or '*'}{c.path}" for c in found))
        raise KeyError(f"cookie {name!r} is set for several domains/paths ({where}): pass domain=")
    return found[0]


def make_cookie(name: str, value: str, *, domain: str = "", path: str = "/") -> Cookie:
    """A session cookie (no expiry) for ``domain`` ("" matches any host) and ``path``."""
    if any(ch in str(name) for ch in "=;, \t\r\n") or not name:
        raise ValueError(f"invalid cookie name {name!r}")
    if any(ch in str(value) for ch in ";\r\n"):
        raise ValueError(f"cookie {name!r} has a ';', CR or LF in its value")
    return Cookie(
        version=0, name=str(name), value=str(value), port=None, port_specified=False,
        domain=domain, domain_specified=False, domain_initial_dot=False,
        path=path, path_specified=True, secure=False, expires=None, discard=True,
        comment=None, comment_url=None, rest={}, rfc2109=False,
    )  # fmt: skip
