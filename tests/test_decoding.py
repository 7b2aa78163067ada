"""Content-Encoding over real sockets: nginx's gzip, TestServer's br, zstd, deflate (both
kinds), stacked codings, damaged data and decompression bombs, for Session and AsyncSession."""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
import zlib
from collections.abc import Callable

import pytest
from aio_helpers import run
from helpers import fd_count
from servers.nginx import LINES_SIZE, Nginx, lines_text

import tether
from tether import decoding
from tether.decoding import PIECE, DecodeLimits, available_encodings
from tether.testing import Exchange, TestServer

HAVE = set(available_encodings())
needs = {
    coding: pytest.mark.skipif(
        coding not in HAVE and not os.environ.get("CI"),  # CI installs tether[test]: both
        reason=f"no {coding} decoder installed (pip install 'tether[{coding}]')",
    )
    for coding in ("br", "zstd")
}
BODY = b"".join(b'{"id": %d, "name": "caf\xc3\xa9 %d"}\n' % (i, i * 31) for i in range(3000))
MIB = 1024 * 1024


def _brotli(data: bytes) -> bytes:
    return decoding._brotli.compress(data)  # type: ignore[no-any-return]


def _zstd(data: bytes) -> bytes:
    return decoding._zstd.compress(data)  # type: ignore[no-any-return]


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _gzip_zeros(size: int) -> bytes:
    """A gzip bomb: ``size`` zero bytes, about 1000 times smaller."""
    c = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return b"".join(c.compress(bytes(MIB)) for _ in range(size // MIB)) + c.flush()


CODINGS: list[tuple[str, list[str], Callable[[bytes], bytes]]] = [
    ("gzip", ["gzip"], gzip.compress),
    ("x-gzip", ["x-gzip"], gzip.compress),
    ("deflate-zlib", ["deflate"], zlib.compress),
    ("deflate-raw", ["deflate"], _raw_deflate),
    ("gzip-two-members", ["gzip"], lambda d: gzip.compress(d[:999]) + gzip.compress(d[999:])),
    ("identity-then-gzip", ["identity, gzip"], gzip.compress),
    ("gzip-then-deflate", ["gzip, deflate"], lambda d: zlib.compress(gzip.compress(d))),
    ("two-header-lines", ["deflate", "gzip"], lambda d: gzip.compress(zlib.compress(d))),
    pytest.param("br", ["br"], _brotli, marks=needs["br"]),
    pytest.param("zstd", ["zstd"], _zstd, marks=needs["zstd"]),
    pytest.param(
        "gzip-br-zstd",
        ["gzip, br", "zstd"],
        lambda d: _zstd(_brotli(gzip.compress(d))),
        marks=[needs["br"], needs["zstd"]],
    ),
]


def _serve(server: TestServer, path: str, headers: list[tuple[str, str]], body: bytes) -> str:
    """Route ``path`` to ``body`` sent chunked in 1000-byte pieces (so the client decodes
    pieces as they come); returns the URL."""

    def handler(ex: Exchange) -> None:
        ex.send_head(200, [*headers, ("Transfer-Encoding", "chunked")])
        if ex.method != "HEAD":
            for i in range(0, len(body), 1000):
                piece = body[i : i + 1000]
                ex.send_raw(b"%x\r\n%s\r\n" % (len(piece), piece))
            ex.send_raw(b"0\r\n\r\n")

    server.route(path, handler)
    return server.url + path


def _encoded(values: list[str]) -> list[tuple[str, str]]:
    return [("Content-Encoding", v) for v in values]


# -- real nginx -----------------------------------------------------------------------------


def test_nginx_gzip_is_decoded_and_iter_raw_gives_what_nginx_sent(nginx: Nginx) -> None:
    with tether.Session() as s:
        r = s.get(nginx.url + "/gzip/lines.txt")
        assert r.headers["content-encoding"] == "gzip"
        assert r.content == lines_text()
        assert r.text.startswith("0000000 00000 fox 0 jumps\n")
        raw = b"".join(r.iter_raw())
        assert len(raw) < len(r.content) // 3  # really compressed on the wire
        assert gzip.decompress(raw) == r.content


def test_nginx_gzip_streams_piece_by_piece_without_holding_the_body(nginx: Nginx) -> None:
    expected = lines_text()
    with tether.Session() as s:
        s.get(nginx.url + "/").close()  # the pool's connection exists before we measure
        tracemalloc.start()
        try:
            with s.get(nginx.url + "/gzip/lines.txt", stream=True) as r:
                sizes, offset = [], 0
                for piece in r.iter_bytes():
                    assert piece == expected[offset : offset + len(piece)]
                    offset += len(piece)
                    sizes.append(len(piece))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert offset == LINES_SIZE
        assert max(sizes) <= PIECE
        assert len(sizes) >= LINES_SIZE // PIECE
        assert peak < LINES_SIZE // 4, f"{peak} bytes traced while streaming"
        again = s.get(nginx.url + "/gzip/small.txt")
        assert again.content == b"Hello, world!"
        assert again.connection_info.reused  # the decoded stream ended the body cleanly


def test_nginx_gzip_over_http2(nginx_h2: Nginx) -> None:
    with tether.Session(http2=True, verify=str(nginx_h2.ca_file)) as s:
        r = s.get(nginx_h2.url + "/gzip/lines.txt")
        assert r.connection_info.protocol == "h2"
        assert r.headers["content-encoding"] == "gzip"
        assert r.content == lines_text()


def test_nginx_gzip_async_streamed_and_whole(nginx: Nginx) -> None:
    async def main() -> None:
        async with tether.AsyncSession() as s:
            whole = await s.get(nginx.url + "/gzip/lines.txt")
            assert whole.content == lines_text()
            async with await s.get(nginx.url + "/gzip/lines.txt", stream=True) as r:
                pieces = [piece async for piece in r.aiter_bytes()]
            assert b"".join(pieces) == lines_text()
            assert max(map(len, pieces)) <= PIECE

    run(main())


def test_nginx_sends_plain_bytes_when_the_request_does_not_accept_gzip(nginx: Nginx) -> None:
    with tether.Session(headers={"Accept-Encoding": None}) as s:
        r = s.get(nginx.url + "/gzip/small.txt")
        assert "content-encoding" not in r.headers
        assert r.content == b"Hello, world!"


# -- every coding, through TestServer -----------------------------------------------------------


@pytest.mark.parametrize(("name", "values", "encode"), CODINGS)
def test_coding_is_undone_whole_and_streamed(
    test_server: TestServer, name: str, values: list[str], encode: Callable[[bytes], bytes]
) -> None:
    wire = encode(BODY)
    url = _serve(test_server, "/c", _encoded(values), wire)
    with tether.Session() as s:
        r = s.get(url)
        assert r.content == BODY
        assert json.loads(r.text.splitlines()[1]) == {"id": 1, "name": "caf\u00e9 31"}
        assert b"".join(r.iter_raw()) == wire
        with s.get(url, stream=True) as streamed:
            assert b"".join(streamed.iter_bytes(777)) == BODY
        with s.get(url, stream=True) as streamed:
            assert b"".join(streamed.iter_raw()) == wire
    assert test_server.connections_accepted == 1  # every body ended cleanly: one connection


@pytest.mark.parametrize(("name", "values", "encode"), CODINGS)
def test_coding_is_undone_async(
    test_server: TestServer, name: str, values: list[str], encode: Callable[[bytes], bytes]
) -> None:
    wire = encode(BODY)
    url = _serve(test_server, "/c", _encoded(values), wire)

    async def main() -> None:
        async with tether.AsyncSession() as s:
            assert (await s.get(url)).content == BODY
            async with await s.get(url, stream=True) as r:
                assert b"".join([p async for p in r.aiter_bytes()]) == BODY
            async with await s.get(url, stream=True) as r:
                assert b"".join([p async for p in r.aiter_raw()]) == wire
            async with await s.get(url, stream=True) as r:
                assert await r.aread() == BODY

    run(main())


@pytest.mark.parametrize(("name", "values", "encode"), CODINGS)
def test_decoder_byte_by_byte_and_every_truncation(
    name: str, values: list[str], encode: Callable[[bytes], bytes]
) -> None:
    small = BODY[:3000]
    wire = encode(small)
    codings = decoding.codings_of(values)
    decoder = decoding.Decoder(codings, DecodeLimits())
    pieces = [out for i in range(len(wire)) for out in decoder.feed(wire[i : i + 1])]
    decoder.finish()
    assert b"".join(pieces) == small
    if name == "gzip-two-members":
        return  # cut between its members it is a complete gzip body of the first part

    def decodes(data: bytes) -> bool:
        try:
            decoding.decode_all(data, codings, DecodeLimits())
        except tether.DecodingError:
            return False
        return True

    # Never a short body: every cut of the encoded bytes (but none at all) is an error.
    assert [cut for cut in range(1, len(wire)) if decodes(wire[:cut])] == []


def test_pool_responses_decode_like_urllib3s(test_server: TestServer) -> None:
    # A pool sends no Accept-Encoding of its own, but decodes what comes, as urllib3 does.
    wire = gzip.compress(BODY)
    _serve(test_server, "/p", [("Content-Encoding", "gzip")], wire)
    with tether.ConnectionPool("127.0.0.1", test_server.port) as pool:
        r = pool.request("GET", "/p")
        assert r.data == BODY
        assert b"".join(r.iter_raw()) == wire


def test_accept_encoding_names_exactly_what_is_installed(test_server: TestServer) -> None:
    with tether.Session() as s:
        sent = dict(s.get(test_server.url + "/echo").json()["headers"])
        assert sent["Accept-Encoding"] == tether.ACCEPT_ENCODING
        assert sent["Accept-Encoding"].split(", ") == list(available_encodings())
        own = s.get(test_server.url + "/echo", headers={"Accept-Encoding": "identity"})
        assert dict(own.json()["headers"])["Accept-Encoding"] == "identity"
    if os.environ.get("CI"):
        assert {"br", "zstd"} <= HAVE


def test_unknown_coding_leaves_the_body_as_sent(test_server: TestServer) -> None:
    url = _serve(test_server, "/u", [("Content-Encoding", "utf-8")], BODY)
    with tether.Session() as s:
        assert s.get(url).content == BODY


def test_a_coding_without_its_library_is_a_clear_error(
    test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decoding, "_brotli", None)
    url = _serve(test_server, "/b", [("Content-Encoding", "br")], b"\x0b\x02\x80hi\x03")
    with tether.Session() as s, pytest.raises(tether.DecodingError, match=r"tether\[brotli\]"):
        s.get(url)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"this is not gzip at all", "invalid gzip data"),
        (gzip.compress(BODY)[:-20], "ended early"),
        (gzip.compress(BODY)[:-8] + b"\x00" * 8, "invalid gzip data"),  # bad CRC and length
        (gzip.compress(BODY) + b"junk", "after the end"),
    ],
    ids=["garbage", "truncated", "bad-checksum", "trailing-junk"],
)
def test_damaged_gzip_is_a_typed_error_never_a_short_body(
    test_server: TestServer, wire: bytes, message: str
) -> None:
    url = _serve(test_server, "/bad", [("Content-Encoding", "gzip")], wire)
    with tether.Session() as s:
        with pytest.raises(tether.DecodingError, match=message) as caught:
            s.get(url)
        assert caught.value.request is not None and caught.value.request.url == url
        with s.get(url, stream=True) as r, pytest.raises(tether.DecodingError, match=message):
            for _ in r.iter_bytes():
                pass
        assert s.get(test_server.url + "/echo").status == 200  # the pool carries on


