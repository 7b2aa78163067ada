"""Cookies over real sockets, for both sessions: the jar, cookies=, response.cookies."""

from __future__ import annotations

from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import trustme
from servers.httpbin_server import Httpbin
from session_kinds import KINDS, last_header, make_session, tls_server

import tether
from tether.testing import Exchange, TestServer

pytestmark = pytest.mark.parametrize("kind", KINDS)


def set_cookie_route(server: TestServer, path: str, *values: str) -> None:
    def handler(ex: Exchange) -> None:
        ex.respond(200, [("Set-Cookie", v) for v in values], b"set")

    server.route(path, handler)


def test_login_cookie_kept_by_the_session(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind) as s:
        r = s.get(httpbin_server.url + "/cookies/set?sid=abc123&theme=dark")
        assert r.json() == {"cookies": {"sid": "abc123", "theme": "dark"}}
        assert r.history[0].cookies["sid"] == "abc123"  # set during the redirect chain
        assert s.cookies["sid"] == "abc123" and dict(s.cookies.items())["theme"] == "dark"
        assert isinstance(s.cookies, CookieJar)
        assert s.get(httpbin_server.url + "/cookies").json()["cookies"]["sid"] == "abc123"
        s.get(httpbin_server.url + "/cookies/delete?sid")
        assert "sid" not in s.cookies
        assert s.get(httpbin_server.url + "/cookies").json()["cookies"] == {"theme": "dark"}


def test_request_cookies_sent_but_not_stored(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind, cookies={"session_wide": "1"}) as s:
        r = s.get(httpbin_server.url + "/cookies", cookies={"once": "2"})
        assert r.json()["cookies"] == {"session_wide": "1", "once": "2"}
        assert s.get(httpbin_server.url + "/cookies").json()["cookies"] == {"session_wide": "1"}
        # The call's own value wins over the jar's for the same name.
        r = s.get(httpbin_server.url + "/cookies", cookies={"session_wide": "mine"})
        assert r.json()["cookies"] == {"session_wide": "mine"}


def test_cookie_jar_as_request_cookies(kind: str, test_server: TestServer) -> None:
    jar = tether.Cookies()
    jar.set("scoped", "yes", domain="127.0.0.1", path="/only")
    with make_session(kind) as s:
        s.get(test_server.url + "/only/here", cookies=jar)
        assert last_header(test_server, "cookie") == "scoped=yes"
        s.get(test_server.url + "/elsewhere", cookies=jar)
        assert last_header(test_server, "cookie") is None


def test_response_cookies(kind: str, test_server: TestServer) -> None:
    set_cookie_route(test_server, "/set", "a=1; Path=/", "b=2; Path=/")
    with make_session(kind) as s:
        r = s.get(test_server.url + "/set")
        assert dict(r.cookies.items()) == {"a": "1", "b": "2"}
        assert r.cookies.get("missing") is None
        assert s.get(test_server.url + "/echo").cookies.keys() == []
        assert last_header(test_server, "cookie") in ("a=1; b=2", "b=2; a=1")


def test_domain_the_host_may_not_set_is_ignored(kind: str, test_server: TestServer) -> None:
    set_cookie_route(
        test_server, "/set", "evil=1; Domain=example.com", "wide=1; Domain=.com", "ok=1"
    )
    with make_session(kind) as s:
        r = s.get(test_server.url + "/set")
        assert r.cookies.keys() == ["ok"] and s.cookies.keys() == ["ok"]
        s.get(test_server.url + "/echo")
        assert last_header(test_server, "cookie") == "ok=1"


def test_path_and_expiry_rules(kind: str, test_server: TestServer) -> None:
    set_cookie_route(
        test_server,
        "/set",
        "admin=1; Path=/admin",
        "gone=1; Max-Age=0",
        "old=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
    )
    with make_session(kind) as s:
        s.get(test_server.url + "/set")
        s.get(test_server.url + "/public")
        assert last_header(test_server, "cookie") is None
        s.get(test_server.url + "/admin/panel")
        assert last_header(test_server, "cookie") == "admin=1"


def test_secure_cookie_only_over_https(
    kind: str, test_server: TestServer, ca: trustme.CA, tmp_path: Path
) -> None:
    with tls_server(ca, tmp_path) as (secure, ca_file):
        set_cookie_route(secure, "/set", "token=t; Secure", "plain=p")
        with make_session(kind, verify=ca_file) as s:
            s.get(secure.url + "/set")
            s.get(secure.url + "/echo")
            assert last_header(secure, "cookie") in ("token=t; plain=p", "plain=p; token=t")
            s.get(test_server.url + "/echo")  # same host, plain http
            assert last_header(test_server, "cookie") == "plain=p"


def test_explicit_cookie_header_wins(kind: str, test_server: TestServer) -> None:
    with make_session(kind, cookies={"jar": "1"}) as s:
        s.get(test_server.url + "/echo", headers={"Cookie": "mine=1"})
        assert last_header(test_server, "cookie") == "mine=1"


def test_cookie_values_never_in_repr(kind: str, test_server: TestServer) -> None:
    set_cookie_route(test_server, "/set", "sid=topsecret")
    with make_session(kind) as s:
        r = s.get(test_server.url + "/set")
        sent = s.get(test_server.url + "/echo").request
        assert sent.headers["cookie"] == "sid=topsecret"
        for text in (repr(s.cookies), str(s.cookies), repr(r.cookies), repr(sent.headers)):
            assert "topsecret" not in text
        assert "sid" in repr(s.cookies)
