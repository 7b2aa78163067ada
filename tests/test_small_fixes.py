"""Small API edges: chunk sizes, JSON that is not JSON, timeout pairs, a write deadline."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator

import pytest

import tether
from tether.testing import TestServer


@pytest.fixture
def pool(test_server: TestServer) -> Iterator[tether.ConnectionPool]:
    with tether.ConnectionPool("127.0.0.1", test_server.port) as pool:
        yield pool


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5, True])
@pytest.mark.parametrize("stream", [False, True])
def test_iter_bytes_refuses_a_chunk_size_that_is_not_positive(
    pool: tether.ConnectionPool, chunk_size: object, stream: bool
) -> None:
    with pool.request("GET", "/bytes/10", stream=stream) as r:
        with pytest.raises(ValueError, match="chunk_size"):
            r.iter_bytes(chunk_size)  # type: ignore[arg-type]
        assert b"".join(r.iter_bytes(3)) == bytes(range(10))  # nothing was consumed


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"a": [1, math.nan]}])
def test_json_body_refuses_nan_and_infinity_before_sending(
    test_server: TestServer, pool: tether.ConnectionPool, value: object
) -> None:
    with pytest.raises(ValueError, match="json= body cannot be sent as JSON"):
        pool.request("POST", "/echo", json=value)
    assert test_server.connections_accepted == 0


def test_timeout_pair_is_connect_then_read() -> None:
    assert tether.Timeout.of((3, 30)) == tether.Timeout(connect=3, read=30, write=30, pool=3)
    assert tether.Timeout.of([3, None]) == tether.Timeout(3, None, None, 3)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ((1, 2, 3), TypeError),
        ((1,), TypeError),
        (-1, ValueError),
        ((1, -2), ValueError),
        (math.nan, ValueError),
        ("5", TypeError),
        ((1, "2"), TypeError),
    ],
)
def test_timeout_of_names_a_bad_value(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout"):
        tether.Timeout.of(value)  # type: ignore[arg-type]


def test_write_timeout_is_a_deadline_for_the_whole_write() -> None:
    # A peer that never reads: every send call blocks until the socket's timeout, after
    # moving a little data. The write must give up after the timeout, not once per call.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    write = 0.5
    try:
        with tether.ConnectionPool("127.0.0.1", listener.getsockname()[1]) as pool:
            started = time.monotonic()
            with pytest.raises(tether.WriteTimeout):
                pool.request(
                    "POST", "/", body=b"x" * (32 << 20), timeout=tether.Timeout(write=write)
                )
            elapsed = time.monotonic() - started
    finally:
        listener.close()
    # Before: two or three send calls each waited the whole timeout (1.0-1.6 s for 0.5 s).
    assert elapsed < write * 1.8