@needs["zstd"]
def test_zstd_window_past_rfc_9659_is_refused(test_server: TestServer) -> None:
    # A decoder's window is memory it must allocate whatever the body's size: 64 MiB here.
    big_window = {decoding._zstd.CompressionParameter.window_log: 26}
    wire = decoding._zstd.compress(BODY * 100, options=big_window)
    url = _serve(test_server, "/zw", [("Content-Encoding", "zstd")], wire)
    with tether.Session() as s, pytest.raises(tether.DecodingError, match="8 MiB window"):
        s.get(url)


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_bodyless_responses_have_nothing_to_decode(
    test_server: TestServer, method: str, status: int
) -> None:
    def handler(ex: Exchange) -> None:
        ex.respond(status, [("Content-Encoding", "gzip"), ("Content-Length", "40")])

    test_server.route("/none", handler)
    with tether.Session() as s:
        r = s.request(method, test_server.url + "/none")
        assert r.status == status
        assert r.content == b""
        assert r.text == ""


# -- the bomb guard -----------------------------------------------------------------------------

BOMB_SIZE = 200 * MIB  # the "200 MB from a 200 KB response"


@pytest.fixture(scope="module")
def bomb() -> bytes:
    wire = _gzip_zeros(BOMB_SIZE)
    assert len(wire) < 250_000
    return wire


