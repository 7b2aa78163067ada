"""What every third-party test server here shares: free ports, a foreground process, its logs.

``ServerProcess`` runs one server binary in the foreground, in its own process group, with
stdout and stderr going to ``workdir/output.log``. Subclasses write their config for the
ports picked in ``start()`` and say how to read their access log. Every server offers:

- ``url`` (``https://127.0.0.1:P``, TLS with ALPN) and ``h2c_url`` (``http://127.0.0.1:Q``),
  ``ca_file`` / ``ssl_context()`` to verify the TLS listener (a trustme CA, never the
  environment's ``REQUESTS_CA_BUNDLE``);
- ``access_log()``: one ``AccessEntry`` per request the server finished, oldest first;
  ``requests_per_connection()`` (connection key -> request count) and
  ``wait_for_requests(n)`` because servers write their log a moment after the response.

Stopping sends SIGTERM to the pid we started, waits ``stop_grace`` seconds, then SIGKILLs the
whole process group (some servers fork workers that would otherwise outlive the test).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import trustme

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries on a clash)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def write_cert(ca: trustme.CA, directory: Path) -> tuple[Path, Path, Path]:
    """Write ``ca.pem``, ``server.pem`` (chain) and ``server.key`` for localhost/127.0.0.1/::1."""
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "server.pem", "server.key"))
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return ca_path, cert_path, key_path


def normalize_protocol(text: str) -> str:
    """``HTTP/2.0``, ``HTTP/2`` and ``2`` -> ``HTTP/2``; ``1.1`` -> ``HTTP/1.1``."""
    version = text.removeprefix("HTTP/")
    return "HTTP/2" if version in ("2", "2.0") else f"HTTP/{version}"


@dataclass(frozen=True)
class AccessEntry:
    """One finished request as the server logged it.

    ``connection`` identifies the TCP connection the server saw it on (a server-side id or
    the client's ``ip:port``); ``protocol`` is normalized to ``HTTP/2`` or ``HTTP/1.1``.
    ``connection_requests`` is the request's 1-based index on its connection when the
    server logs it (nginx), else 0.
    """

    connection: str
    protocol: str
    method: str
    path: str
    status: int
    connection_requests: int = 0


class AccessLogQueries:
    """``requests_per_connection()`` and ``wait_for_requests()`` over ``access_log()``."""

    name = "server"

    def access_log(self) -> list[AccessEntry]:
        """The requests the server has logged so far, oldest first."""
        raise NotImplementedError

    def requests_per_connection(self) -> Counter[str]:
        """Connection key -> number of logged requests on it (len() = connections used)."""
        return Counter(entry.connection for entry in self.access_log())

    def wait_for_requests(self, count: int, timeout: float = 3.0) -> list[AccessEntry]:
        """Poll the access log until it holds at least ``count`` entries; return them.

        Raises ``AssertionError`` with what was logged if ``timeout`` passes first.
        """
        deadline = time.monotonic() + timeout
        while True:
            entries = self.access_log()
            if len(entries) >= count:
                return entries
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: {len(entries)} of {count} requests logged")
            time.sleep(0.02)


class ServerProcess(AccessLogQueries):
    """Base class: one foreground server on ``ports_needed`` free loopback ports."""

    host = HOST
    name = "server"
    ports_needed = 2  # ports[0]: TLS listener, ports[1]: cleartext (h2c) listener
    stop_grace = 2.0
    ready_timeout = 5.0

    def __init__(self, workdir: Path, *, binary: str, ca: trustme.CA) -> None:
        self.workdir = workdir
        self.binary = binary
        self.ca = ca
        self.ports: list[int] = []
        self.ca_file = workdir / "ca.pem"
        self.cert_file = workdir / "server.pem"
        self.key_file = workdir / "server.key"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- what subclasses provide -----------------------------------------------------------

    def _command(self) -> list[str]:
        """Write the config for ``self.ports``; return the argv to run (in ``workdir``)."""
        raise NotImplementedError

    def _parse_access_log(self) -> list[AccessEntry]:
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        return None

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TLS port (ALPN h2, plus http/1.1 where the server has it)."""
        return self.ports[0]

    @property
    def h2c_port(self) -> int:
        """The cleartext port (h2 with prior knowledge; see the subclass for Upgrade/h1)."""
        return self.ports[1]

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def h2c_url(self) -> str:
        return f"http://{self.host}:{self.h2c_port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting this server's CA, offering ALPN h2 and http/1.1."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.set_alpn_protocols(["h2", "http/1.1"])
        return context

    # -- logs -------------------------------------------------------------------------------

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        path = self.workdir / "output.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[AccessEntry]:
        """The requests the server has logged so far, oldest first."""
        return self._parse_access_log()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Write certs and config, start the server, wait until every port accepts."""
        write_cert(self.ca, self.workdir)
        for _attempt in range(3):  # a free port may be taken before the server binds it
            self.ports = [free_port() for _ in range(self.ports_needed)]
            argv = self._command()
            with open(self.workdir / "output.log", "ab") as log:
                self._proc = subprocess.Popen(
                    argv,
                    cwd=self.workdir,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # own process group: see stop()
                )
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"{self.name} did not start; output:\n{self.output()[-3000:]}")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        pending = list(self.ports)
        while pending and time.monotonic() < deadline and self._proc.poll() is None:
            try:
                socket.create_connection((self.host, pending[0]), timeout=0.5).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.02)
        return not pending

    def stop(self) -> None:
        """SIGTERM the pid we started; SIGKILL its process group after ``stop_grace`` s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.stop_grace)
        # Also after a clean exit: a forked worker may still hold the listening sockets.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
