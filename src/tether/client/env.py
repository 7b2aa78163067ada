"""What ``trust_env`` reads from the environment: CA files and .netrc.

Read once, when the session is made (as httpx does), into an `Environment`; each request
then asks it pure questions. ``trust_env=False`` gives an empty one. The proxy variables
(``HTTP_PROXY``, ``NO_PROXY``...) are read by ``client.proxies``, which chooses the proxy.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..io.tls import VerifyTypes
from ..models import URL

__all__ = ["Environment", "netrc_auth"]


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

    netrc_path: str | None = None
    ca_file: str | None = None
    ca_dir: str | None = None

    @classmethod
    def read(cls, trust_env: bool, environ: Mapping[str, str] | None = None) -> Environment:
        """The settings ``trust_env`` takes from ``environ`` (default ``os.environ``)."""
        if not trust_env:
            return cls()
        env = os.environ if environ is None else environ
        return cls(
            netrc_path=_netrc_path(env),
            ca_file=env.get("SSL_CERT_FILE") or None,
            ca_dir=env.get("SSL_CERT_DIR") or None,
        )

    def verify(self, verify: VerifyTypes) -> VerifyTypes:
        """``verify=True`` means SSL_CERT_FILE (or SSL_CERT_DIR) when set, as in OpenSSL."""
        if verify is not True:
            return verify
        return self.ca_file or self.ca_dir or True

    def auth_for(self, url: URL) -> tuple[str, str] | None:
        """Credentials for ``url`` from .netrc (None without trust_env or an entry)."""
        return netrc_auth(url, self.netrc_path)