def _bomb_server(server: TestServer, bomb: bytes) -> str:
    def handler(ex: Exchange) -> None:
        ex.respond(200, [("Content-Encoding", "gzip")], bomb)

    server.route("/bomb", handler)
    return server.url + "/bomb"


def _peak(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_bomb_is_refused_at_the_limit_whole(test_server: TestServer, bomb: bytes) -> None:
    url = _bomb_server(test_server, bomb)
    with tether.Session() as s:
        s.get(test_server.url + "/echo")
        before = fd_count()  # the pooled connection (and the idle watcher) included

        def fetch() -> None:
            with pytest.raises(tether.DecompressionLimitError, match="expands more than 200"):
                s.get(url)

        peak = _peak(fetch)
        assert peak < 40 * MIB, f"{peak} bytes traced: the bomb was held in memory"
        after = s.get(test_server.url + "/echo")
        assert after.status == 200  # the pool is healthy
        # The encoded body was read to its end before decoding: the connection was clean.
        assert after.connection_info.request_number == 3
        assert fd_count() == before


def test_bomb_is_refused_while_streaming_and_its_connection_closed(
    test_server: TestServer, bomb: bytes
) -> None:
    url = _bomb_server(test_server, bomb)
    with tether.Session() as s:
        s.get(test_server.url + "/echo")
        before = fd_count()  # the pooled connection (and the idle watcher) included

        def stream() -> None:
            with s.get(url, stream=True) as r, pytest.raises(tether.DecompressionLimitError):
                for _ in r.iter_bytes():
                    pass

        peak = _peak(stream)
        assert peak < 40 * MIB, f"{peak} bytes traced: the bomb was held in memory"
        assert test_server.wait_open_connections(0)  # closed, not drained for 200 KB
        assert fd_count() == before - 1
        after = s.get(test_server.url + "/echo")
        assert after.status == 200
        assert not after.connection_info.reused
        assert test_server.connections_accepted == 2
        assert fd_count() == before


def test_bomb_is_refused_async(test_server: TestServer, bomb: bytes) -> None:
    url = _bomb_server(test_server, bomb)

    async def main() -> None:
        async with tether.AsyncSession() as s:
            with pytest.raises(tether.DecompressionLimitError):
                await s.get(url)
            async with await s.get(url, stream=True) as r:
                with pytest.raises(tether.DecompressionLimitError):
                    async for _ in r.aiter_bytes():
                        pass
            assert (await s.get(test_server.url + "/echo")).status == 200

    run(main())


def test_limits_are_per_session(test_server: TestServer) -> None:
    zeros = _gzip_zeros(20 * MIB)  # expands 1000 times: past the default ratio, under its size
    url = _bomb_server(test_server, zeros)
    with tether.Session() as s, pytest.raises(tether.DecompressionLimitError):
        s.get(url)
    with tether.Session(decode_limits=DecodeLimits(max_ratio=None)) as s:
        assert s.get(url).content == bytes(20 * MIB)
    small = _serve(test_server, "/small", [("Content-Encoding", "gzip")], gzip.compress(BODY))
    tight = DecodeLimits(max_size=len(BODY) - 1)
    refused = pytest.raises(tether.DecompressionLimitError, match=f"more than {len(BODY) - 1}")
    with tether.Session(decode_limits=tight) as s, refused:
        s.get(small)

    async def main() -> None:
        limits = DecodeLimits(max_size=len(BODY) - 1)
        async with tether.AsyncSession(decode_limits=limits) as s:
            with pytest.raises(tether.DecompressionLimitError):
                await s.get(small)

    run(main())


def test_a_small_very_repetitive_page_is_not_a_bomb(test_server: TestServer) -> None:
    page = b" " * (4 * MIB)  # expands ~1000 times, but 4 MiB is an ordinary page size
    url = _serve(test_server, "/spaces", [("Content-Encoding", "gzip")], gzip.compress(page))
    with tether.Session() as s:
        assert s.get(url).content == page


def test_decode_limits_refuse_nonsense() -> None:
    for bad in ({"max_size": 0}, {"max_ratio": -1.0}, {"ratio_after": -5}, {"max_size": True}):
        with pytest.raises(ValueError, match="DecodeLimits"):
            DecodeLimits(**bad)  # type: ignore[arg-type]
