"""Node 20's ``http2`` module on loopback (``h2server.js``): every per-connection limit works.

``NodeH2(workdir, ca=ca, max_requests=3, max_streams=2, idle_ms=2000)``: ``url`` is TLS
(ALPN h2, with http/1.1 fallback answering ``hello http/1.1``), ``h2c_url`` is h2c with prior
knowledge only (no Upgrade, no HTTP/1.1). Every path answers 200 ``hello conn=C req=N`` with
headers ``x-conn``/``x-req``; ``?sleep=MS`` delays the response (at most 10 s).

- ``max_requests``: GOAWAY(NO_ERROR) right after the Nth response on a connection (0 = off).
- ``max_streams``: the SETTINGS value; a client that opens more gets GOAWAY(INTERNAL_ERROR).
- ``idle_ms``: GOAWAY(NO_ERROR), then close, when a connection is idle that long (0 = off).

Counting from its stdout: ``connections_accepted()`` (h2 sessions; the fixture's readiness
check does not connect, it waits for the ``listening`` line) and ``access_log()`` (one entry
per stream, ``connection`` = node's 1-based session id, status 0: logged on arrival).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import trustme

from .process import AccessEntry, ServerProcess

SCRIPT = Path(__file__).with_name("h2server.js")
_REQ = re.compile(r"^conn (\d+) req (\d+) (\S+) (\S+)$", re.MULTILINE)
_OPEN = re.compile(r"^conn (\d+) open$", re.MULTILINE)


def find_node() -> str | None:
    """Path of the node binary, or None."""
    return shutil.which("node") or shutil.which("nodejs")


class NodeH2(ServerProcess):
    """One ``node h2server.js``: ``url`` (TLS h2 + http/1.1) and ``h2c_url`` (prior knowledge)."""

    name = "node-h2"
    stop_grace = 1.0

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str,
        ca: trustme.CA,
        max_requests: int = 0,
        max_streams: int = 100,
        idle_ms: int = 0,
    ) -> None:
        super().__init__(workdir, binary=binary, ca=ca)
        self.max_requests = max_requests
        self.max_streams = max_streams
        self.idle_ms = idle_ms

    def _command(self) -> list[str]:
        return [self.binary, str(SCRIPT), str(self.port), str(self.h2c_port)]

    def _env(self) -> dict[str, str]:
        limits = {"MAX_REQ": self.max_requests, "MAX_STREAMS": self.max_streams}
        return {
            "PATH": "/usr/bin:/bin",
            **{k: str(v) for k, v in limits.items()},
            "IDLE_MS": str(self.idle_ms),
        }

    def _wait_ready(self) -> bool:
        # A probe connect would open an h2c session and be counted: wait for the line instead.
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and self._proc.poll() is None:
            if "listening tls=" in self.output():
                return True
            time.sleep(0.02)
        return False

    def connections_accepted(self) -> int:
        """h2 sessions node opened (TLS connections that fell back to http/1.1 are not)."""
        return len(_OPEN.findall(self.output()))

    def _parse_access_log(self) -> list[AccessEntry]:
        return [
            AccessEntry(conn, "HTTP/2", method, path, 0, int(index))
            for conn, index, method, path in _REQ.findall(self.output())
        ]
