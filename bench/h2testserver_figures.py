"""Rough capacity figures for tether.testing.H2TestServer, so a test author knows its limits.

Not a tether benchmark (no tether client is involved): one run each of a bulk download
(curl), small multiplexed requests (h2's client), the two floods and the /slow overlap.
Run: ``PYTHONPATH=src:tests python3 bench/h2testserver_figures.py``
"""

from __future__ import annotations

import subprocess
import time

from h2client import H2Client, RawH2Client

from tether.testing import H2TestServer


def main() -> None:
    with H2TestServer() as srv:
        start = time.perf_counter()
        out = subprocess.run(
            ["curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{size_download}",
             f"{srv.url}/bytes/67108864"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        took = time.perf_counter() - start
        print(f"curl /bytes/64MiB: {int(out.stdout) / took / 1e6:.0f} MB/s ({took:.2f} s)")
        with H2Client(srv.port) as c:
            start = time.perf_counter()
            for _ in range(10):
                sids = [c.request("/") for _ in range(50)]
                assert c.pump(c.done(*sids))
            took = time.perf_counter() - start
            print(f"h2 client, 500 small requests, 50 in flight: {500 / took:.0f} req/s")
        for path in ("/bad/settings-flood", "/bad/ping-flood"):
            start = time.perf_counter()
            with RawH2Client(srv.port, path) as raw:
                for f in raw.iter_frames(20):
                    if f.type == 0 and f.flags & 1:  # the answer's last DATA
                        break
            print(f"{path}: {time.perf_counter() - start:.2f} s until the answer")
        with H2Client(srv.port) as c:
            start = time.perf_counter()
            sids = [c.request("/slow?ms=200") for _ in range(16)]
            assert c.pump(c.done(*sids), 10)
            print(f"16 x /slow?ms=200, one connection: {time.perf_counter() - start:.3f} s")
    assert srv.errors == [], srv.errors


if __name__ == "__main__":
    main()
