"""Start and stop the nginx used by the benchmarks (loopback only, pinned to CPU 0).

Everything lives in a throwaway directory: config, document root, pid file, logs,
the trustme CA and certificate.  ``stub_status`` is used to count the connections
and requests the server saw, so connection counts are measured, never assumed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from clients.bodies import body

# /slow is rate limited: nginx sends the first 1 KiB at once and the rest about a
# second later, so many requests are in flight together and a pool has to open
# many connections (used by the idle-connection memory measurement).
SLOW_RATE = "1k"


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the harness dies (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Nginx:
    workdir: Path
    server_cpu: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    cafile: str = ""

    def prepare(self) -> None:
        import trustme  # only in the bench venv

        wd = self.workdir
        wd.mkdir(parents=True, exist_ok=True)
        os.chmod(wd, 0o755)  # the worker may run as an unprivileged user
        www = wd / "www"
        www.mkdir(exist_ok=True)
        os.chmod(www, 0o755)
        for name in ("small", "large", "slow"):
            (www / name).write_bytes(body(name))
        for f in www.iterdir():
            os.chmod(f, 0o644)
        for sub in ("tmp", "logs"):
            (wd / sub).mkdir(exist_ok=True)

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(wd / "ca.pem"))
        cert.private_key_and_cert_chain_pem.write_to_path(str(wd / "server.pem"))
        os.chmod(wd / "ca.pem", 0o644)
        self.cafile = str(wd / "ca.pem")

        self.ports = {
            "plain": free_port(),
            "tls": free_port(),
            "h2": free_port(),
            "status": free_port(),
        }
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}worker_processes 1;
daemon off;
pid {wd}/nginx.pid;
error_log {wd}/logs/error.log warn;
events {{
    worker_connections 4096;
    multi_accept on;
}}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    http2_max_concurrent_streams 256;
    client_body_temp_path {wd}/tmp/body;
    proxy_temp_path {wd}/tmp/proxy;
    fastcgi_temp_path {wd}/tmp/fastcgi;
    uwsgi_temp_path {wd}/tmp/uwsgi;
    scgi_temp_path {wd}/tmp/scgi;
    ssl_certificate {wd}/server.pem;
    ssl_certificate_key {wd}/server.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    root {wd}/www;
    server {{
        listen 127.0.0.1:{self.ports["plain"]} reuseport backlog=4096;
        location /slow {{ limit_rate {SLOW_RATE}; }}
    }}
    server {{
        listen 127.0.0.1:{self.ports["tls"]} ssl backlog=4096;
        location /slow {{ limit_rate {SLOW_RATE}; }}
    }}
    server {{
        listen 127.0.0.1:{self.ports["h2"]} ssl http2 backlog=4096;
    }}
    server {{
        listen 127.0.0.1:{self.ports["status"]};
        location = /status {{ stub_status; }}
    }}
}}
"""
        (wd / "nginx.conf").write_text(conf)

    def start(self) -> None:
        cmd = [
            "taskset",
            "-c",
            str(self.server_cpu),
            "nginx",
            "-p",
            str(self.workdir),
            "-c",
            str(self.workdir / "nginx.conf"),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.workdir / "logs" / "error.log"
                raise RuntimeError(
                    "nginx exited at start: " + (log.read_text() if log.exists() else "no log")
                )
            try:
                self.status()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start within 10 s")

    def status(self) -> dict[str, int]:
        """nginx stub_status counters (each call opens and closes one connection)."""
        url = f"http://127.0.0.1:{self.ports['status']}/status"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as r:
            text = r.read().decode()
        m = re.search(r"\s(\d+)\s+(\d+)\s+(\d+)\s", text)
        if not m:
            raise RuntimeError(f"unexpected stub_status output: {text!r}")
        accepts, handled, requests = (int(g) for g in m.groups())
        return {"accepts": accepts, "handled": handled, "requests": requests}

    def cpu_seconds(self) -> float:
        """CPU time (user+sys) used so far by the nginx master and its workers."""
        if self.proc is None:
            return 0.0
        pids = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
