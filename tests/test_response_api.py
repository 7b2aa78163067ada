"""The response API a requests or httpx user reaches for: text and charsets, iter_lines,
iter_content, iter_text, raw, the async iterators, r.url as a string, elapsed, bool(r) and
raise_for_status; over real sockets (TestServer, chunked where pieces matter)."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aio_helpers import run

import tether
from tether import decoding
from tether.testing import Exchange, TestServer

RUSSIAN = "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 8


def _chunked(
    server: TestServer, path: str, pieces: list[bytes], headers: list[tuple[str, str]]
) -> str:
    """Route ``path`` to a chunked body sent as exactly these pieces; return its URL."""

    def handler(ex: Exchange) -> None:
        ex.send_head(200, [*headers, ("Transfer-Encoding", "chunked")])
        for piece in pieces:
            ex.send_raw(b"%x\r\n%s\r\n" % (len(piece), piece))
        ex.send_raw(b"0\r\n\r\n")

    server.route(path, handler)
    return server.url + path


@pytest.fixture
def session() -> Iterator[tether.Session]:
    with tether.Session() as s:
        yield s


# -- text and charsets ------------------------------------------------------------------------


def test_text_uses_the_content_type_charset_and_a_set_encoding(
    test_server: TestServer, session: tether.Session
) -> None:
    body = RUSSIAN.encode("koi8-r")
    url = _chunked(test_server, "/koi8", [body], [("Content-Type", "text/plain; charset=KOI8-R")])
    r = session.get(url)
    assert r.encoding == "KOI8-R"
    assert r.text == RUSSIAN
    r.encoding = "cp1251"
    assert r.text != RUSSIAN  # the user's choice wins, even a wrong one
    r.encoding = None
    assert r.text == RUSSIAN


def test_text_without_charset_prefers_utf8_then_detects(
    test_server: TestServer, session: tether.Session
) -> None:
    utf8 = _chunked(test_server, "/u8", [RUSSIAN.encode()], [("Content-Type", "text/plain")])
    assert session.get(utf8).text == RUSSIAN
    cp1251 = _chunked(test_server, "/cp", [RUSSIAN.encode("cp1251")], [])
    r = session.get(cp1251)
    assert r.encoding is None
    if decoding._optional("charset_normalizer") is None:
        pytest.skip("charset_normalizer is not installed: text falls back to windows-1252")
    assert r.text == RUSSIAN  # detected, not read as windows-1252
    assert r.apparent_encoding.lower() in {"cp1251", "windows-1251"}


def test_iter_text_keeps_a_character_cut_between_pieces(
    test_server: TestServer, session: tether.Session
) -> None:
    data = "caf\u00e9 \u2603 fin".encode()
    cut = data.index("\u2603".encode()) + 1  # in the middle of the snowman's three bytes
    url = _chunked(test_server, "/t", [data[:cut], data[cut:]], [])
    with session.get(url, stream=True) as r:
        assert "".join(r.iter_text()) == "caf\u00e9 \u2603 fin"


# -- iter_lines -------------------------------------------------------------------------------

LINE_PIECES = [b"first\r", b"\nsecond\n\nthi", b"rd\r\n", b"last"]


def test_iter_lines_like_requests_with_crlf_cut_in_two(
    test_server: TestServer, session: tether.Session
) -> None:
    url = _chunked(test_server, "/lines", LINE_PIECES, [])
    with session.get(url, stream=True) as r:
        lines = list(r.iter_lines())
    # requests yields a phantom b"" for the \r | \n cut; the empty line in the body stays.
    assert lines == [b"first", b"second", b"", b"third", b"last"]
    assert list(session.get(url).iter_lines(decode_unicode=True)) == [
        "first",
        "second",
        "",
        "third",
        "last",
    ]


def test_iter_lines_with_a_delimiter_cut_between_pieces(
    test_server: TestServer, session: tether.Session
) -> None:
    url = _chunked(test_server, "/d", [b"a||b|", b"|c||", b"||d||"], [])
    with session.get(url, stream=True) as r:
        assert list(r.iter_lines(delimiter=b"||")) == [b"a", b"b", b"c", b"", b"d"]
    assert list(session.get(url).iter_lines(decode_unicode=True, delimiter="||")) == [
        "a",
        "b",
        "c",
        "",
        "d",
    ]


def test_iter_lines_yields_each_line_as_it_arrives(test_server: TestServer) -> None:
    # Server-sent events: the second event is sent only after the client saw the first.
    seen: list[bytes] = []
    in_time: list[bool] = []

    def handler(ex: Exchange) -> None:
        ex.send_head(200, [("Transfer-Encoding", "chunked")])
        ex.send_raw(b"b\r\ndata: one\n\n\r\n")
        for _ in range(200):  # up to 2 s
            if seen:
                break
            ex.wait(0.01)
        in_time.append(bool(seen))
        ex.send_raw(b"b\r\ndata: two\n\n\r\n0\r\n\r\n")

    test_server.route("/sse", handler)
    with tether.Session() as s, s.get(test_server.url + "/sse", stream=True) as r:
        for line in r.iter_lines():
            seen.append(line)
    assert seen == [b"data: one", b"", b"data: two", b""]
    assert in_time == [True]  # the first line reached the caller before the rest was sent


def test_iter_lines_decodes_content_encoding_first(test_server: TestServer) -> None:
    body = b"".join(b"line %d\n" % i for i in range(5000))
    packed = gzip.compress(body)
    pieces = [packed[i : i + 100] for i in range(0, len(packed), 100)]
    url = _chunked(test_server, "/gz", pieces, [("Content-Encoding", "gzip")])
    with tether.Session() as s, s.get(url, stream=True) as r:
        assert list(r.iter_lines()) == [b"line %d" % i for i in range(5000)]


# -- iter_content, iter_bytes, __iter__, raw ---------------------------------------------------


def test_iter_content_chunk_sizes_and_decode_unicode(
    test_server: TestServer, session: tether.Session
) -> None:
    url = _chunked(test_server, "/c", [b"abcdefg", b"hij"], [("Content-Type", "text/plain")])
    with session.get(url, stream=True) as r:
        assert list(r.iter_content(4)) == [b"abcd", b"efgh", b"ij"]
    with session.get(url, stream=True) as r:
        assert list(r.iter_content()) == [bytes([c]) for c in b"abcdefghij"]  # requests' 1
    with session.get(url, stream=True) as r:
        assert "".join(r.iter_content(3, decode_unicode=True)) == "abcdefghij"
    with session.get(url, stream=True) as r:
        assert list(r) == [b"abcdefghij"]  # iterating a response: 128-byte chunks
    with pytest.raises(ValueError, match="chunk_size"):
        session.get(url).iter_content(0)


def test_raw_is_a_file_of_the_bytes_as_sent(
    test_server: TestServer, session: tether.Session
) -> None:
    body = b"x" * 50_000
    packed = gzip.compress(body)
    url = _chunked(test_server, "/raw", [packed[:10], packed[10:]], [("Content-Encoding", "gzip")])
    with session.get(url, stream=True) as r:
        assert r.raw.read(2) == b"\x1f\x8b"
        out = io.BytesIO()
        shutil.copyfileobj(r.raw, out)
        assert b"\x1f\x8b" + out.getvalue() == packed
    whole = session.get(url)
    assert whole.raw.read() == packed
    assert whole.content == body
    with session.get(url, stream=True) as r:
        assert r.content == body
        with pytest.raises(tether.StreamConsumed):
            list(r.iter_raw())
    with session.get(url, stream=True) as r:  # requests' idiom for saving a decoded body
        r.raw.decode_content = True
        out = io.BytesIO()
        shutil.copyfileobj(r.raw, out)
        assert out.getvalue() == body
    with session.get(url, stream=True) as r:
        assert r.raw.read(10, decode_content=True) == body[:10]
        with pytest.raises(tether.StreamError, match="decode_content"):
            r.raw.read(10, decode_content=False)


# -- async ------------------------------------------------------------------------------------


def test_async_iterators(test_server: TestServer) -> None:
    lines_url = _chunked(test_server, "/lines", LINE_PIECES, [])
    packed = gzip.compress(b"hello " * 1000)
    gz_url = _chunked(test_server, "/gz", [packed], [("Content-Encoding", "gzip")])

    async def main() -> None:
        async with tether.AsyncSession() as s:
            async with await s.get(lines_url, stream=True) as r:
                lines = [line async for line in r.aiter_lines()]
            assert lines == ["first", "second", "", "third", "last"]  # str, as httpx gives
            async with await s.get(lines_url, stream=True) as r:
                raw = [line async for line in r.aiter_lines(decode_unicode=False)]
            assert raw == [b"first", b"second", b"", b"third", b"last"]
            async with await s.get(gz_url, stream=True) as r:
                assert "".join([t async for t in r.aiter_text()]) == "hello " * 1000
            async with await s.get(gz_url, stream=True) as r:
                assert b"".join([p async for p in r.aiter_raw(100)]) == packed
                with pytest.raises(tether.StreamError):
                    r.raw  # noqa: B018  a streamed async body is not read by blocking calls
            whole = await s.get(gz_url)
            assert list(whole.iter_lines()) == [b"hello " * 1000]

    run(main())


# -- url, elapsed, bool, raise_for_status -------------------------------------------------------


def test_url_is_usable_as_a_string(test_server: TestServer, session: tether.Session) -> None:
    url = test_server.url + "/echo?a=1"
    r = session.get(url)
    assert r.url == url
    assert url == r.url
    assert str(r.url) == url
    assert type(str(r.url)) is str
    assert r.url.startswith("http://127.0.0.1:")
    assert "/echo" in r.url
    assert r.url + "&b=2" == url + "&b=2"
    assert json.dumps(str(r.url)) == json.dumps(r.url) == json.dumps(url)
    assert {url: "seen"}[r.url] == "seen"  # same hash as the string
    assert hash(r.url) == hash(url)
    assert r.url.target == "/echo?a=1"  # and still a URL


def test_url_equality_still_minds_credentials() -> None:
    plain, creds = tether.URL("http://h/x"), tether.URL("http://u:p@h/x")
    assert plain == "http://h/x" == creds  # the text holds no credentials
    assert plain != creds
    assert "p@" not in creds and "p@" not in repr(creds)


def test_elapsed_is_a_timedelta(test_server: TestServer, session: tether.Session) -> None:
    r = session.get(test_server.url + "/slow/0.05")
    assert isinstance(r.elapsed, timedelta)
    assert r.elapsed.total_seconds() == pytest.approx(r.elapsed_seconds, abs=1e-6)
    assert r.elapsed >= timedelta(seconds=0.05)


@pytest.mark.parametrize(("status", "ok"), [(200, True), (302, True), (418, False), (503, False)])
def test_bool_is_ok_and_raise_for_status_as_requests(
    test_server: TestServer, session: tether.Session, status: int, ok: bool
) -> None:
    r = session.get(f"{test_server.url}/status/{status}")
    assert bool(r) is ok is r.ok
    if ok:
        assert r.raise_for_status() is r
        return
    kind = "Client Error" if status < 500 else "Server Error"
    with pytest.raises(tether.HTTPStatusError) as caught:
        r.raise_for_status()
    assert str(caught.value) == f"{status} {kind}: {r.reason} for url: {r.url}"
    assert caught.value.response is r


@pytest.mark.parametrize(
    "text",
    [
        b"a\r\nb\n\nc\rd\r\r\n",
        b"a\r\n\nb",
        b"\r\n\r\n",
        b"x\ry\n",
        "\u00e9\r\n\u2028z\x0c".encode(),
        b"no end",
    ],
)
def test_line_splitting_does_not_depend_on_where_the_body_was_cut(text: bytes) -> None:
    # Every way of cutting the body in three gives the lines splitlines() finds in the whole.
    def split(pieces: list[Any]) -> list[Any]:
        splitter = decoding.LineSplitter[Any]()
        return [line for p in pieces for line in splitter.push(p)] + splitter.flush()

    for body in (text, text.decode()):
        for i, j in itertools.combinations(range(len(body) + 1), 2):
            assert split([body[:i], body[i:j], body[j:]]) == body.splitlines()
