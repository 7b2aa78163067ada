"""Request bodies from a user's point of view: files= (multipart, streamed, read by Werkzeug's
parser on the server), file objects and iterators, data= with None values, JSON as UTF-8,
async bodies, and the bad inputs: a missing file, a body that fails midway."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aio_helpers import run
from werkzeug.formparser import parse_form_data

import tether
from tether.models import FILE_BLOCK
from tether.testing import Exchange, H2TestServer, TestServer, pattern_bytes


def _werkzeug_form(ex: Exchange) -> None:
    """Parse the body as a browser's form would be, by Werkzeug, and answer what it read."""
    environ = {
        "REQUEST_METHOD": ex.method,
        "CONTENT_TYPE": ex.header("Content-Type") or "",
        "CONTENT_LENGTH": str(len(ex.body)),
        "wsgi.input": io.BytesIO(ex.body),
    }
    _, form, files = parse_form_data(environ)
    doc = {
        "form": {k: form.getlist(k) for k in form},
        "files": {
            k: [
                {
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "sha256": hashlib.sha256(data := f.read()).hexdigest(),
                    "size": len(data),
                    "text": data.decode("utf-8", "replace") if len(data) < 200 else None,
                }
                for f in files.getlist(k)
            ]
            for k in files
        },
        "content_length": ex.header("Content-Length"),
        "chunked": ex.header("Transfer-Encoding") == "chunked",
    }
    for _, storage in files.items(multi=True):
        storage.close()  # Werkzeug spools each file to a temporary file
    ex.respond(200, [("Content-Type", "application/json")], json.dumps(doc).encode())


@pytest.fixture
def form_url(test_server: TestServer) -> str:
    test_server.route("/form", _werkzeug_form)
    return f"{test_server.url}/form"


def _recorded_pieces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the pieces the connection writes after the request head."""
    from tether.sync import http11

    sizes: list[int] = []
    real = http11._pieces

    def counting(body: Any) -> Iterator[bytes]:
        for piece in real(body):
            sizes.append(len(piece))
            yield piece

    monkeypatch.setattr(http11, "_pieces", counting)
    return sizes


# -- files= -----------------------------------------------------------------------------------


def test_files_with_data_fields_as_a_browser_sends_them(form_url: str, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"
    report.write_bytes(b"a,b\n1,2\n")
    with tether.Session() as s, report.open("rb") as opened:
        r = s.post(
            form_url,
            data={"title": "caf\u00e9", "tags": ["x", "y"], "skipped": None},
            files={
                "report": opened,  # a bare file: its own name, type guessed
                "blob": ("b.bin", pattern_bytes(300), "image/png"),
                "note": ("note.txt", io.BytesIO(b"hello")),
                "path": ("p.json", report),
            },
        )
    doc = r.json()
    assert doc["form"] == {"title": ["caf\u00e9"], "tags": ["x", "y"]}
    files = {k: v[0] for k, v in doc["files"].items()}
    assert files["report"]["filename"] == "report.csv"
    assert files["report"]["content_type"] == "text/csv"
    assert files["report"]["text"] == "a,b\n1,2\n"
    assert files["blob"]["content_type"] == "image/png"
    assert files["blob"]["sha256"] == hashlib.sha256(pattern_bytes(300)).hexdigest()
    assert files["note"] == {**files["note"], "filename": "note.txt", "text": "hello"}
    assert files["path"]["filename"] == "p.json" and files["path"]["text"] == "a,b\n1,2\n"
    assert doc["content_length"] is not None and not doc["chunked"]  # every size was known


def test_files_as_pairs_repeat_a_field(form_url: str) -> None:
    with tether.Session() as s:
        files = [("f", ("1.txt", b"one")), ("f", ("2.txt", b"two"))]
        doc = s.post(form_url, files=files).json()
    assert [f["text"] for f in doc["files"]["f"]] == ["one", "two"]


def test_a_large_file_is_streamed_in_blocks_with_its_length(
    form_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _recorded_pieces(monkeypatch)
    data = pattern_bytes(3 * FILE_BLOCK + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    with tether.Session() as s:
        doc = s.post(form_url, data={"k": "v"}, files={"big": path}).json()
    big = doc["files"]["big"][0]
    assert big["size"] == len(data) and big["sha256"] == hashlib.sha256(data).hexdigest()
    assert big["filename"] == "big.bin"
    # Sent as it was read, a block at a time: never the whole file in one piece.
    assert max(sizes) <= FILE_BLOCK and len(sizes) >= 4
    assert int(doc["content_length"]) == sum(sizes)


def test_a_file_of_unknown_size_makes_the_body_chunked(form_url: str) -> None:
    with tether.Session() as s:
        doc = s.post(form_url, files={"t": ("t.txt", io.StringIO("caf\u00e9"))}).json()
    assert doc["chunked"] and doc["content_length"] is None
    assert doc["files"]["t"][0]["text"] == "caf\u00e9"


def test_a_missing_file_is_refused_before_connecting(
    test_server: TestServer, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.txt"
    with tether.Session() as s:
        with pytest.raises(FileNotFoundError, match="files= field 'doc': no such file") as info:
            s.post(f"{test_server.url}/form", files={"doc": missing})
        assert info.value.filename == str(missing)
        with pytest.raises(IsADirectoryError, match="not a regular file"):
            s.post(f"{test_server.url}/form", files={"doc": tmp_path})
    assert test_server.connections_accepted == 0


def test_files_with_a_raw_body_is_a_type_error(test_server: TestServer) -> None:
    with tether.Session() as s, pytest.raises(TypeError, match="files= goes with form fields"):
        s.post(f"{test_server.url}/form", data=b"raw", files={"f": b"x"})
    assert test_server.connections_accepted == 0


# -- data=, json= -----------------------------------------------------------------------------


def test_data_fields_with_none_are_left_out(test_server: TestServer) -> None:
    with tether.Session() as s:
        doc = s.post(f"{test_server.url}/echo", data={"a": "1", "b": None, "c": "x y"}).json()
    assert doc["body"] == "a=1&c=x+y"


def test_json_sends_non_ascii_as_utf8(test_server: TestServer) -> None:
    with tether.Session() as s:
        doc = s.post(f"{test_server.url}/echo", json={"name": "caf\u00e9 \u2603"}).json()
    assert doc["body"] == '{"name":"caf\u00e9 \u2603"}'
    assert doc["body_length"] == len('{"name":"caf\u00e9 \u2603"}'.encode())
    assert dict((n.lower(), v) for n, v in doc["headers"])["content-type"] == "application/json"


def test_json_with_a_lone_surrogate_is_still_valid_json(test_server: TestServer) -> None:
    with tether.Session() as s:
        doc = s.post(f"{test_server.url}/echo", json={"s": "\ud800"}).json()
    assert json.loads(doc["body"]) == {"s": "\ud800"}


# -- file objects and iterators as bodies -----------------------------------------------------


def test_a_file_object_body_has_a_length_and_an_iterator_is_chunked(
    test_server: TestServer, tmp_path: Path
) -> None:
    path = tmp_path / "up.bin"
    path.write_bytes(pattern_bytes(100_000))
    with tether.Session() as s, path.open("rb") as f:
        doc = s.put(f"{test_server.url}/echo", data=f).json()
        sent = dict((n.lower(), v) for n, v in doc["headers"])
        assert sent["content-length"] == "100000" and doc["body_length"] == 100_000
        doc = s.put(f"{test_server.url}/echo", data=iter([b"ab", b"", b"cd"])).json()
        sent = dict((n.lower(), v) for n, v in doc["headers"])
        assert sent["transfer-encoding"] == "chunked" and doc["body"] == "abcd"


class Boom(Exception):
    """The caller's own failure, raised by its body iterator."""


