"""hypercorn 0.18 on loopback, serving ``hypercorn_app`` (routes: see that module).

``Hypercorn(workdir, ca=ca, keep_alive_max_requests=3, max_concurrent_streams=2,
keep_alive_timeout=2)``: ``url`` is TLS (ALPN h2 and http/1.1), ``h2c_url`` the insecure bind
(HTTP/1.1, h2c with prior knowledge, and ``Upgrade: h2c``).

What the limits really do (measured, hypercorn 0.18.0):

- ``keep_alive_max_requests``: HTTP/1.1 gets ``Connection: close`` on the Nth response.
  HTTP/2 is **off by one**: GOAWAY(NO_ERROR) comes after the (N+1)th. A request sent in that
  race gets GOAWAY(PROTOCOL_ERROR) and a close: a real GOAWAY-race fixture.
- ``max_concurrent_streams`` (``h2_max_concurrent_streams``): a client that opens more
  streams gets GOAWAY(PROTOCOL_ERROR), not RST_STREAM(REFUSED_STREAM).
- ``keep_alive_timeout``: an idle h2 connection is closed **silently: a FIN, no GOAWAY**.
  The "server closed it while we weren't looking" fixture.

Counting: the access log carries the client's ``ip:port``, one per TCP connection.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import trustme

from .process import AccessEntry, ServerProcess, normalize_protocol

APP_DIR = Path(__file__).parent
_LOG = re.compile(r"ACCESS (\S+) (\S+) (\d{3}) (\S+) (\S+)$")  # after logging's prefix


class Hypercorn(ServerProcess):
    """One hypercorn: ``url`` (TLS h2 + http/1.1), ``h2c_url`` (h1 + h2c, incl. Upgrade)."""

    name = "hypercorn"
    ready_timeout = 10.0  # startup ~0.3 s; slower on a loaded machine

    def __init__(
        self,
        workdir: Path,
        *,
        ca: trustme.CA,
        binary: str = sys.executable,
        keep_alive_max_requests: int = 1000,
        max_concurrent_streams: int = 100,
        keep_alive_timeout: float = 10,
    ) -> None:
        super().__init__(workdir, binary=binary, ca=ca)
        self.keep_alive_max_requests = keep_alive_max_requests
        self.max_concurrent_streams = max_concurrent_streams
        self.keep_alive_timeout = keep_alive_timeout

    def _command(self) -> list[str]:
        d = self.workdir
        (d / "hypercorn.toml").write_text(
            f"""bind = ["{self.host}:{self.port}"]
insecure_bind = ["{self.host}:{self.h2c_port}"]
certfile = "{self.cert_file}"
keyfile = "{self.key_file}"
h2_max_concurrent_streams = {self.max_concurrent_streams}
keep_alive_max_requests = {self.keep_alive_max_requests}
keep_alive_timeout = {self.keep_alive_timeout}
graceful_timeout = 0.5
workers = 1
accesslog = "{d}/access.log"
access_log_format = "ACCESS %(h)s %(H)s %(s)s %(m)s %(U)s"
errorlog = "-"
"""
        )
        argv = [self.binary, "-m", "hypercorn", "--config", str(d / "hypercorn.toml")]
        return [*argv, "hypercorn_app:app"]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(APP_DIR), "PYTHONDONTWRITEBYTECODE": "1"}

    def _parse_access_log(self) -> list[AccessEntry]:
        path = self.workdir / "access.log"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(errors="replace").splitlines():
            m = _LOG.search(line)
            if m:
                client, proto, status, method, target = m.groups()
                entries.append(
                    AccessEntry(client, normalize_protocol(proto), method, target, int(status))
                )
        return entries
