"""httpbin served by gunicorn on a free loopback port: a real server for the conveniences.

``gthread`` workers, because gunicorn's default sync worker closes every connection after one
response; with threads it keeps connections alive, and its access log records the client's
port, so ``requests_per_connection()`` counts connections from the server's side. Stopped by
the pid we started (``ServerProcess.stop``), then its process group.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import trustme

from .process import AccessEntry, ServerProcess, normalize_protocol

# remote port, protocol, method, path, status (the request line's path includes its query)
_LOG_FORMAT = '%(h)s:%({remote_port}e)s %(H)s %(m)s "%(U)s" %(s)s'


class Httpbin(ServerProcess):
    """``url`` is ``http://127.0.0.1:P`` (plain HTTP/1.1 only: httpbin does no TLS here)."""

    name = "httpbin"
    ports_needed = 1
    ready_timeout = 15.0

    def __init__(self, workdir: Path, *, ca: trustme.CA) -> None:
        super().__init__(workdir, binary=sys.executable, ca=ca)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.ports[0]}"

    def _command(self) -> list[str]:
        return [
            self.binary,
            "-m",
            "gunicorn",
            "--bind",
            f"{self.host}:{self.ports[0]}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            "4",
            "--keep-alive",
            "30",
            "--access-logfile",
            str(self.workdir / "access.log"),
            "--access-logformat",
            _LOG_FORMAT,
            "httpbin:app",
        ]

    def _parse_access_log(self) -> list[AccessEntry]:
        path = self.workdir / "access.log"
        entries = []
        for line in path.read_text().splitlines() if path.exists() else []:
            conn, protocol, method, quoted, status = line.split(" ", 4)
            entries.append(
                AccessEntry(
                    conn, normalize_protocol(protocol), method, quoted.strip('"'), int(status)
                )
            )
        return entries


def have_httpbin() -> bool:
    """Whether httpbin and gunicorn are importable (tests skip without them, outside CI)."""
    try:
        import gunicorn  # noqa: F401
        import httpbin  # noqa: F401
    except ImportError:
        return False
    return shutil.which(sys.executable) is not None
