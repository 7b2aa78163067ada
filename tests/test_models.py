"""URL, Headers, Request, method/target checks and Timeout: validation before any socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tether
from tether.exceptions import InvalidHeader, InvalidRequest, InvalidURL
from tether.models import URL, Headers, Origin, Request, Timeout, check_method, check_target

# -- URL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin", "target", "host_header"),
    [
        ("http://example.com", ("http", "example.com", 80), "/", "example.com"),
        ("https://example.com/", ("https", "example.com", 443), "/", "example.com"),
        ("http://example.com:80/a", ("http", "example.com", 80), "/a", "example.com"),
        ("https://example.com:443/a", ("https", "example.com", 443), "/a", "example.com"),
        ("http://example.com:443/", ("http", "example.com", 443), "/", "example.com:443"),
        ("https://example.com:8443/x", ("https", "example.com", 8443), "/x", "example.com:8443"),
        ("HTTP://Example.COM/Path", ("http", "example.com", 80), "/Path", "example.com"),
        ("http://h/a/b?x=1&y=2", ("http", "h", 80), "/a/b?x=1&y=2", "h"),
        ("http://h?q=1", ("http", "h", 80), "/?q=1", "h"),
        ("http://h/x#fragment", ("http", "h", 80), "/x", "h"),
        ("http://user:pw@h/x", ("http", "h", 80), "/x", "h"),
        ("http://127.0.0.1:8080/", ("http", "127.0.0.1", 8080), "/", "127.0.0.1:8080"),
        ("http://[::1]:8080/x", ("http", "::1", 8080), "/x", "[::1]:8080"),
        ("http://[::1]/", ("http", "::1", 80), "/", "[::1]"),
        ("http://h/%20already", ("http", "h", 80), "/%20already", "h"),
        ("http://h/caf\u00e9", ("http", "h", 80), "/caf%C3%A9", "h"),
    ],
)
def test_url_parts(url: str, origin: tuple[str, str, int], target: str, host_header: str) -> None:
    parsed = URL(url)
    assert parsed.origin == Origin(*origin)
    assert parsed.target == target
    assert parsed.host_header == host_header


def test_url_str_and_equality() -> None:
    assert str(URL("HTTP://Example.com:80/a?b=c")) == "http://example.com/a?b=c"
    assert URL("http://h/") == URL("http://h:80/")
    assert URL("http://h/") != URL("https://h/")
    assert hash(URL("http://h/")) == hash(URL("http://h:80/"))


def test_origin_str() -> None:
    assert str(Origin("http", "h", 80)) == "http://h:80"
    assert str(Origin("https", "::1", 8443)) == "https://[::1]:8443"


def test_idna_host() -> None:
    url = URL("https://b\u00fccher.example/")
    assert url.origin.host == "xn--bcher-kva.example"
    assert url.host_header == "xn--bcher-kva.example"
    assert str(url) == "https://xn--bcher-kva.example/"


def test_surrounding_spaces_are_ignored() -> None:
    assert URL("  http://h/x  ").target == "/x"


@pytest.mark.parametrize(
    ("url", "target"),
    [("http://h/a b", "/a%20b"), ("http://h/?q=a b", "/?q=a%20b")],
)
def test_space_is_percent_encoded(url: str, target: str) -> None:
    assert URL(url).target == target


@pytest.mark.parametrize(
    "url",
    [
        "example.com/path",
        "//example.com/path",
        "/just/a/path",
        "ftp://example.com/",
        "ws://example.com/",
        "file:///etc/passwd",
        "http://",
        "http:///path",
        "https://:443/",
        "http://h:0/",
        "http://h:70000/",
        "http://h:65536/",
        "http://h:abc/",
        "http://h:-1/",
        "http://h:8o/",
    ],
)
def test_invalid_url(url: str) -> None:
    with pytest.raises(InvalidURL):
        URL(url)


CONTROL = ["\r", "\n", "\r\n", "\x00", "\t"]
POSITIONS = [
    "http://h/x{c}",
    "http://h/{c}x",
    "http://h/x?y={c}",
    "http://h{c}/",
    "http://h:80{c}/",
    "{c}http://h/",
    "http://h/{c}Host: evil",
    "ht{c}tp://h/",
]


@pytest.mark.parametrize("template", POSITIONS)
@pytest.mark.parametrize("char", CONTROL, ids=["CR", "LF", "CRLF", "NUL", "TAB"])
def test_control_characters_anywhere_are_refused(template: str, char: str) -> None:
    with pytest.raises(InvalidURL):
        URL(template.format(c=char))


def test_url_errors_are_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as info:
        URL("ftp://h/")
    assert info.value.may_have_reached_server is False


def test_url_must_be_str() -> None:
    with pytest.raises(InvalidURL):
        URL(b"http://h/")  # type: ignore[arg-type]


def test_url_from_parts() -> None:
    url = URL.from_parts(Origin("https", "h", 8443), "/a?b=1")
    assert str(url) == "https://h:8443/a?b=1"
    with pytest.raises(InvalidURL):
        URL.from_parts(Origin("http", "h", 80), "a")


def test_with_query() -> None:
    assert URL("http://h/p").with_query({"a": "1", "b": "x y"}).target == "/p?a=1&b=x+y"
    assert URL("http://h/p?z=0").with_query([("a", "1")]).target == "/p?z=0&a=1"
    url = URL("http://h/p")
    assert url.with_query({}) == url


# -- Headers ---------------------------------------------------------------------------------------


def test_headers_case_insensitive() -> None:
    headers = Headers({"Content-Type": "text/plain"})
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert "cOnTeNt-TyPe" in headers
    assert headers.get("missing") is None
    with pytest.raises(KeyError):
        headers["missing"]


def test_headers_multi_values() -> None:
    headers = Headers([("Set-Cookie", "a=1"), ("X", "1"), ("set-cookie", "b=2")])
    assert headers.get_list("SET-COOKIE") == ["a=1", "b=2"]
    assert headers["set-cookie"] == "a=1, b=2"
    assert headers.get_list("missing") == []
    assert len(headers) == 2


def test_headers_keep_order_and_spelling() -> None:
    headers = Headers([("B-Second", "1"), ("a-first", "2"), ("B-SECOND", "3")])
    assert list(headers) == ["B-Second", "a-first"]
    assert headers.multi_items() == [("B-Second", "1"), ("a-first", "2"), ("B-SECOND", "3")]
    assert headers.encode() == b"B-Second: 1\r\na-first: 2\r\nB-SECOND: 3\r\n"


def test_setitem_replaces_every_value_and_del_removes_all() -> None:
    headers = Headers([("X", "1"), ("x", "2"), ("Y", "3")])
    headers["X"] = "9"
    assert headers.get_list("x") == ["9"]
    del headers["y"]
    assert "Y" not in headers
    with pytest.raises(KeyError):
        del headers["y"]


def test_encode_follows_changes() -> None:
    headers = Headers({"A": "1"})
    assert headers.encode() == b"A: 1\r\n"
    headers.add("B", "2")
    assert headers.encode() == b"A: 1\r\nB: 2\r\n"


def test_value_whitespace_is_trimmed_and_tab_inside_allowed() -> None:
    headers = Headers({"X": " \ta\tb \t"})
    assert headers["X"] == "a\tb"


BAD_VALUES = ["a\rb", "a\nb", "a\r\nInjected: 1", "a\x00b", "\r\n", "a\x7fb", "caf\u20ac"]
BAD_NAMES = ["X Y", "X:", "X:Y", "X\r", "X\n", "X\x00", "", " X", "X\t", "\u00e9"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_bad_header_value_refused(value: str) -> None:
    with pytest.raises(InvalidHeader):
        Headers({"X": value})
    headers = Headers()
    with pytest.raises(InvalidHeader):
        headers.add("X", value)
    with pytest.raises(InvalidHeader):
        headers["X"] = value
    assert headers.encode() == b""


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_header_name_refused(name: str) -> None:
    with pytest.raises(InvalidHeader):
        Headers({name: "v"})
    headers = Headers()
    with pytest.raises(InvalidHeader):
        headers[name] = "v"
    assert headers.encode() == b""


def test_latin1_value_allowed() -> None:
    assert Headers({"X": "caf\u00e9"}).encode() == b"X: caf\xe9\r\n"


def test_merged_replaces_names_and_keeps_the_rest() -> None:
    base = Headers([("Accept", "*/*"), ("X-A", "1"), ("x-a", "2"), ("User-Agent", "t")])
    merged = base.merged({"x-A": "3", "New": "n"})
    assert merged.get_list("X-A") == ["3"]
    assert merged["accept"] == "*/*"
    assert merged["user-agent"] == "t"
    assert merged["new"] == "n"
    # the original is untouched
    assert base.get_list("x-a") == ["1", "2"]
    assert "New" not in base


def test_merged_with_headers_keeps_repeated_values() -> None:
    merged = Headers({"A": "1"}).merged(Headers([("a", "2"), ("A", "3")]))
    assert merged.get_list("a") == ["2", "3"]


@pytest.mark.parametrize("other", [None, {}])
def test_merged_with_nothing_is_still_a_copy(other: dict[str, str] | None) -> None:
    base = Headers({"A": "1"})
    merged = base.merged(other)
    merged["A"] = "2"
    assert base["A"] == "1"


def test_headers_equality() -> None:
    assert Headers({"A": "1"}) == Headers({"a": "1"})
    assert Headers({"A": "1"}) == {"a": "1"}
    assert Headers({"A": "1"}) != Headers({"A": "2"})


def test_framing() -> None:
    assert Headers({"Host": "h", "Content-Length": "3"}).framing() == (True, True, False)
    assert Headers({"Transfer-Encoding": "chunked"}).framing() == (False, True, False)
    assert Headers({"Connection": "Close"}).framing() == (False, False, True)
    assert Headers().framing() == (False, False, False)


# -- Request ---------------------------------------------------------------------------------------


def _gen() -> Iterator[bytes]:
    yield b"x"


@pytest.mark.parametrize(
    ("method", "body", "headers", "replayable"),
    [
        ("GET", None, None, True),
        ("HEAD", None, None, True),
        ("OPTIONS", None, None, True),
        ("DELETE", None, None, True),
        ("PUT", b"data", None, True),
        ("put", b"data", None, True),
        ("POST", None, None, False),
        ("POST", b"data", None, False),
        ("PATCH", b"data", None, False),
        ("POST", b"data", {"Idempotency-Key": "k1"}, True),
        ("POST", None, {"idempotency-key": "k1"}, True),
        ("POST", b"data", {"X-Idempotency-Key": "k1"}, True),
        ("PUT", _gen(), None, False),
        ("PUT", [b"a", b"b"], None, False),
        ("POST", _gen(), {"Idempotency-Key": "k1"}, False),
        ("GET", _gen(), None, False),
    ],
)
def test_replayable(
    method: str, body: object, headers: dict[str, str] | None, replayable: bool
) -> None:
    request = Request(method, "http://h/", headers=headers, body=body)  # type: ignore[arg-type]
    assert request.replayable is replayable


def test_request_validates_method_url_and_headers() -> None:
    with pytest.raises(InvalidHeader):
        Request("GET /evil HTTP/1.1\r\n", "http://h/")
    with pytest.raises(InvalidURL):
        Request("GET", "http://h/\r\nX: 1")
    with pytest.raises(InvalidHeader):
        Request("GET", "http://h/", headers={"X": "a\r\nb"})


def test_request_normalises_method_and_owns_its_headers() -> None:
    headers = Headers({"A": "1"})
    request = Request("post", URL("http://h/x"), headers=headers)
    assert request.method == "POST"
    assert request.headers == headers
    request.headers["B"] = "2"  # a request's headers are its own: the caller's stay as they were
    assert "B" not in headers
    assert request.wire_headers() is request.headers
    assert str(request.url) == "http://h/x"


def test_request_body_types() -> None:
    assert Request("POST", "http://h/", body="é").body == "é".encode()
    assert Request("POST", "http://h/", body=bytearray(b"ab")).body == b"ab"
    with pytest.raises(TypeError, match="dict"):
        Request("POST", "http://h/", body={"a": 1})  # type: ignore[arg-type]


# -- method and target -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [("GET", "GET"), ("get", "GET"), ("Patch", "PATCH"), ("M-SEARCH", "M-SEARCH")],
)
def test_check_method_accepts_tokens(method: str, expected: str) -> None:
    assert check_method(method) == expected


@pytest.mark.parametrize(
    "method",
    ["GET /x", "GE\r\nT", "GET\n", "GET\r", "G\x00T", "", " GET", "GET ", "G\u00c9T", "(GET)"],
)
def test_check_method_refuses_non_tokens(method: str) -> None:
    with pytest.raises(InvalidHeader):
        check_method(method)


@pytest.mark.parametrize("target", ["/", "/a/b?c=d", "/%20", "/a:b@c", "/a b"])
def test_check_target_accepts_paths(target: str) -> None:
    assert check_target(target) == target


@pytest.mark.parametrize(
    "target",
    ["", "x", "a/b", "*", "http://h/", "/a\rb", "/a\nb", "/a\r\nHost: x", "/\x00", "/\t"],
)
def test_check_target_refuses(target: str) -> None:
    with pytest.raises(InvalidURL):
        check_target(target)


# -- Timeout ---------------------------------------------------------------------------------------


def test_timeout_of() -> None:
    assert Timeout.of(None) == Timeout(None, None, None, None)
    assert Timeout.of(3) == Timeout(3, 3, 3, 3)
    assert Timeout.of(2.5) == Timeout(2.5, 2.5, 2.5, 2.5)
    assert Timeout.of((1, 20)) == Timeout(connect=1, read=20, write=20, pool=1)
    custom = Timeout(read=1.0)
    assert Timeout.of(custom) is custom
    assert (custom.connect, custom.read, custom.write, custom.pool) == (10.0, 1.0, 30.0, 10.0)


def test_timeout_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Timeout().read = 1  # type: ignore[misc]


# -- the package's public names --------------------------------------------------------------------


def test_every_public_name_exists() -> None:
    missing = [name for name in tether.__all__ if not hasattr(tether, name)]
    assert missing == []
    assert len(set(tether.__all__)) == len(tether.__all__)


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then everything else, each alphabetical.
    group = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return group, name


def test_all_is_sorted() -> None:
    assert tether.__all__ == sorted(set(tether.__all__), key=_isort_key)


def test_merged_headers_are_encoded_with_the_new_names() -> None:
    base = Headers({"User-Agent": "tether", "Accept": "*/*"})
    base.encode()  # a session's defaults are encoded once and then copied per request
    merged = base.merged({"Connection": "close", "Accept": "text/plain"})
    wire = merged.encode()
    assert b"Connection: close\r\n" in wire
    assert b"Accept: text/plain\r\n" in wire
    assert b"*/*" not in wire
    assert merged.framing() == (False, False, True)
    assert base.encode() == b"User-Agent: tether\r\nAccept: */*\r\n"
