"""Run a private nginx on a free loopback port, for tests against a real server.

``Nginx(workdir, ...)`` writes ``nginx.conf`` plus the static files into ``workdir``, runs
``nginx -p workdir -c workdir/nginx.conf -e workdir/error.log`` in the foreground (one
worker, every path inside ``workdir``) and stops it with SIGQUIT, then SIGTERM after 1 s,
then SIGKILL (whole process group) after 2 s.

Protocols: plain HTTP/1.1 (default); TLS with ``ca=`` (HTTP/1.1, or ALPN h2 + http/1.1 with
``http2=True``); ``h2c=True``: a cleartext listener that speaks h2 with prior knowledge ONLY
(no Upgrade, no HTTP/1.1: curl ``--http2`` over ``http://`` fails with "HTTP/0.9"), plus a
separate HTTP/1.1 ``status_port`` that ``stats()`` uses.

HTTP/2 limits (measured on nginx 1.22): ``keepalive_requests=N`` sends GOAWAY(NO_ERROR,
last = Nth stream) with the Nth response; ``keepalive_timeout`` sends GOAWAY(NO_ERROR) then
FIN to an idle connection; ``max_concurrent_streams`` (``http2_max_concurrent_streams``) is
announced in SETTINGS and extra streams get RST_STREAM(REFUSED_STREAM), the connection lives.

``access_log()`` parses ``$connection $connection_requests $server_protocol $status
$request_method $request_uri`` into ``AccessEntry`` (``connection`` = nginx's connection
serial number, one per TCP connection; ``connection_requests`` = index on it).

Locations:

- ``/``          -> ``small.txt``, 13 bytes ``Hello, world!`` (text/plain)
- ``/small.txt`` and ``/64k.bin`` (65536 bytes, application/octet-stream)
- ``/echo``      -> ``return 200 "ok\\n"`` for any method; nginx discards the body
- ``/search``    -> ``return 200 "$args\\n"``: echoes the query string
- ``/status/404`` -> 404
- ``/gzip/{file}`` -> a file of ``www`` (also ``lines.txt``: ``LINES_SIZE`` bytes of numbered
  text lines, ``lines_text()``), gzip-encoded by nginx when the request accepts gzip
- ``/nginx_status`` -> stub_status; ``Nginx.stats()`` parses it (accepted connections!)
- ``/slow``      -> answers after 200 ms; ``/slow/{seconds}`` after that long (at most 60 s).
  nginx cannot sleep (no echo module here, and ``limit_rate`` works in whole seconds), so
  these are proxied to an in-process ``tether.testing.TestServer`` whose ``/slow/{s}`` sleeps
  and returns its JSON echo. Each h2 stream gets its own upstream connection, so concurrent
  streams are slow in parallel (a stream really stays open ~200 ms).

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

from tether.testing import TestServer

from .process import AccessEntry, AccessLogQueries, normalize_protocol

SMALL_BODY = b"Hello, world!"
BIG_SIZE = 64 * 1024
LINES_SIZE = 4 * 1024 * 1024


def lines_text() -> bytes:
    """``/gzip/lines.txt``: numbered lines of varied text (compresses ~4x, as prose does)."""
    lines = (f"{i:07d} {i * 7919 % 100003:05x} fox {i % 97} jumps\n" for i in range(160_000))
    return "".join(lines).encode()[:LINES_SIZE]


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


class Nginx(AccessLogQueries):
    """One nginx instance; ``start()``/``stop()`` or use as a context manager.

    Attributes: ``host`` (127.0.0.1), ``port``, ``url`` (``http://127.0.0.1:PORT`` or
    ``https://...`` with TLS), ``keepalive_requests``, ``keepalive_timeout``, ``http2``,
    ``h2c``, ``max_concurrent_streams``, ``status_port`` (h2c only), ``ca`` and ``ca_file``
    (the trustme CA and its PEM path, TLS only).
    """

    host = "127.0.0.1"
    name = "nginx"

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str,
        keepalive_requests: int = 1000,
        keepalive_timeout: float = 75,
        ca: trustme.CA | None = None,
        http2: bool = False,
        h2c: bool = False,
        max_concurrent_streams: int = 128,
    ) -> None:
        if http2 and ca is None:
            raise ValueError("http2 needs TLS (pass ca); for cleartext h2 use h2c=True")
        if h2c and ca is not None:
            raise ValueError("h2c is cleartext: pass either h2c=True or ca, not both")
        if max_concurrent_streams < 1:
            raise ValueError(f"max_concurrent_streams must be >= 1, got {max_concurrent_streams}")
        self.workdir = workdir
        self.binary = binary
        self.keepalive_requests = keepalive_requests
        self.keepalive_timeout = keepalive_timeout
        self.ca = ca
        self.http2 = http2
        self.h2c = h2c
        self.max_concurrent_streams = max_concurrent_streams
        self.ca_file: Path | None = None
        self.port = 0
        self.status_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._upstream: TestServer | None = None

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
        (www / "lines.txt").write_bytes(lines_text())
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
        h2 = self.http2 or self.h2c
        listen = f"{self.host}:{self.port}" + (" ssl" if tls else "") + (" http2" if h2 else "")
        assert self._upstream is not None
        slow = f"http://{self.host}:{self._upstream.port}"
        status = ""
        if self.h2c:  # the h2c listener cannot answer HTTP/1.1: stats() needs its own
            status = f"""server {{
        listen {self.host}:{self.status_port};
        access_log off;
        location = /nginx_status {{ stub_status; }}
    }}"""
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
    log_format conn '$connection $connection_requests $server_protocol $status '
                    '$request_method $request_uri';
    access_log {d}/access.log conn;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ text/plain txt; application/octet-stream bin; }}
    default_type text/plain;
    keepalive_requests {self.keepalive_requests};
    keepalive_timeout {self.keepalive_timeout}s;
    http2_max_concurrent_streams {self.max_concurrent_streams};
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
        location /gzip/ {{
            alias {d}/www/;
            gzip on; gzip_min_length 1; gzip_types text/plain application/octet-stream;
        }}
        location = /slow {{ proxy_pass {slow}/slow/0.2; }}
        location /slow/ {{ proxy_pass {slow}; }}
    }}
    {status}
}}
"""

    def start(self) -> Nginx:
        """Start nginx and wait (up to 5 s) until it accepts connections."""
        tls = self._write_files()
        self._upstream = TestServer().start()
        for _attempt in range(3):  # the free port may be taken before nginx binds it
            self.port = _free_port()
            self.status_port = _free_port() if self.h2c else 0
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
        self._stop_upstream()
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
        self._stop_upstream()

    def _stop_upstream(self) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream.stop()

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
        if self.h2c:
            conn = http.client.HTTPConnection(self.host, self.status_port, timeout=5)
        elif self.ca is not None:
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

    def access_log(self) -> list[AccessEntry]:
        """Requests nginx finished so far, oldest first (written when each one completes)."""
        path = self.workdir / "access.log"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(errors="replace").splitlines():
            fields = line.split(" ")
            if len(fields) != 6:
                continue
            conn, index, proto, status, method, target = fields
            entries.append(
                AccessEntry(
                    conn, normalize_protocol(proto), method, target, int(status), int(index)
                )
            )
        return entries
