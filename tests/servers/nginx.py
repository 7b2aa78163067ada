"""Run a private nginx on a free loopback port, for tests against a real server.

``Nginx(workdir, ...)`` writes ``nginx.conf`` plus the static files into ``workdir``, runs
``nginx -p workdir -c workdir/nginx.conf -e workdir/error.log`` in the foreground (one
worker, no access log, every path inside ``workdir``) and stops it with SIGQUIT, then
SIGTERM after 1 s, then SIGKILL (whole process group) after 2 s. Locations:

- ``/``          -> ``small.txt``, 13 bytes ``Hello, world!`` (text/plain)
- ``/small.txt`` and ``/64k.bin`` (65536 bytes, application/octet-stream)
- ``/echo``      -> ``return 200 "ok\\n"`` for any method; nginx discards the body
- ``/search``    -> ``return 200 "$args\\n"``: echoes the query string
- ``/status/404`` -> 404
- ``/nginx_status`` -> stub_status; ``Nginx.stats()`` parses it (accepted connections!)

Request bodies up to 16 MiB are accepted.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

SMALL_BODY = b"Hello, world!"
BIG_SIZE = 64 * 1024


def find_nginx() -> str | None:
    """Path of the nginx binary, or None."""
    if os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    return shutil.which("nginx")


def issue_server_cert(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    """Write a cert (chain) and key for ``localhost`` and ``127.0.0.1``; return their paths."""
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class NginxStats:
    """nginx stub_status counters. ``accepts`` counts TCP connections ever accepted."""

    active: int
    accepts: int
    handled: int
    requests: int
    reading: int
    writing: int
    waiting: int


class Nginx:
    """One nginx instance; ``start()``/``stop()`` or use as a context manager.

    Attributes: ``host`` (127.0.0.1), ``port``, ``url`` (``http://127.0.0.1:PORT`` or
    ``https://...`` with TLS), ``keepalive_requests``, ``keepalive_timeout``, ``http2``,
    ``ca`` and ``ca_file`` (the trustme CA and its PEM path, TLS only).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str,
        keepalive_requests: int = 1000,
        keepalive_timeout: float = 75,
        ca: trustme.CA | None = None,
        http2: bool = False,
    ) -> None:
        if http2 and ca is None:
            raise ValueError("http2 needs TLS (pass ca)")
        self.workdir = workdir
        self.binary = binary
        self.keepalive_requests = keepalive_requests
        self.keepalive_timeout = keepalive_timeout
        self.ca = ca
        self.http2 = http2
        self.ca_file: Path | None = None
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ca else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _write_files(self) -> str:
        www = self.workdir / "www"
        www.mkdir(exist_ok=True)
        (www / "small.txt").write_bytes(SMALL_BODY)
        (www / "64k.bin").write_bytes(bytes(range(256)) * (BIG_SIZE // 256))
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        tls = ""
        if self.ca is not None:
            cert, key = issue_server_cert(self.ca, self.workdir)
            self.ca_file = self.workdir / "ca.pem"
            self.ca.cert_pem.write_to_path(str(self.ca_file))
            tls = f"ssl_certificate {cert}; ssl_certificate_key {key};"
        return tls

    def _config(self, tls: str) -> str:
        d = self.workdir
        listen = (
            f"{self.host}:{self.port}" + (" ssl" if tls else "") + (" http2" if self.http2 else "")
        )
        # As root the workers would drop to "nobody", who cannot read pytest's 0700 tmp dirs.
        user = "user root;" if os.geteuid() == 0 else ""
        return f"""
{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ text/plain txt; application/octet-stream bin; }}
    default_type text/plain;
    keepalive_requests {self.keepalive_requests};
    keepalive_timeout {self.keepalive_timeout}s;
    client_header_timeout 10s;
    client_body_timeout 10s;
    send_timeout 10s;
    client_max_body_size 16m;
    client_body_buffer_size 2m;
    server {{
        listen {listen};
        server_name localhost;
        root {d}/www;
        index small.txt;
        {tls}
        location = /echo {{ return 200 "ok\\n"; }}
        location = /search {{ return 200 "$args\\n"; }}
        location = /status/404 {{ return 404; }}
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""

    def start(self) -> Nginx:
        """Start nginx and wait (up to 5 s) until it accepts connections."""
        tls = self._write_files()
        for _attempt in range(3):  # the free port may be taken before nginx binds it
            self.port = _free_port()
            conf = self.workdir / "nginx.conf"
            conf.write_text(self._config(tls))
            (self.workdir / "error.log").write_text("")
            with open(self.workdir / "stdio.log", "ab") as log:
                self._proc = subprocess.Popen(
                    [self.binary, "-p", f"{self.workdir}/", "-c", str(conf), "-e", "error.log"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # own process group, see _reap()
                )
            if self._wait_ready():
                return self
            self._reap()
            if "Address already in use" not in self.error_log:
                break
        raise RuntimeError(f"nginx did not start; error log:\n{self.error_log}")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and self._proc.poll() is None:
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # SIGQUIT is graceful, but waits for half-read requests (a test's client may have
        # left one); then SIGTERM (fast shutdown); then SIGKILL for the whole process group,
        # since killing only the master would orphan a worker holding client sockets.
        for sig, grace in ((signal.SIGQUIT, 1.0), (signal.SIGTERM, 1.0)):
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5.0)

    def stop(self) -> None:
        """Stop nginx (SIGQUIT; SIGTERM after 1 s; SIGKILL after 2 s) and wait for it."""
        self._reap()

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting this server's CA (TLS instances only)."""
        if self.ca_file is None:
            raise ValueError("not a TLS server")
        return ssl.create_default_context(cafile=str(self.ca_file))

    def stats(self) -> NginxStats:
        """Fetch ``/nginx_status`` on a fresh connection (which itself counts as one accept)."""
        conn: http.client.HTTPConnection
        if self.ca is not None:
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=5, context=self.ssl_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        with contextlib.closing(conn):
            conn.request("GET", "/nginx_status", headers={"Connection": "close"})
            text = conn.getresponse().read().decode()
        # Active connections: 1 \n server accepts handled requests\n 1 1 1 \n Reading: ...
        words = text.split()
        accepts, handled, requests = (int(w) for w in words[7:10])
        return NginxStats(
            active=int(words[2]),
            accepts=accepts,
            handled=handled,
            requests=requests,
            reading=int(words[11]),
            writing=int(words[13]),
            waiting=int(words[15]),
        )
