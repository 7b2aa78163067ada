"""Redirects over real sockets: semantics against httpbin, security and faults on TestServer.

Every behaviour runs for both ``Session`` and ``AsyncSession`` (``kind``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from servers.httpbin_server import Httpbin
from session_kinds import KINDS, last_header, make_session, redirect, tls_server

import tether
from tether.testing import Exchange, TestServer

pytestmark = pytest.mark.parametrize("kind", KINDS)


# -- following, as requests does --------------------------------------------------------------


def test_redirects_followed_with_history(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind) as s:
        r = s.get(httpbin_server.url + "/redirect/3")
        assert r.status == 200
        assert r.json()["url"] == httpbin_server.url + "/get"
        assert [h.status for h in r.history] == [302, 302, 302]
        assert str(r.history[0].url) == httpbin_server.url + "/redirect/3"
        assert str(r.url) == httpbin_server.url + "/get"


def test_absolute_and_relative_locations(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind) as s:
        assert s.get(httpbin_server.url + "/absolute-redirect/2").json()["url"].endswith("/get")
        assert s.get(httpbin_server.url + "/relative-redirect/2").json()["url"].endswith("/get")


def test_scheme_relative_location(kind: str, test_server: TestServer) -> None:
    authority = test_server.url.removeprefix("http:")
    redirect(test_server, "/from", f"{authority}/echo?via=scheme-relative")
    with make_session(kind) as s:
        r = s.get(test_server.url + "/from")
        assert r.json()["args"] == {"via": ["scheme-relative"]}


def test_relative_path_and_query_only_locations(kind: str, test_server: TestServer) -> None:
    def query_only(ex: Exchange) -> None:
        if ex.query:
            ex.respond(200, [], ex.query.encode())
        else:
            ex.respond(302, [("Location", "?q=1")])

    redirect(test_server, "/dir/start", "next")  # relative to /dir/
    test_server.route("/dir/next", query_only)  # same path, new query
    with make_session(kind) as s:
        r = s.get(test_server.url + "/dir/start")
        assert (r.url.target, r.content) == ("/dir/next?q=1", b"q=1")
        assert len(r.history) == 2


@pytest.mark.parametrize("status", [301, 302])
def test_301_302_turn_post_into_get_without_body(
    kind: str, status: int, httpbin_server: Httpbin
) -> None:
    with make_session(kind) as s:
        r = s.post(
            httpbin_server.url + f"/redirect-to?url=/anything&status_code={status}",
            data=b"secret body",
            headers={"Content-Type": "text/plain"},
        )
        echo = r.json()
        assert echo["method"] == "GET"
        assert echo["data"] == ""
        assert "Content-Type" not in echo["headers"]
        assert "Content-Length" not in echo["headers"]


def test_303_turns_put_into_get_and_keeps_head(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind) as s:
        r = s.put(httpbin_server.url + "/redirect-to?url=/anything&status_code=303", data=b"x")
        assert r.json()["method"] == "GET"
        r = s.head(httpbin_server.url + "/redirect-to?url=/anything&status_code=303")
        assert r.status == 200 and r.request.method == "HEAD"


@pytest.mark.parametrize("status", [307, 308])
def test_307_308_keep_method_and_body(kind: str, status: int, httpbin_server: Httpbin) -> None:
    with make_session(kind) as s:
        r = s.post(
            httpbin_server.url + f"/redirect-to?url=/anything&status_code={status}",
            json={"keep": "me"},
        )
        echo = r.json()
        assert echo["method"] == "POST"
        assert echo["json"] == {"keep": "me"}
        assert r.history[0].status == status


def test_307_with_one_shot_body_ends_with_clear_error(kind: str, test_server: TestServer) -> None:
    redirect(test_server, "/upload", "/echo", status=307)
    with make_session(kind) as s:
        with pytest.raises(tether.BodyNotReplayable, match="307") as info:
            s.post(test_server.url + "/upload", data=iter([b"one", b"shot"]))
        assert info.value.response is not None and info.value.response.status == 307
        assert [ex.path for ex in test_server.exchanges] == ["/upload"]


def test_allow_redirects_false_gives_next(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind) as s:
        r = s.get(httpbin_server.url + "/redirect/2", allow_redirects=False)
        assert r.status == 302 and r.history == []
        assert r.next is not None and str(r.next.url) == httpbin_server.url + "/relative-redirect/1"
        r = s.get(httpbin_server.url + "/redirect/2", follow_redirects=False)  # httpx's name
        assert r.status == 302 and r.next_request is r.next


def test_session_follow_redirects_false(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind, follow_redirects=False) as s:
        assert s.get(httpbin_server.url + "/redirect/1").status == 302
        assert s.get(httpbin_server.url + "/redirect/1", allow_redirects=True).status == 200


def test_hops_reuse_one_connection(kind: str, test_server: TestServer) -> None:
    with make_session(kind) as s:
        r = s.get(test_server.url + "/redirect/5")
        assert r.status == 200 and len(r.history) == 5
        assert test_server.connections_accepted == 1
        assert test_server.connection_request_counts == [6]
        assert s.stats().reuses == 5


def test_hops_reuse_one_connection_on_httpbin(kind: str, httpbin_server: Httpbin) -> None:
    before = len(httpbin_server.access_log())
    with make_session(kind) as s:
        s.get(httpbin_server.url + "/redirect/4")
    entries = httpbin_server.wait_for_requests(before + 5)[before:]
    assert len({e.connection for e in entries}) == 1


# -- bad input --------------------------------------------------------------------------------


def test_redirect_loop_raises_too_many_redirects(kind: str, test_server: TestServer) -> None:
    redirect(test_server, "/a", "/b")
    redirect(test_server, "/b", "/a")
    with make_session(kind, max_redirects=5) as s:
        with pytest.raises(tether.TooManyRedirects, match="more than 5") as info:
            s.get(test_server.url + "/a")
        assert len(info.value.history) == 5
        assert info.value.response is not None and info.value.response.status == 302
    assert test_server.requests_served == 6
    assert test_server.connections_accepted == 1


def test_redirect_to_file_url_is_refused(kind: str, test_server: TestServer) -> None:
    redirect(test_server, "/steal", "file:///etc/passwd")
    with make_session(kind) as s:
        with pytest.raises(tether.InvalidRedirect, match="file: URL refused"):
            s.get(test_server.url + "/steal")
        assert s.get(test_server.url + "/steal", allow_redirects=False).status == 302


def test_location_with_spaces_and_non_ascii(kind: str, test_server: TestServer) -> None:
    def raw_utf8(ex: object) -> None:  # a server that writes the UTF-8 bytes as they are
        test_server.exchanges[-1].send_raw(
            "HTTP/1.1 302 Found\r\nLocation: /café\r\nContent-Length: 0\r\n\r\n".encode()
        )

    redirect(test_server, "/spaces", "/a b/c d?x=1 2")
    test_server.route("/utf8", raw_utf8)  # type: ignore[arg-type]
    with make_session(kind) as s:
        assert s.get(test_server.url + "/spaces").json()["path"] == "/a%20b/c%20d"
        assert s.get(test_server.url + "/utf8").json()["path"] == "/caf%C3%A9"


def test_location_that_is_not_a_url(kind: str, test_server: TestServer) -> None:
    redirect(test_server, "/bad", "http://[not-an-ip/")
    with make_session(kind) as s, pytest.raises(tether.InvalidRedirect, match="Location"):
        s.get(test_server.url + "/bad")


# -- security: what a hop that leaves the origin may carry (one test per case) ------------------


def test_same_origin_hop_keeps_authorization(kind: str, test_server: TestServer) -> None:
    redirect(test_server, "/login", "/echo")
    with make_session(kind, auth=("user", "pw")) as s:
        s.get(test_server.url + "/login")
    assert last_header(test_server, "authorization") == tether.BasicAuth("user", "pw")._value


def test_port_change_drops_authorization(kind: str, test_server: TestServer) -> None:
    with TestServer() as other:
        redirect(test_server, "/go", other.url + "/echo")
        with make_session(kind) as s:
            s.get(test_server.url + "/go", auth=("user", "pw"), headers={"Cookie": "sid=1"})
            s.get(
                test_server.url.replace("://", "://u:p@") + "/go",
                headers={"Proxy-Authorization": "Basic eDp5"},
            )
        assert test_server.exchanges[0].header("authorization") is not None
        assert test_server.exchanges[1].header("proxy-authorization") is not None
        for ex in other.exchanges:
            assert ex.header("authorization") is None
            assert ex.header("proxy-authorization") is None
            assert ex.header("cookie") is None  # the caller's own Cookie header is not scoped
        assert len(other.exchanges) == 2


def test_host_change_drops_authorization_and_cookies(kind: str, test_server: TestServer) -> None:
    # 127.0.0.1 -> localhost: another host, same server (so the server sees both hops).
    port = test_server.port
    redirect(test_server, "/go", f"http://localhost:{port}/echo", extra=[("Set-Cookie", "a=1")])
    with make_session(kind, auth=("user", "pw")) as s:
        s.get(test_server.url + "/go", cookies={"mine": "2"})
        s.get(test_server.url + "/go")  # now the jar holds a=1 for 127.0.0.1
    first, hop, second, hop2 = test_server.exchanges
    assert first.header("authorization") is not None and first.header("cookie") == "mine=2"
    assert second.header("cookie") == "a=1"
    for ex in (hop, hop2):
        assert ex.header("host") == f"localhost:{port}"
        assert ex.header("authorization") is None
        assert ex.header("cookie") is None


def test_https_to_http_downgrade_drops_credentials(
    kind: str, test_server: TestServer, ca: trustme.CA, tmp_path: Path
) -> None:
    with tls_server(ca, tmp_path) as (secure, ca_file):
        redirect(
            secure,
            "/go",
            test_server.url + "/echo",
            extra=[("Set-Cookie", "token=s3cret; Secure"), ("Set-Cookie", "plain=1")],
        )
        with make_session(kind, verify=ca_file) as s:
            r = s.get(secure.url + "/go", auth=("user", "pw"))
        assert r.status == 200 and r.history[0].url.origin.scheme == "https"
        assert secure.exchanges[0].header("authorization") is not None
    assert last_header(test_server, "authorization") is None
    # The Secure cookie never travels over http; the plain one is scoped to the host, whose
    # http side may read it (cookies do not separate schemes or ports: RFC 6265 §8.5).
    assert last_header(test_server, "cookie") == "plain=1"


def test_url_credentials_not_shown_and_not_forwarded(kind: str, test_server: TestServer) -> None:
    with TestServer() as other:
        redirect(test_server, "/go", other.url + "/missing-page")
        url = test_server.url.replace("://", "://alice:hunter2@") + "/go"
        with make_session(kind) as s:
            r = s.get(url)
        assert r.status == 200
        assert test_server.exchanges[0].header("authorization") is not None
        assert other.exchanges[0].header("authorization") is None
        for text in (repr(r), repr(r.request), str(r.history[0].url), repr(r.history[0].request)):
            assert "hunter2" not in text


def test_streamed_chain_frees_each_hop(kind: str, test_server: TestServer) -> None:
    with make_session(kind) as s:
        r = s.get(test_server.url + "/redirect/3", stream=True)
        assert r.status == 200 and len(r.history) == 3
        assert s.stats().open == 1  # the hops' connection, now the final response's
        s._run(r.aclose()) if kind == "async" else r.close()
        assert s.stats().open == 1 and test_server.connections_accepted == 1
        assert s.get(test_server.url + "/echo").connection_info.reused
