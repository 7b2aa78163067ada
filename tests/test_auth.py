"""Auth over real sockets for both sessions: Basic, URL userinfo, Digest, tokens, callables."""

from __future__ import annotations

import pytest
from servers.httpbin_server import Httpbin
from session_kinds import KINDS, last_header, make_session

import tether
from tether.testing import Exchange, TestServer

pytestmark = pytest.mark.parametrize("kind", KINDS)


def test_basic_auth_pair(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind) as s:
        r = s.get(httpbin_server.url + "/basic-auth/alice/pw", auth=("alice", "pw"))
        assert r.status == 200 and r.json() == {"authenticated": True, "user": "alice"}
        assert (
            s.get(httpbin_server.url + "/basic-auth/alice/pw", auth=("alice", "no")).status == 401
        )
        assert s.get(httpbin_server.url + "/basic-auth/alice/pw").status == 401


def test_session_auth_and_request_override(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind, auth=("alice", "pw")) as s:
        assert s.get(httpbin_server.url + "/basic-auth/alice/pw").status == 200
        r = s.get(httpbin_server.url + "/basic-auth/bob/pw2", auth=("bob", "pw2"))
        assert r.json()["user"] == "bob"


def test_url_userinfo_is_basic_and_never_shown(kind: str, httpbin_server: Httpbin) -> None:
    url = httpbin_server.url.replace("://", "://alice:s%40cret@") + "/basic-auth/alice/s@cret"
    with make_session(kind) as s:
        r = s.get(url)
        assert r.status == 200 and r.json()["user"] == "alice"
        assert r.request.headers["authorization"] == tether.BasicAuth("alice", "s@cret")._value
        for text in (repr(r), repr(r.request), str(r.url), repr(r.request.headers)):
            assert "s%40cret" not in text and "@127.0.0.1" not in text  # (the path has s@cret)
            assert r.request.headers["authorization"] not in text
    closed = "http://alice:s%40cret@127.0.0.1:9/"  # nothing listens on port 9
    with make_session(kind) as s, pytest.raises(tether.ConnectError) as info:
        s.get(closed, timeout=2)
    assert "cret" not in str(info.value) and "cret" not in repr(info.value)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "SHA-512"])
def test_digest_auth(kind: str, algorithm: str, httpbin_server: Httpbin) -> None:
    url = httpbin_server.url + f"/digest-auth/auth/alice/pw/{algorithm}"
    with make_session(kind) as s:
        r = s.get(url, auth=tether.DigestAuth("alice", "pw"))
        assert r.status == 200 and r.json() == {"authenticated": True, "user": "alice"}
        assert s.get(url, auth=tether.DigestAuth("alice", "wrong")).status == 401
    assert "pw" not in repr(tether.DigestAuth("alice", "pw")).replace("password", "")


def test_digest_answers_preemptively_after_the_first_challenge(
    kind: str, test_server: TestServer
) -> None:
    nonce = "abc"

    def protected(ex: Exchange) -> None:
        sent = ex.header("authorization") or ""
        if f'nonce="{nonce}"' in sent and 'username="alice"' in sent:
            ex.respond(200, [], b"in")
        else:
            ex.respond(
                401, [("WWW-Authenticate", f'Digest realm="r", nonce="{nonce}", qop="auth"')]
            )

    test_server.route("/p", protected)
    auth = tether.DigestAuth("alice", "pw")
    with make_session(kind, auth=auth) as s:
        assert s.get(test_server.url + "/p").content == b"in"
        assert s.get(test_server.url + "/p").content == b"in"
    statuses = [ex.header("authorization") is not None for ex in test_server.exchanges]
    assert statuses == [False, True, True]  # one challenge, then answered at once (nc=2)
    assert "nc=00000002" in (test_server.exchanges[-1].header("authorization") or "")


def token_server(server: TestServer, valid: list[str]) -> None:
    def handler(ex: Exchange) -> None:
        if ex.header("authorization") == f"Bearer {valid[0]}":
            ex.respond(200, [], b"ok")
        else:
            ex.respond(401, [("WWW-Authenticate", "Bearer")], b"expired")

    server.route("/api", handler)


def test_token_refreshed_once_on_401(kind: str, test_server: TestServer) -> None:
    issued = iter(["t1", "t2", "t3"])
    fetched: list[str] = []

    def fetch() -> str:
        fetched.append(next(issued))
        return fetched[-1]

    valid = ["t2"]  # the first token the client gets has already expired
    token_server(test_server, valid)
    with make_session(kind, auth=tether.TokenAuth(fetch)) as s:
        assert s.get(test_server.url + "/api").content == b"ok"
        assert s.get(test_server.url + "/api").content == b"ok"  # cached: no fetch
        assert fetched == ["t1", "t2"]
        valid[0] = "nope"  # the server revokes everything: one refresh, then the 401 stays
        assert s.get(test_server.url + "/api").status == 401
        assert fetched == ["t1", "t2", "t3"]


def test_auth_retry_with_one_shot_body_is_a_clear_error(kind: str, test_server: TestServer) -> None:
    token_server(test_server, ["never"])
    with make_session(kind, auth=tether.TokenAuth(lambda: "old")) as s:
        with pytest.raises(tether.BodyNotReplayable, match="401") as info:
            s.post(test_server.url + "/api", data=iter([b"once"]))
        assert info.value.response is not None and info.value.response.status == 401
        r = s.post(test_server.url + "/api", data=b"bytes can be sent twice")
        assert r.status == 401 and test_server.exchanges[-1].body == b"bytes can be sent twice"


def test_callable_auth(kind: str, httpbin_server: Httpbin) -> None:
    def sign(request: tether.Request) -> tether.Request:
        request.headers["Authorization"] = "Bearer from-callable"
        return request

    with make_session(kind) as s:
        r = s.get(httpbin_server.url + "/bearer", auth=sign)
        assert r.json() == {"authenticated": True, "token": "from-callable"}


def test_custom_auth_flow(kind: str, test_server: TestServer) -> None:
    class Signed(tether.Auth):
        def auth_flow(self, request: tether.Request):  # type: ignore[no-untyped-def]
            response = yield request
            if response.status == 401:
                request.headers["X-Signature"] = "retry"
                yield request

    def handler(ex: Exchange) -> None:
        ex.respond(200 if ex.header("x-signature") else 401, [], b"")

    test_server.route("/signed", handler)
    with make_session(kind) as s:
        assert s.get(test_server.url + "/signed", auth=Signed()).status == 200
    assert last_header(test_server, "x-signature") == "retry"


def test_bad_auth_argument_is_a_type_error(kind: str) -> None:
    with pytest.raises(TypeError, match="auth="):
        make_session(kind, auth="user:pass")
    with pytest.raises(TypeError, match="pair"):
        make_session(kind, auth=("only-user",))


def test_digest_challenge_never_answered_to_another_origin(
    kind: str, test_server: TestServer
) -> None:
    def protected(ex: Exchange) -> None:
        if "Digest" in (ex.header("authorization") or ""):
            ex.respond(200, [], b"in")
        else:
            ex.respond(401, [("WWW-Authenticate", 'Digest realm="r", nonce="n1", qop="auth"')])

    test_server.route("/p", protected)
    with TestServer() as other, make_session(kind, auth=tether.DigestAuth("alice", "pw")) as s:
        assert s.get(test_server.url + "/p").content == b"in"
        s.get(other.url + "/echo")
        assert other.exchanges[0].header("authorization") is None
