"""TLS transport A/B: ssl.SSLSocket (Python timeout mode, what tether used) vs TLSTransport.

Run (after bench/run has made the venv):  bench/.venv/bin/python bench/tls_transport.py

Starts the benchmark nginx on CPU 0, pins itself to CPU 1, and alternates the two transports
under the same hand-written HTTP/1.1 loop, so only the transport differs:
- small: one GET /small at a time (one TLS record per response);
- large: one GET /large at a time (64 KiB: several records per response);
- pipelined16: 16 GET /small written at once, 16 responses read (many small records that
  arrive together, as HTTP/2 responses to 16 streams do).
Each round is bounded by N requests or BOUND seconds; medians over ROUNDS rounds of client
CPU (user+system, getrusage) per request and of requests per second are printed.
"""

from __future__ import annotations

import os
import resource
import socket
import ssl
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from nginx_server import Nginx

from tether.io.tlsbio import handshake_over

N, BOUND, ROUNDS = 3000, 3.0, 7
Dial = Callable[[int, str], socket.socket]


def dial_sslsocket(port: int, cafile: str) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")  # keeps the 30 s Python timeout


def dial_tlsbio(port: int, cafile: str) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = handshake_over(raw, ssl.create_default_context(cafile=cafile), "127.0.0.1", 30)
    sock.settimeout(None)  # kernel timeouts, as HTTP11Connection sets them
    for opt in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
        sock.setsockopt(socket.SOL_SOCKET, opt, struct.pack("ll", 30, 0))
    return sock


def read_responses(sock: socket.socket, count: int, buf: bytes) -> bytes:
    """Read ``count`` Content-Length responses; returns what is left over."""
    for _ in range(count):
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += sock.recv(65536)
        start = buf.find(b"Content-Length: ") + 16
        total = end + 4 + int(buf[start : buf.find(b"\r\n", start)])
        while len(buf) < total:
            buf += sock.recv(65536)
        buf = buf[total:]
    return buf


def loop(dial: Dial, port: int, cafile: str, path: str, depth: int) -> int:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode() * depth
    done, deadline, buf = 0, time.monotonic() + BOUND, b""
    with dial(port, cafile) as sock:
        while done < N and time.monotonic() < deadline:
            sock.sendall(request)
            buf = read_responses(sock, depth, buf)
            done += depth
    return done


def measure(dial: Dial, port: int, cafile: str, path: str, depth: int) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    done = loop(dial, port, cafile, path, depth)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return done / wall, cpu / done * 1e6


def main() -> None:
    os.sched_setaffinity(0, {1})
    scenarios = {"small": ("/small", 1), "large": ("/large", 1), "pipelined16": ("/small", 16)}
    dials: dict[str, Dial] = {"SSLSocket": dial_sslsocket, "TLSTransport": dial_tlsbio}
    with tempfile.TemporaryDirectory() as tmp:
        ng = Nginx(Path(tmp) / "nginx", server_cpu=0)
        ng.prepare()
        ng.start()
        try:
            port = ng.ports["tls"]
            print(f"| scenario | transport | req/s | CPU µs/req | (median of {ROUNDS}) |")
            print("|---|---|---:|---:|---|")
            for name, (path, depth) in scenarios.items():
                results: dict[str, list[tuple[float, float]]] = {d: [] for d in dials}
                for _ in range(ROUNDS):
                    for label, dial in dials.items():
                        results[label].append(measure(dial, port, ng.cafile, path, depth))
                for label, runs in results.items():
                    rate = statistics.median(r for r, _ in runs)
                    cpu = statistics.median(c for _, c in runs)
                    print(f"| {name} | {label} | {rate:,.0f} | {cpu:.1f} | |")
        finally:
            ng.stop()
            ng.cleanup()


if __name__ == "__main__":
    main()
