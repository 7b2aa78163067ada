"""Peak client memory while uploading one file with files=: tether (streamed) vs requests.

    PYTHONPATH=src python3 bench/upload_memory.py [MiB]

The server (a TestServer) runs in a child process, so only the client's allocations are
traced (tracemalloc). requests' files= reads the file into memory to build the body; tether
reads it in 64 KiB blocks while the request is written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

SERVER = (
    "import time\nfrom tether.testing import TestServer\n"
    "s = TestServer().start()\nprint(s.port, flush=True)\ntime.sleep(600)"
)


def peak_kib(upload: Callable[[], int]) -> tuple[int, float]:
    tracemalloc.start()
    try:
        status = upload()
        return status, tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 48  # the TestServer takes up to 64 MiB
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/status/200"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.bin"
            path.write_bytes(os.urandom(1 << 20) * mib)
            import tether

            with tether.Session() as s:
                status, kib = peak_kib(
                    lambda: s.post(url, files={"f": path}, data={"k": "v"}).status
                )
            print(f"tether   files=Path     {mib} MiB: status {status}, peak {kib:,.0f} KiB")
            try:
                import requests
            except ImportError:
                return
            with requests.Session() as rs, path.open("rb") as f:
                status, kib = peak_kib(
                    lambda: rs.post(url, files={"f": f}, data={"k": "v"}).status_code
                )
            print(f"requests files=open()  {mib} MiB: status {status}, peak {kib:,.0f} KiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
