"""fields= with file tuples is multipart/form-data, as read by a real parser on the server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

import tether
from tether.requestbody import encode_multipart
from tether.testing import TestServer

BINARY = bytes(range(256)) * 4 + b"\r\n--not-a-boundary\r\n"


@pytest.fixture
def pool(test_server: TestServer) -> Iterator[tether.ConnectionPool]:
    with tether.ConnectionPool("127.0.0.1", test_server.port) as pool:
        yield pool


def _parts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert doc["parts"] is not None, "the server's parser did not read a multipart body"
    return {part["name"]: part for part in doc["parts"]}


def test_file_tuples_make_a_multipart_body(pool: tether.ConnectionPool) -> None:
    fields = {
        "plain": "caf\u00e9",
        "doc": ("name.txt", b"hello\n"),
        "blob": ("b.bin", BINARY, "image/png"),
    }
    parts = _parts(pool.request("POST", "/echo", fields=fields).json())
    assert parts["plain"]["body"] == "caf\u00e9" and parts["plain"]["filename"] is None
    assert parts["doc"]["filename"] == "name.txt"
    assert parts["doc"]["content_type"] == "text/plain"  # guessed from the name
    assert parts["doc"]["body"] == "hello\n"
    assert parts["blob"]["content_type"] == "image/png"
    assert parts["blob"]["body_sha256"] == hashlib.sha256(BINARY).hexdigest()


def test_multipart_through_a_session_and_pairs(test_server: TestServer) -> None:
    with tether.Session() as s:
        r = s.post(f"{test_server.url}/echo", data=[("a", "1"), ("f", ("x.json", b"{}"))])
    parts = _parts(r.json())
    assert parts["a"]["body"] == "1"
    assert parts["f"]["content_type"] == "application/json"


def test_quotes_and_newlines_in_names_cannot_forge_a_part(pool: tether.ConnectionPool) -> None:
    fields = {'a"; filename="evil': ('f\r\nContent-Type: text/html".txt', b"x")}
    parts = pool.request("POST", "/echo", fields=fields).json()["parts"]
    assert len(parts) == 1
    assert parts[0]["name"] == "a%22; filename=%22evil"
    assert parts[0]["filename"] == "f%0D%0AContent-Type: text/html%22.txt"


def test_fields_without_files_stay_form_encoded(pool: tether.ConnectionPool) -> None:
    doc = pool.request("POST", "/echo", fields={"a": "1", "b": "x y"}).json()
    assert doc["parts"] is None and doc["body"] == "a=1&b=x+y"


@pytest.mark.parametrize("bad", [("only-a-name",), ("n", b"d", "t", "extra")])
def test_a_malformed_file_tuple_is_refused(pool: tether.ConnectionPool, bad: tuple[Any]) -> None:
    with pytest.raises(TypeError, match="filename, data"):
        pool.request("POST", "/echo", fields={"f": bad})


def test_a_content_type_with_a_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        encode_multipart([("f", ("n", b"d", "text/plain\r\nX: y"))])
