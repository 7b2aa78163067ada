"""Where a sequential keep-alive GET spends its client CPU: tether Session vs the socket loop.

Run (after bench/run has made the venv):
    bench/.venv/bin/python bench/profile_hotpath.py [--tls] [--cumulative]

Starts the benchmark nginx on CPU 0, pins itself to CPU 1, then alternates the hand-written
socket loop and a tether Session (3 rounds, each bounded by 20,000 requests or 10 s) and
prints user and system CPU per request from getrusage, then the top of a cProfile of tether's
loop. The user-CPU gap is the Python work tether does per request; system CPU is the kernel's
(the same system calls for both, plus tether's liveness poll).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import resource
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nginx_server import Nginx

import tether

N, BOUND = 20_000, 10.0


TLS = "--tls" in sys.argv
SCHEME = "https" if TLS else "http"
CAFILE = ""


def socket_loop(port: int) -> int:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if TLS:
        sock = ssl.create_default_context(cafile=CAFILE).wrap_socket(
            sock, server_hostname="127.0.0.1"
        )
    request = f"GET /small HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    done, deadline = 0, time.monotonic() + BOUND
    with sock:
        while done < N and time.monotonic() < deadline:
            sock.sendall(request)
            buf = b""
            while (end := buf.find(b"\r\n\r\n")) < 0:
                buf += sock.recv(65536)
            start = buf.find(b"Content-Length: ") + 16
            length = int(buf[start : buf.find(b"\r\n", start)])
            while len(buf) < end + 4 + length:
                buf += sock.recv(65536)
            done += 1
    return done


def tether_loop(port: int) -> int:
    url = f"{SCHEME}://127.0.0.1:{port}/small"
    done, deadline = 0, time.monotonic() + BOUND
    with tether.Session(verify=CAFILE or True) as s:
        while done < N and time.monotonic() < deadline:
            s.get(url).content  # noqa: B018
            done += 1
    return done


def measure(name: str, loop: object, port: int) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    done = loop(port)  # type: ignore[operator]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    user = (after.ru_utime - before.ru_utime) / done * 1e6
    system = (after.ru_stime - before.ru_stime) / done * 1e6
    print(
        f"{name:<12} {done / wall:8.0f} req/s   user {user:6.1f} µs/req   sys {system:6.1f} µs/req"
    )


def main() -> None:
    os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        ng = Nginx(Path(tmp) / "nginx", server_cpu=0)
        ng.prepare()
        ng.start()
        try:
            global CAFILE
            CAFILE = ng.cafile
            port = ng.ports["tls" if TLS else "plain"]
            for _ in range(3):
                measure("socket loop", socket_loop, port)
                measure("tether", tether_loop, port)
            profile = cProfile.Profile()
            profile.runcall(tether_loop, port)
            print("\ntether loop, cProfile by own time (the profiler inflates every call):")
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)
            if "--cumulative" in sys.argv:  # who calls what: the layers' shares
                pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        finally:
            ng.stop()
            ng.cleanup()


if __name__ == "__main__":
    main()
