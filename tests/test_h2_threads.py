"""Many threads on one HTTP/2 connection: nobody sleeps while nobody reads for them."""

from __future__ import annotations

import threading

import tether
from tether.testing import H2TestServer

THREADS = 16
ROUNDS = 15


def test_sixteen_threads_all_get_their_response_on_one_connection() -> None:
    # The responses arrive together, so one thread's read often carries another's response.
    # When the reader left, the thread it woke to take over could find its data there and
    # leave too, and the rest slept unread until their read timeout (about one round in six).
    failures: list[BaseException] = []
    with H2TestServer() as server, tether.Session(http2="prior-knowledge") as session:
        url = server.url + "/slow?ms=50"
        for _ in range(ROUNDS):
            start = threading.Barrier(THREADS, timeout=5.0)

            def fetch(start: threading.Barrier = start) -> None:
                try:
                    start.wait()
                    session.get(url, timeout=2.0)
                except BaseException as exc:
                    failures.append(exc)

            workers = [threading.Thread(target=fetch) for _ in range(THREADS)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=10.0)
            assert not failures, failures[0]
        assert server.connections_accepted == 1
        assert session.stats().requests == THREADS * ROUNDS