def _failing_body() -> Iterator[bytes]:
    yield b"x" * 1000
    raise Boom("the caller's generator failed")


def test_a_body_that_fails_midway_raises_the_callers_error_and_discards_the_connection(
    test_server: TestServer,
) -> None:
    with tether.Session() as s:
        assert s.get(f"{test_server.url}/echo").status == 200
        with pytest.raises(Boom, match="the caller's generator failed"):
            s.post(f"{test_server.url}/echo", data=_failing_body())
        test_server.errors.clear()  # the server saw a chunked body cut short
        assert s.get(f"{test_server.url}/echo").status == 200
        stats = s.stats()
    # the half-sent connection was not reused: the next request needed a new one
    assert test_server.connections_accepted == 2
    assert stats.in_use == 0 and stats.connections_opened == 2


# -- async bodies -----------------------------------------------------------------------------


async def _agen(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


def test_async_iterable_bodies_for_async_session(test_server: TestServer) -> None:
    async def main() -> tuple[Any, Any]:
        async with tether.AsyncSession() as s:
            chunked = (await s.post(f"{test_server.url}/echo", data=_agen([b"a", b"bc"]))).json()
            sized = await s.post(
                f"{test_server.url}/echo",
                data=_agen([b"12", b"345"]),
                headers={"Content-Length": "5"},
            )
            return chunked, sized.json()

    chunked, sized = run(main())
    assert chunked["body"] == "abc"
    assert dict((n.lower(), v) for n, v in chunked["headers"])["transfer-encoding"] == "chunked"
    assert sized["body"] == "12345"
    assert dict((n.lower(), v) for n, v in sized["headers"])["content-length"] == "5"


def test_async_session_files_and_failing_async_body(form_url: str, test_server: TestServer) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 100
        raise Boom("async generator failed")

    async def main() -> Any:
        async with tether.AsyncSession() as s:
            doc = (await s.post(form_url, data={"a": "1"}, files={"f": ("f.txt", b"hi")})).json()
            with pytest.raises(Boom, match="async generator failed"):
                await s.post(f"{test_server.url}/echo", data=failing())
            test_server.errors.clear()
            assert (await s.get(f"{test_server.url}/echo")).status == 200
            return doc, s.stats()

    doc, stats = run(main())
    assert doc["form"] == {"a": ["1"]} and doc["files"]["f"][0]["text"] == "hi"
    assert stats.in_use == 0 and stats.connections_opened == 2


def test_the_threaded_session_refuses_an_async_body_before_connecting(
    test_server: TestServer,
) -> None:
    body = _agen([b"x"])
    with tether.Session() as s, pytest.raises(TypeError, match="only be sent by AsyncSession"):
        s.post(f"{test_server.url}/echo", data=body)
    run(body.aclose())
    assert test_server.connections_accepted == 0


def test_async_body_and_streamed_files_over_http2(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(pattern_bytes(200_000))

    async def main(url: str) -> tuple[Any, Any]:
        async with tether.AsyncSession(http2="prior-knowledge") as s:
            r1 = await s.post(f"{url}/echo", data=_agen([b"x" * 70_000, b"y" * 70_000]))
            r2 = await s.post(f"{url}/echo", files={"f": path})
            assert r1.http_version == r2.http_version == "HTTP/2"
            return r1.json(), r2.json()

    with H2TestServer() as h2:
        streamed, multipart = run(main(f"http://127.0.0.1:{h2.port}"))
        assert h2.errors == [] and h2.connections_accepted == 1
    expected = hashlib.sha256(b"x" * 70_000 + b"y" * 70_000).hexdigest()
    assert streamed["body_length"] == 140_000 and streamed["body_sha256"] == expected
    assert multipart["body_length"] > 200_000  # the whole file went, inside its part
