"""Client CPU per small HTTP/2 request: h2, jh2 and tether's own protocol layer.

Each client talks to h2's server side in memory (GET, 200, 13-byte body). Only the client's
calls are timed (building the request frames, parsing the response, returning flow credit);
the server's work is excluded. Run: ``PYTHONPATH=src python3 bench/h2_engines.py [-n N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events

BODY = b"Hello, world!"
REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"example.com"),
    (b":path", b"/"),
    (b"user-agent", b"tether-bench"),
    (b"accept", b"*/*"),
]
RESPONSE = [(b":status", b"200"), (b"content-length", b"13"), (b"content-type", b"text/plain")]


def make_server() -> h2.connection.H2Connection:
    config = h2.config.H2Configuration(client_side=False, header_encoding=None)
    server = h2.connection.H2Connection(config=config)
    server.initiate_connection()
    return server


def serve(server: h2.connection.H2Connection, data: bytes) -> bytes:
    """The server's answer to the client's bytes (untimed)."""
    for event in server.receive_data(data):
        if isinstance(event, h2.events.RequestReceived):
            server.send_headers(event.stream_id, RESPONSE)
            server.send_data(event.stream_id, BODY, end_stream=True)
    return server.data_to_send()


def run_h2_like(module: Any, n: int) -> list[float]:
    """h2 and jh2 share an API: time the client's calls for n requests."""
    config = module.config.H2Configuration(client_side=True, header_encoding=None)
    client = module.connection.H2Connection(config=config)
    server = make_server()
    client.initiate_connection()
    client.receive_data(serve(server, client.data_to_send()))
    serve(server, client.data_to_send())
    data_received = module.events.DataReceived
    timings = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, REQUEST, end_stream=True)
        out = client.data_to_send()
        spent = clock() - start
        back = serve(server, out)
        start = clock()
        for event in client.receive_data(back):
            if isinstance(event, data_received):
                client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        client.data_to_send()
        timings.append(spent + clock() - start)
    return timings


def run_tether(n: int) -> list[float]:
    from tether.protocol.http2 import Data, H2Protocol

    client = H2Protocol()
    server = make_server()
    client.receive(serve(server, client.initiate()))
    serve(server, client.data_to_send())
    timings = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        stream_id, out = client.send_headers(REQUEST, True)
        spent = clock() - start
        back = serve(server, out)
        start = clock()
        for event in client.receive(back):
            if isinstance(event, Data):
                client.acknowledge(stream_id, event.flow_length)
        client.data_to_send()
        timings.append(spent + clock() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="requests per run")
    parser.add_argument("--reps", type=int, default=5, help="runs per engine (median of medians)")
    args = parser.parse_args()
    import jh2.config
    import jh2.connection
    import jh2.events

    engines: dict[str, Callable[[int], list[float]]] = {
        "h2": lambda n: run_h2_like(h2, n),
        "jh2": lambda n: run_h2_like(jh2, n),
        "tether": run_tether,
    }
    print(f"client CPU per request, {args.n} requests x {args.reps} runs (median; p90)")
    for name, run in engines.items():
        medians, p90s = [], []
        for _ in range(args.reps):
            timings = sorted(run(args.n)[args.n // 10 :])  # drop warm-up
            medians.append(statistics.median(timings) / 1000)
            p90s.append(timings[int(len(timings) * 0.9)] / 1000)
        median, p90 = statistics.median(medians), statistics.median(p90s)
        print(f"  {name:7s} {median:7.1f} us   p90 {p90:6.1f} us")


if __name__ == "__main__":
    main()
