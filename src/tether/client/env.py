"""What ``trust_env`` reads from the environment: proxies (refused for now), CA files, .netrc.

Read once, when the session is made (as httpx does), into an `Environment`; each request
then asks it pure questions. ``trust_env=False`` gives an empty one.

Proxies are not supported yet. A proxy variable that applies to a request raises
ProxiesNotSupported naming it, rather than being silently ignored (a user behind a proxy
would otherwise see connection timeouts, or talk to the network directly when policy says
not to). `proxy_variable` is the one function the proxy work will replace.
"""

from __future__ import annotations

import netrc
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..exceptions import ProxiesNotSupported
from ..io.tls import VerifyTypes
from ..models import URL

__all__ = ["Environment", "netrc_auth", "proxy_variable"]

_PROXY_NAMES = ("http_proxy", "https_proxy", "all_proxy")


def proxy_variable(url: URL, environ: Mapping[str, str]) -> str | None:
    """The name of the proxy variable that would apply to ``url`` (None: no proxy)."""
    scheme = url.origin.scheme
    for name in (f"{scheme}_proxy", "all_proxy"):
        for spelling in (name, name.upper()):
            # HTTP_PROXY is ignored under CGI (REQUEST_METHOD set): a request's Proxy
            # header arrives there as HTTP_PROXY ("httpoxy", CVE-2016-5385).
            if spelling == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
                continue
            if environ.get(spelling):
                no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
                host = url.origin.host
                if no_proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
                    host, {"no": no_proxy}
                ):
                    return None
                return spelling
    return None


def netrc_auth(url: URL, path: str | None) -> tuple[str, str] | None:
    """(login, password) for ``url``'s host from the netrc file at ``path``, if it has one.

    A missing file means no credentials; a file that does not parse is an error naming the
    file and line (never its content: it holds passwords).
    """
    if path is None:
        return None
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return None
    entries = _netrc_cache.get(path)
    if entries is None or entries[0] != stamp:  # parsed once, again only if it changes
        try:
            entries = (stamp, netrc.netrc(path))
        except netrc.NetrcParseError as exc:
            raise ValueError(f"cannot parse netrc file {path}, line {exc.lineno}") from None
        _netrc_cache[path] = entries
    found = entries[1].authenticators(url.origin.host)
    if found is None:
        return None
    login, _, password = found
    return login, password or ""


_netrc_cache: dict[str, tuple[int, netrc.netrc]] = {}


def _netrc_path(environ: Mapping[str, str]) -> str | None:
    if environ.get("NETRC"):
        return environ["NETRC"]
    home = os.path.expanduser("~")
    for name in (".netrc", "_netrc"):
        candidate = os.path.join(home, name)
        if os.path.isfile(candidate):
            return candidate
    return None


@dataclass(frozen=True)
class Environment:
    """What a session took from the environment (all empty with ``trust_env=False``)."""

    proxies: dict[str, str] = field(default_factory=dict)
    netrc_path: str | None = None
    ca_file: str | None = None
    ca_dir: str | None = None

    @classmethod
    def read(cls, trust_env: bool, environ: Mapping[str, str] | None = None) -> Environment:
        """The settings ``trust_env`` takes from ``environ`` (default ``os.environ``)."""
        if not trust_env:
            return cls()
        env = dict(os.environ if environ is None else environ)
        wanted = {*_PROXY_NAMES, *(n.upper() for n in _PROXY_NAMES), "no_proxy", "NO_PROXY"}
        if "REQUEST_METHOD" in env:
            wanted.add("REQUEST_METHOD")
        return cls(
            proxies={k: v for k, v in env.items() if k in wanted and v},
            netrc_path=_netrc_path(env),
            ca_file=env.get("SSL_CERT_FILE") or None,
            ca_dir=env.get("SSL_CERT_DIR") or None,
        )

    def check_proxy(self, url: URL) -> None:
        """Raise ProxiesNotSupported if the environment would send ``url`` via a proxy."""
        if not self.proxies:
            return
        name = proxy_variable(url, self.proxies)
        if name is not None:
            raise ProxiesNotSupported(
                f"{name} is set, and tether does not support proxies yet: it would connect "
                f"to {url.origin} directly. Unset {name}, add the host to NO_PROXY, or pass "
                f"trust_env=False",
                variable=name,
            )

    def verify(self, verify: VerifyTypes) -> VerifyTypes:
        """``verify=True`` means SSL_CERT_FILE (or SSL_CERT_DIR) when set, as in OpenSSL."""
        if verify is not True:
            return verify
        return self.ca_file or self.ca_dir or True

    def auth_for(self, url: URL) -> tuple[str, str] | None:
        """Credentials for ``url`` from .netrc (None without trust_env or an entry)."""
        return netrc_auth(url, self.netrc_path)
