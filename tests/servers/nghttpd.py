"""nghttpd (nghttp2 1.52) on loopback: h2 only, the frame-by-frame oracle.

``Nghttpd(workdir, binary=..., ca=ca, max_concurrent_streams=2, tls=True)`` serves the files
``/`` (``index.html``, ``hello nghttpd\\n``) and ``/64k.bin`` on ONE port: TLS with ALPN h2
only (no http/1.1 fallback), or with ``tls=False`` h2c with prior knowledge (no Upgrade, no
HTTP/1.1). ``url`` is that port's URL either way; ``h2c_url`` is the same URL when
``tls=False``.

- ``max_concurrent_streams`` (``-m``) is what SETTINGS announce; a client that opens more
  gets GOAWAY(PROTOCOL_ERROR).
- Not available: an idle timeout, GOAWAY after N requests.

Runs with ``-v``: ``frames()`` is every frame line it sent or received, each prefixed
``[id=N]``, N one per TCP connection. ``access_log()`` has one entry per request HEADERS it
received (status 0: the frame log does not pair responses), ``connection`` = that id.
``connections_accepted()`` counts connections that sent a preface, with or without requests.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import trustme

from .process import AccessEntry, ServerProcess

INDEX_BODY = b"hello nghttpd\n"
_SESSION = re.compile(r"^\[id=(\d+)\] \[[ \d.]+\] recv SETTINGS frame", re.MULTILINE)
_PATH = re.compile(r"^\[id=(\d+)\] \[[ \d.]+\] recv \(stream_id=\d+\) :path: (\S+)$", re.MULTILINE)


def find_nghttpd() -> str | None:
    """Path of the nghttpd binary (apt ``nghttp2-server``), or None."""
    found = shutil.which("nghttpd")
    if found is None and os.access("/usr/sbin/nghttpd", os.X_OK):
        return "/usr/sbin/nghttpd"
    return found


class Nghttpd(ServerProcess):
    """One nghttpd on one port (``url``): TLS h2, or h2c prior knowledge with ``tls=False``."""

    name = "nghttpd"
    ports_needed = 1
    stop_grace = 1.0

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str,
        ca: trustme.CA,
        max_concurrent_streams: int = 100,
        tls: bool = True,
    ) -> None:
        super().__init__(workdir, binary=binary, ca=ca)
        self.max_concurrent_streams = max_concurrent_streams
        self.tls = tls

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def h2c_port(self) -> int:
        if self.tls:
            raise ValueError("this nghttpd is TLS-only; start it with tls=False for h2c")
        return self.port

    def _command(self) -> list[str]:
        www = self.workdir / "www"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_bytes(INDEX_BODY)
        (www / "64k.bin").write_bytes(bytes(range(256)) * 256)
        argv = [self.binary, "-v", "-a", self.host, "-d", str(www)]
        argv += ["-m", str(self.max_concurrent_streams), str(self.port)]
        if self.tls:
            return [*argv, str(self.key_file), str(self.cert_file)]
        return [*argv, "--no-tls"]

    def frames(self) -> str:
        """The ``-v`` frame log so far (what was sent and received, per connection)."""
        return self.output()

    def connections_accepted(self) -> int:
        """Connections that sent an HTTP/2 preface (the readiness probe's connect did not)."""
        return len(set(_SESSION.findall(self.output())))

    def _parse_access_log(self) -> list[AccessEntry]:
        text = self.output()
        return [AccessEntry(conn, "HTTP/2", "GET", path, 0) for conn, path in _PATH.findall(text)]
