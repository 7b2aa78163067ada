"""Session default headers changed while other threads send: every later request sees it."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

import tether
from tether.models import Headers
from tether.testing import TestServer


@pytest.fixture
def fast_switching() -> Iterator[None]:
    # Switch threads as often as possible, so an unlocked cache fill meets a change.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_a_change_is_never_lost_to_a_concurrent_encode(fast_switching: None) -> None:
    # Many headers make encode() long enough for a change to land in the middle of it.
    headers = Headers({f"X-{i}": "x" * 20 for i in range(200)})
    stop = threading.Event()

    def encode_forever() -> None:
        deadline = time.monotonic() + 10.0
        while not stop.is_set() and time.monotonic() < deadline:
            headers.encode()

    readers = [threading.Thread(target=encode_forever) for _ in range(3)]
    for thread in readers:
        thread.start()
    stale = []
    try:
        for i in range(3000):
            headers["Authorization"] = f"Bearer v{i}"
            time.sleep(0)  # let a reader that began before the change finish its fill
            if f"Bearer v{i}\r\n".encode() not in headers.encode():
                stale.append(i)
    finally:
        stop.set()
        for thread in readers:
            thread.join(5.0)
    assert stale == []


def test_session_header_change_reaches_every_thread(test_server: TestServer) -> None:
    seen: list[str] = []
    with tether.Session(pool_maxsize=4) as s:
        s.headers["Authorization"] = "Bearer v1"
        s.get(f"{test_server.url}/warm")  # the defaults are encoded and cached now
        s.headers["Authorization"] = "Bearer v2"

        def worker() -> None:
            for _ in range(5):
                doc = s.get(f"{test_server.url}/echo").json()
                seen.extend(v for n, v in doc["headers"] if n.lower() == "authorization")

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10.0)
    assert seen == ["Bearer v2"] * 20


def test_a_request_does_not_copy_unchanged_session_headers(test_server: TestServer) -> None:
    with tether.Session() as s:
        r = s.get(f"{test_server.url}/echo")
        assert r.request.wire_headers() is s.headers  # the no-copy path
        r.request.headers["X-Mine"] = "1"  # a request's own copy on first access
        assert "X-Mine" not in s.headers
