"""h2o 2.2 on loopback: TLS h2 (ALPN h2, http/1.1) and a cleartext listener with h2c Upgrade.

``H2o(workdir, binary=..., ca=ca, idle_timeout=2, max_concurrent_requests=2)``. The cleartext
port speaks HTTP/1.1, h2 with prior knowledge, and ``Upgrade: h2c`` (answers 101): the only
server here that does Upgrade. Files: ``/`` (``index.html``, ``hello h2o\\n``) and ``/64k.bin``.

Limits and what they really do (h2o 2.2.5):

- ``idle_timeout`` (``http2-idle-timeout``, seconds): an idle h2 connection gets GOAWAY
  (twice), then FIN.
- ``max_concurrent_requests`` (``http2-max-concurrent-requests-per-connection``): how many
  streams h2o *processes* at once; its SETTINGS still say MAX_CONCURRENT_STREAMS=100.
- No GOAWAY-after-N-requests directive. ``stop()`` (SIGTERM) drains gracefully: GOAWAY
  (2^31-1), about 1 s later GOAWAY(last stream), then exit.

Counting: the access log has ``%{connection-id}x``, one id per TCP connection (ids are not
dense: an Upgrade connection skips one).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import trustme

from .process import AccessEntry, ServerProcess, normalize_protocol

INDEX_BODY = b"hello h2o\n"
_LOG = re.compile(r"^conn=(\S+) (\S+) (\d{3}) (\S+) (\S+)$")


def find_h2o() -> str | None:
    """Path of the h2o binary, or None."""
    return shutil.which("h2o") or ("/usr/bin/h2o" if os.access("/usr/bin/h2o", os.X_OK) else None)


class H2o(ServerProcess):
    """One h2o: ``url`` (TLS) and ``h2c_url`` (cleartext: h1, h2c prior knowledge, Upgrade)."""

    name = "h2o"
    stop_grace = 3.0  # graceful drain takes ~1 s

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str,
        ca: trustme.CA,
        idle_timeout: float = 10,
        max_concurrent_requests: int = 100,
    ) -> None:
        super().__init__(workdir, binary=binary, ca=ca)
        self.idle_timeout = idle_timeout
        self.max_concurrent_requests = max_concurrent_requests

    def _command(self) -> list[str]:
        d = self.workdir
        www = d / "www"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_bytes(INDEX_BODY)
        (www / "64k.bin").write_bytes(bytes(range(256)) * 256)
        # As root h2o would switch to "nobody", who cannot read pytest's 0700 tmp dirs.
        user = "user: root\n" if os.geteuid() == 0 else ""
        tls = f"{{certificate-file: {self.cert_file}, key-file: {self.key_file}, "
        tls += "ocsp-update-interval: 0}"
        (d / "h2o.conf").write_text(
            f"""{user}error-log: {d}/error.log
access-log: {{path: {d}/access.log, format: 'conn=%{{connection-id}}x %H %s %m %U'}}
num-threads: 1
http2-idle-timeout: {self.idle_timeout}
http2-max-concurrent-requests-per-connection: {self.max_concurrent_requests}
http1-upgrade-to-http2: ON
listen: {{host: {self.host}, port: {self.port}, ssl: {tls}}}
listen: {{host: {self.host}, port: {self.h2c_port}}}
hosts: {{default: {{paths: {{/: {{file.dir: {www}}}}}}}}}
"""
        )
        return [self.binary, "-c", str(d / "h2o.conf")]

    def _parse_access_log(self) -> list[AccessEntry]:
        path = self.workdir / "access.log"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(errors="replace").splitlines():
            m = _LOG.match(line)
            if m:
                conn, proto, status, method, target = m.groups()
                entries.append(
                    AccessEntry(conn, normalize_protocol(proto), method, target, int(status))
                )
        return entries

    def error_log(self) -> str:
        """h2o's error log (startup problems land here, not in ``output()``)."""
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""
