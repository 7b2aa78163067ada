"""Upload bodies: file objects in blocks with a length, failing bodies, early refusals."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tether
from tether.testing import TestServer, pattern_bytes

LINES = b"line\n" * 20_000  # 100 kB of short lines: iterating the file would give 20,000 chunks


@pytest.fixture
def pool(test_server: TestServer) -> Iterator[tether.ConnectionPool]:
    with tether.ConnectionPool("127.0.0.1", test_server.port) as pool:
        yield pool


def _sent_headers(server: TestServer) -> dict[str, str]:
    return {n.lower(): v for n, v in server.exchanges[-1].headers}


def _blocks_sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the sizes of the pieces the connection writes after the head."""
    from tether.sync import http11

    sizes: list[int] = []
    real = http11._pieces

    def counting(body: Any) -> Iterator[bytes]:
        for piece in real(body):
            sizes.append(len(piece))
            yield piece

    monkeypatch.setattr(http11, "_pieces", counting)
    return sizes


def test_a_bytesio_is_sent_in_blocks_with_content_length(
    test_server: TestServer, pool: tether.ConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _blocks_sent(monkeypatch)
    body = io.BytesIO(b"skip" + LINES)
    body.seek(4)  # from the current position, as requests does
    doc = pool.request("POST", "/echo", body=body).json()
    assert doc["body_sha256"] == hashlib.sha256(LINES).hexdigest()
    assert _sent_headers(test_server)["content-length"] == str(len(LINES))
    assert "transfer-encoding" not in _sent_headers(test_server)
    assert sizes == [65536, len(LINES) - 65536]


def test_an_open_file_is_sent_with_its_size_from_the_position(
    test_server: TestServer, pool: tether.ConnectionPool, tmp_path: Path
) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"header" + pattern_bytes(200_000))
    with path.open("rb") as file:
        file.read(6)
        doc = pool.request("PUT", "/echo", body=file).json()
    assert doc["body_length"] == 200_000
    assert doc["body_sha256"] == hashlib.sha256(pattern_bytes(200_000)).hexdigest()
    assert _sent_headers(test_server)["content-length"] == "200000"


def test_a_text_file_is_sent_chunked_as_utf8(
    test_server: TestServer, pool: tether.ConnectionPool
) -> None:
    doc = pool.request("POST", "/echo", body=io.StringIO("caf\u00e9\n" * 3)).json()
    assert doc["body"] == "caf\u00e9\n" * 3
    assert _sent_headers(test_server)["transfer-encoding"] == "chunked"


class _FailingFile(io.RawIOBase):
    """A file whose disk read fails after the first block."""

    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        if self.reads > 1:
            raise OSError(5, "Input/output error (simulated disk failure)")
        buffer[:10] = b"x" * 10
        return 10


def _failing_iterator() -> Iterator[bytes]:
    yield b"first"
    raise OSError(5, "Input/output error (simulated disk failure)")


@pytest.mark.parametrize("make_body", [_FailingFile, _failing_iterator])
def test_a_failing_body_raises_the_callers_error_not_a_write_error(
    test_server: TestServer, pool: tether.ConnectionPool, make_body: Any
) -> None:
    with pytest.raises(OSError, match="simulated disk failure") as info:
        pool.request("POST", "/echo", body=make_body())
    assert not isinstance(info.value, tether.TetherError)
    test_server.errors.clear()  # the server saw a body cut short
    assert pool.request("GET", "/echo").status == 200  # the pool carries on


@pytest.mark.parametrize("streamed", [False, True])
def test_an_early_refusal_is_returned_instead_of_the_write_error(
    test_server: TestServer, pool: tether.ConnectionPool, streamed: bool
) -> None:
    data = b"x" * (16 << 20)  # far more than the socket buffers hold
    body: Any = (
        iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if streamed else data
    )
    r = pool.request("POST", "/reject-body/413", body=body)
    assert r.status == 413
    assert r.text == "refused before the body\n"
    assert pool.stats().open == 0  # that connection is closed, not pooled
    assert pool.request("GET", "/echo").status == 200
