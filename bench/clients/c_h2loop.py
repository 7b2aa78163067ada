"""Hand-written HTTP/2 client: ``h2`` library frames over a raw TLS socket.

Keeps ``ctx.concurrency`` streams in flight on one connection and starts a new
stream each time one completes.  The reference point for HTTP/2 clients.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import h2.config
import h2.connection
import h2.events

from .drivers import BadResponse, Ctx, Params, check_full
from .util import info


def run(ctx: Ctx, p: Params) -> dict[str, Any]:
    ssl_ctx = ctx.ssl_context(["h2"])
    raw = socket.create_connection((ctx.host, ctx.port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = ssl_ctx.wrap_socket(raw, server_hostname=ctx.host)
    if sock.selected_alpn_protocol() != "h2":
        raise BadResponse(f"ALPN gave {sock.selected_alpn_protocol()!r}, not h2")
    # Lean like the socket loop: no header validation or normalisation by h2.
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
        )
    )
    conn.initiate_connection()
    conn.increment_flow_control_window(2**30 - 65535)  # connection window: no stalls
    sock.sendall(conn.data_to_send())
    headers = [
        (b":method", b"GET"),
        (b":path", ctx.path.encode()),
        (b":scheme", b"https"),
        (b":authority", ctx.authority.encode()),
    ]
    expected = p.expected
    concurrency = ctx.concurrency
    goaway: list[Any] = []

    def pump(total: int, seconds: float, full_check_every: int) -> int:
        """Complete up to ``total`` requests within ``seconds``; return how many."""
        deadline = time.perf_counter() + seconds
        started = completed = 0
        status: dict[int, int] = {}
        bodies: dict[int, list[bytes]] = {}
        while completed < total:
            while (
                started - completed < concurrency
                and started < total
                and time.perf_counter() < deadline
                and not goaway
            ):
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, headers, end_stream=True)
                status[sid] = 0
                bodies[sid] = []
                started += 1
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if completed == started:
                break  # time is up (or GOAWAY) and nothing is in flight
            data = sock.recv(262144)
            if not data:
                raise ConnectionError("server closed the connection")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    for k, v in ev.headers:
                        if k == b":status":
                            status[ev.stream_id] = int(v)
                elif isinstance(ev, h2.events.DataReceived):
                    bodies[ev.stream_id].append(ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    sid = ev.stream_id
                    body = b"".join(bodies.pop(sid))
                    st = status.pop(sid)
                    if (
                        st != 200
                        or len(body) != len(expected)
                        or (completed % full_check_every == 0)
                    ):
                        check_full(st, body, expected)
                    completed += 1
                elif isinstance(ev, h2.events.StreamReset):
                    raise BadResponse(f"stream {ev.stream_id} reset: {ev.error_code}")
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    goaway.append(ev)
        return completed

    try:
        pump(p.warmup, 30.0, 1)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        done = pump(p.n, p.t, 64)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        sock.close()
    res: dict[str, Any] = {
        "ok": True,
        "requests": done,
        "wall_s": wall,
        "cpu_s": cpu,
        "warmup": p.warmup,
        "client_connections": 1,
        "info": info("h2"),
    }
    if goaway:
        res["note"] = f"server sent GOAWAY: {goaway[0]}"
    return res
