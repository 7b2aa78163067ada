"""TLS settings: which SSLContext a connection uses, and the key that keeps pools apart.

Contexts are built once per distinct setting and cached, because building one (loading the CA
bundle) costs milliseconds: a one-shot ``tether.get()`` must not pay it on every call. A context
the user passes in is used as it is and never modified.
"""

from __future__ import annotations

import os.path
import ssl
import threading
from dataclasses import dataclass

import certifi

from ..exceptions import TLSError
from ..models import Origin
from ..protocol.proxy import Proxy

__all__ = ["TLSConfig", "VerifyTypes", "pool_tls", "proxy_tls"]

VerifyTypes = bool | str | os.PathLike[str] | ssl.SSLContext
CertTypes = str | tuple[str, str] | None

_ALPN_HTTP11 = ["http/1.1"]
_ALPN_H2 = ["h2", "http/1.1"]


@dataclass(frozen=True)
class TLSConfig:
    """How to set up TLS for an origin; part of the pool key.

    Args:
        verify: True (certifi's CA bundle), False (no verification: never the default), the path
            of a CA bundle file or directory, or an ``ssl.SSLContext`` used unchanged.
        cert: a client certificate: a PEM path holding cert and key, or (cert path, key path).
        http2: offer ``h2`` as well as ``http/1.1`` in ALPN (the server chooses). A context
            passed as ``verify`` is used unchanged, its own ALPN list included.
    """

    verify: VerifyTypes = True
    cert: CertTypes = None
    http2: bool = False

    def context(self) -> ssl.SSLContext:
        """The SSLContext for these settings (built once, then shared)."""
        if isinstance(self.verify, ssl.SSLContext):
            return self.verify
        with _lock:
            ctx = _contexts.get(self)
        if ctx is None:
            try:
                ctx = self._build()  # outside the lock: loading a CA bundle takes milliseconds
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise TLSError(
                    f"cannot use the TLS settings verify={self.verify!r}, cert={self.cert!r}: {exc}"
                ) from None
            with _lock:
                ctx = _contexts.setdefault(self, ctx)
        return ctx

    def _build(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.verify is False:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.verify is True:
            # Explicitly certifi: never the environment's CA variables.
            ctx.load_verify_locations(cafile=certifi.where())
        elif not isinstance(self.verify, ssl.SSLContext):
            path = os.fspath(self.verify)
            if os.path.isdir(path):
                ctx.load_verify_locations(capath=path)
            else:
                ctx.load_verify_locations(cafile=path)
        if self.cert is not None:
            certfile, keyfile = (self.cert, None) if isinstance(self.cert, str) else self.cert
            ctx.load_cert_chain(certfile, keyfile)
        ctx.set_alpn_protocols(_ALPN_H2 if self.http2 else _ALPN_HTTP11)
        return ctx


_lock = threading.Lock()
_contexts: dict[TLSConfig, ssl.SSLContext] = {}


def pool_tls(
    origin: Origin, tls: TLSConfig | None, default: TLSConfig, proxy: Proxy | None
) -> TLSConfig | None:
    """The TLS settings in a pool's key: an https origin's, and an https proxy's (``verify``
    covers the proxy too), so that connections made with other settings are never shared."""
    if origin.scheme == "https" or (proxy is not None and proxy.tls):
        return tls or default
    return None


def proxy_tls(proxy: Proxy | None, verify: VerifyTypes) -> TLSConfig | None:
    """How to check an https proxy: the session's ``verify``, no client certificate (that
    is the origin's), and ALPN http/1.1 only (a proxy speaks HTTP/1.1 to us)."""
    return TLSConfig(verify) if proxy is not None and proxy.tls else None
