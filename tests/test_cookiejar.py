"""tether.Cookies on its own: a CookieJar that is dict-like by name, and never shows values."""

from __future__ import annotations

import threading
from http.cookiejar import CookieJar

import pytest

import tether
from tether.client.cookies import cookie_header, extract_cookies
from tether.testing import Exchange, TestServer


def test_dict_like_and_a_cookiejar() -> None:
    jar = tether.Cookies({"a": "1"})
    jar["b"] = "2"
    assert isinstance(jar, CookieJar)
    assert (jar["a"], jar.get("b"), jar.get("c", "none")) == ("1", "2", "none")
    assert "a" in jar and "c" not in jar
    assert sorted(jar.keys()) == ["a", "b"] and dict(jar.items()) == {"a": "1", "b": "2"}
    del jar["a"]
    assert jar.keys() == ["b"]
    with pytest.raises(KeyError):
        del jar["a"]
    with pytest.raises(KeyError):
        jar["a"]


def test_same_name_on_two_domains_must_be_named() -> None:
    jar = tether.Cookies()
    jar.set("sid", "one", domain="a.example")
    jar.set("sid", "two", domain="b.example")
    with pytest.raises(KeyError, match="several domains"):
        jar["sid"]
    assert jar.get("sid", domain="b.example") == "two"
    url = tether.URL("http://a.example/")
    assert cookie_header([jar], url) == "sid=one"


def test_bad_names_and_values_refused() -> None:
    jar = tether.Cookies()
    with pytest.raises(ValueError, match="invalid cookie name"):
        jar["a=b"] = "x"
    with pytest.raises(ValueError, match="CR or LF"):
        jar["ok"] = "x\r\nSet-Cookie: evil=1"


def test_repr_shows_names_not_values() -> None:
    jar = tether.Cookies({"session": "s3cr3t"})
    assert "s3cr3t" not in repr(jar) and "s3cr3t" not in str(jar) and "session" in repr(jar)


def test_update_keeps_a_jars_scopes() -> None:
    scoped = tether.Cookies()
    scoped.set("x", "1", domain="a.example", path="/p")
    jar = tether.Cookies()
    jar.update(scoped)
    assert cookie_header([jar], tether.URL("http://a.example/p/q")) == "x=1"
    assert cookie_header([jar], tether.URL("http://a.example/")) is None
    assert cookie_header([jar], tether.URL("http://b.example/p")) is None


def test_extract_uses_the_response_url() -> None:
    jar = tether.Cookies()
    headers = tether.Headers([("Set-Cookie", "k=v; Path=/")])
    extract_cookies(jar, headers, tether.URL("http://a.example/login"))
    assert cookie_header([jar], tether.URL("http://a.example/")) == "k=v"
    assert cookie_header([jar], tether.URL("http://evil.example/")) is None


def test_one_jar_shared_by_threads(test_server: TestServer) -> None:
    def handler(ex: Exchange) -> None:
        ex.respond(200, [("Set-Cookie", f"t{ex.args['t'][0]}={ex.args['i'][0]}")], b"")

    test_server.route("/set", handler)
    errors: list[BaseException] = []
    with tether.Session(trust_env=False, pool_maxsize=8) as s:

        def work(t: int) -> None:
            try:
                for i in range(20):
                    s.get(f"{test_server.url}/set?t={t}&i={i}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert errors == []
        assert dict(s.cookies.items()) == {f"t{t}": "19" for t in range(8)}
