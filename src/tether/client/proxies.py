"""Which proxy a request goes through: the session's settings, the request's, the environment.

Pure code, written once for Session and AsyncSession. The forms are requests':
``proxy="http://user:pass@host:3128"`` (every scheme), or ``proxies={"http": ..., "https":
..., "all": ..., "https://host": ..., "all://host": ..., "no_proxy": "a,b"}``; a value of None
or "" means "direct" for that key. With ``trust_env`` the environment's ``http_proxy``,
``https_proxy``, ``all_proxy`` and ``no_proxy`` (lower case first, then upper case) fill in
what the explicit settings leave open. Upper-case ``HTTP_PROXY`` is ignored when
``REQUEST_METHOD`` is set (a CGI script: the client's ``Proxy:`` header lands there, "httpoxy").

``no_proxy`` entries, comma or space separated: ``*`` (everything), a host name (itself and
its subdomains; a leading ``.`` or ``*.`` means the same), an IP address, a CIDR range
(``10.0.0.0/8``, ``fd00::/8``), an IPv6 address with or without brackets, and any of these
with ``:port`` to match that port only.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping

from ..models import URL
from ..protocol.proxy import Proxy

__all__ = ["ProxiesTypes", "ProxyChooser", "bypasses", "proxy_for"]

ProxiesTypes = Mapping[str, "str | Proxy | None"] | None
_ENV_KEYS = ("http", "https", "all", "no")


def proxy_for(
    url: URL | str,
    proxies: ProxiesTypes = None,
    trust_env: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Proxy | None:
    """The proxy ``url`` goes through (None: direct).

    ``proxies`` wins over the environment; the environment is read (``os.environ`` unless
    ``environ`` is given) only when ``trust_env`` is True. Raises InvalidProxyURL for a proxy
    URL tether cannot use (an unsupported scheme, no host).
    """
    target = url if isinstance(url, URL) else URL(url)
    env = environment_proxies(os.environ if environ is None else environ) if trust_env else {}
    return _choose(target, proxies or {}, env)


def _choose(url: URL, explicit: Mapping[str, object], env: Mapping[str, str]) -> Proxy | None:
    chosen = _select(url, explicit)
    if chosen is not _UNSET:
        if chosen and not bypasses(url, str(explicit.get("no_proxy") or "")):
            return _parse(chosen)
        return None
    chosen = _select(url, env)
    if chosen is _UNSET or not chosen or bypasses(url, env.get("no_proxy") or ""):
        return None
    return _parse(chosen)


@functools.lru_cache(maxsize=64)
def _parse(url: str | Proxy) -> Proxy:
    # The environment's and a request's proxies are strings: parsed once, not per request.
    # (An invalid one raises every time: lru_cache keeps no exceptions.)
    return Proxy.parse(url)


class ProxyChooser:
    """A session's proxy settings, parsed once; ``choose`` is ``proxy_for`` with them."""

    def __init__(
        self,
        proxy: str | Proxy | None = None,
        proxies: ProxiesTypes = None,
        trust_env: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        settings: dict[str, str | Proxy | None] = dict(proxies or {})
        if proxy is not None:
            settings.setdefault("all", proxy)
        # Parsed now: a bad proxy URL fails the Session's constructor, not its first request.
        self.proxies: dict[str, str | Proxy | None] = {
            k: (Proxy.parse(v) if v and k != "no_proxy" else v) for k, v in settings.items()
        }
        self.trust_env = trust_env
        self._env = environment_proxies(os.environ if environ is None else environ)

    def choose(self, url: URL, override: ProxiesTypes = None) -> Proxy | None:
        """The proxy for ``url``; a request's ``proxies`` override the session's per key."""
        proxies = self.proxies if not override else {**self.proxies, **override}
        if not proxies and not (self.trust_env and self._env):
            return None  # the common case: nothing configured, nothing to look at
        return _choose(url, proxies, self._env if self.trust_env else {})


def environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``{"http": ..., "https": ..., "all": ..., "no_proxy": ...}`` from the environment."""
    found: dict[str, str] = {}
    cgi = "REQUEST_METHOD" in environ
    for key in _ENV_KEYS:
        name = f"{key}_proxy"
        value = environ.get(name)
        if value is None and not (cgi and key == "http"):
            value = environ.get(name.upper())
        if value:
            found["no_proxy" if key == "no" else key] = value.strip()
    return found


_UNSET: object = object()


def _select(url: URL, proxies: Mapping[str, object]) -> object:
    """The most specific entry for ``url`` (requests' order), or _UNSET if none applies."""
    scheme = url.origin.scheme
    host = url.origin.host.strip("[]")
    for key in (f"{scheme}://{host}", scheme, f"{scheme}://", f"all://{host}", "all", "all://"):
        if key in proxies:
            return proxies[key]
    return _UNSET


def bypasses(url: URL, no_proxy: str) -> bool:
    """Does a ``no_proxy`` list name ``url``'s host (and port)?"""
    if not no_proxy.strip():
        return False
    host = url.origin.host.strip("[]").lower().rstrip(".")
    port = url.origin.port
    ip = _ip(host)
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if _matches(name, host, ip):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``[v6]``, a bare IPv6 address or a CIDR range."""
    if entry.startswith("["):
        inside, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return inside, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None  # a bare IPv6 address (many colons) or no port


def _matches(
    name: str, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> bool:
    if ip is not None:
        try:
            return ip in ipaddress.ip_network(name, strict=False)
        except ValueError:
            return False  # a host name entry never matches an IP literal
    if "/" in name or _ip(name) is not None:
        return False
    name = name.removeprefix("*").lstrip(".").rstrip(".")
    return bool(name) and (host == name or host.endswith("." + name))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
