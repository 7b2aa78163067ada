"""Response.text: charsets from the server, unknown ones, none at all, and a settable encoding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tether
from tether.testing import Exchange, TestServer

CAFE_LATIN1 = "caf\u00e9 \u00e0 la cr\u00e8me".encode("latin-1")
CAFE = "caf\u00e9 \u00e0 la cr\u00e8me"


def _serve(ctype: str | None, body: bytes) -> Iterator[str]:
    def handler(ex: Exchange) -> None:
        ex.respond(200, [("Content-Type", ctype)] if ctype else [], body)

    with TestServer() as server:
        server.route("/t", handler)
        yield f"{server.url}/t"


def _get(ctype: str | None, body: bytes) -> tether.Response:
    for url in _serve(ctype, body):
        return tether.get(url)
    raise AssertionError("unreachable")


def test_unknown_charset_falls_back_instead_of_raising() -> None:
    r = _get("text/plain; charset=x-unknown", "na\u00efve".encode())
    assert r.encoding is None
    assert r.text == "na\u00efve"  # valid UTF-8: read as UTF-8


def test_unknown_charset_and_non_utf8_body_reads_as_windows_1252() -> None:
    assert _get("text/plain; charset=x-unknown", CAFE_LATIN1).text == CAFE


def test_latin1_body_without_charset_has_no_replacement_characters() -> None:
    r = _get("text/plain", CAFE_LATIN1)
    assert r.text == CAFE
    assert "\ufffd" not in r.text


def test_windows_1252_punctuation_and_its_undefined_bytes() -> None:
    r = _get(None, b"\x93quoted\x94 \x81")  # 0x81 is undefined in windows-1252
    assert r.text == "\u201cquoted\u201d \x81"


def test_declared_charset_is_used_and_bad_bytes_replaced() -> None:
    assert _get("text/plain; charset=ISO-8859-2", b"\xb1").text == "\u0105"
    r = _get('text/html; charset="utf-8"', b"ok \xff")
    assert r.encoding == "utf-8"
    assert r.text == "ok \ufffd"


def test_encoding_can_be_set_and_unset() -> None:
    r = _get("text/plain; charset=utf-8", CAFE_LATIN1)
    r.encoding = "latin-1"
    assert r.encoding == "latin-1"
    assert r.text == CAFE
    r.encoding = None
    assert r.encoding == "utf-8"
    with pytest.raises(LookupError, match="x-nope"):
        r.encoding = "x-nope"
    with pytest.raises(LookupError):
        r.encoding = "rot13"  # a str-to-str codec cannot decode a body
