"""Session defaults for both sessions: base_url, params, headers, timeout, event hooks and
what trust_env takes from the environment (proxies refused, .netrc)."""

from __future__ import annotations

import asyncio
import gc
import socket
from pathlib import Path

import pytest
from helpers import fd_count
from servers.httpbin_server import Httpbin
from session_kinds import KINDS, AsyncFacade, last_header, make_session

import tether
from tether.testing import TestServer

PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD", "NETRC"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests here set what they read; nothing from the machine's environment leaks in."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize("kind", KINDS)
def test_base_url(kind: str, test_server: TestServer) -> None:
    with TestServer() as other, make_session(kind, base_url=test_server.url + "/api/") as s:
        assert s.get("/users").json()["path"] == "/api/users"
        assert s.get("items?x=1").json()["path"] == "/api/items"
        assert s.get(other.url + "/abs").json()["path"] == "/abs"  # absolute: base ignored
    with make_session(kind, base_url=test_server.url + "/v1") as s:
        assert s.get("/ping").json()["path"] == "/v1/ping"
    with make_session(kind) as s, pytest.raises(tether.InvalidURL):
        s.get("/relative-without-base")


@pytest.mark.parametrize("kind", KINDS)
def test_session_params_merge_with_the_calls(kind: str, httpbin_server: Httpbin) -> None:
    with make_session(kind, params={"api_key": "k", "lang": "en"}) as s:
        assert s.get(httpbin_server.url + "/get").json()["args"] == {"api_key": "k", "lang": "en"}
        r = s.get(httpbin_server.url + "/get", params={"lang": "de", "q": "x"})
        assert r.json()["args"] == {"api_key": "k", "lang": "de", "q": "x"}


@pytest.mark.parametrize("kind", KINDS)
def test_headers_none_removes_a_default(kind: str, test_server: TestServer) -> None:
    with make_session(kind, headers={"User-Agent": None, "X-Team": "a"}) as s:
        s.get(test_server.url + "/echo")
        assert last_header(test_server, "user-agent") is None
        assert last_header(test_server, "x-team") == "a"
        s.get(test_server.url + "/echo", headers={"X-Team": None, "Accept": None})
        assert last_header(test_server, "x-team") is None
        assert last_header(test_server, "accept") is None


@pytest.mark.parametrize("kind", KINDS)
def test_session_timeout(kind: str, test_server: TestServer) -> None:
    with make_session(kind, timeout=0.2) as s, pytest.raises(tether.ReadTimeout):
        s.get(test_server.url + "/slow/5")


@pytest.mark.parametrize("kind", KINDS)
def test_event_hooks_see_every_hop(kind: str, test_server: TestServer) -> None:
    seen: list[str] = []
    hooks = {
        "request": [lambda req: seen.append(f"> {req.method} {req.url.target}")],
        "response": [lambda resp: seen.append(f"< {resp.status}")],
    }
    with make_session(kind, event_hooks=hooks) as s:
        s.get(test_server.url + "/redirect/1")
    assert seen == ["> GET /redirect/1", "< 302", "> GET /redirect/0", "< 200"]


@pytest.mark.parametrize("kind", KINDS)
def test_event_hook_error_propagates_and_frees_the_connection(
    kind: str, test_server: TestServer
) -> None:
    def strict(resp: tether.Response) -> None:
        resp.raise_for_status()

    with make_session(kind, event_hooks={"response": [strict]}) as s:
        with pytest.raises(tether.HTTPStatusError):
            s.get(test_server.url + "/status/500")
        assert s.get(test_server.url + "/echo").status == 200
        assert s.stats().reuses == 1 and test_server.connections_accepted == 1


def test_async_event_hooks_may_be_coroutines(test_server: TestServer) -> None:
    seen: list[int] = []

    async def log(resp: tether.Response) -> None:
        await asyncio.sleep(0)
        seen.append(resp.status)

    with AsyncFacade(event_hooks={"response": [log]}, trust_env=False) as s:
        s.get(test_server.url + "/redirect/2")
    assert seen == [302, 302, 200]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_session_arguments(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown event hook 'resp'"):
        make_session(kind, event_hooks={"resp": [print]})
    with pytest.raises(TypeError, match="not callable"):
        make_session(kind, event_hooks={"response": ["print"]})
    with pytest.raises(ValueError, match="negative"):
        make_session(kind, max_redirects=-1)


def test_one_shot_get_follows_redirects(test_server: TestServer) -> None:
    r = tether.get(test_server.url + "/redirect/2", trust_env=False)
    assert r.status == 200 and len(r.history) == 2


# -- trust_env ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_proxy_in_environment_is_used(
    kind: str, variable: str, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The request goes to the proxy the variable names (never silently direct), only with
    # trust_env; the proxy's credentials never appear in what the user sees.
    proxy = TestServer().start()
    try:
        monkeypatch.setenv(variable, f"http://user:proxypass@127.0.0.1:{proxy.port}")
        with make_session(kind, trust_env=True) as s:
            r = s.get(test_server.url + "/echo")
            assert "proxypass" not in repr(r.connection_info) and "proxypass" not in repr(s)
        assert proxy.connections_accepted == 1
        assert test_server.connections_accepted == 0
        with make_session(kind, trust_env=False) as s:
            assert s.get(test_server.url + "/echo").status == 200
        assert test_server.connections_accepted == 1 and proxy.connections_accepted == 1
    finally:
        proxy.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_proxy_for_another_scheme_or_no_proxy_host(
    kind: str, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    with make_session(kind, trust_env=True) as s:
        assert s.get(test_server.url + "/echo").status == 200  # http URL: no proxy applies
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with make_session(kind, trust_env=True) as s:
        assert s.get(test_server.url + "/echo").status == 200


def test_http_proxy_ignored_under_cgi(
    test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under CGI a request's "Proxy:" header arrives as HTTP_PROXY (httpoxy): not a setting.
    monkeypatch.setenv("HTTP_PROXY", "http://attacker:3128")
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    with tether.Session() as s:
        assert s.get(test_server.url + "/echo").status == 200


@pytest.mark.parametrize("kind", KINDS)
def test_netrc_only_with_trust_env(
    kind: str, httpbin_server: Httpbin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password fromnetrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    url = httpbin_server.url + "/basic-auth/alice/fromnetrc"
    with make_session(kind, trust_env=True) as s:
        assert s.get(url).status == 200
        assert s.get(url, auth=("alice", "other")).status == 401  # explicit auth wins
    with make_session(kind, trust_env=False) as s:
        assert s.get(url).status == 401


def test_malformed_netrc_names_the_file_not_its_content(
    test_server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password sekrit\nbogus sekrit2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with tether.Session() as s, pytest.raises(ValueError, match="cannot parse netrc") as info:
        s.get(test_server.url + "/echo")
    assert str(netrc) in str(info.value) and "sekrit" not in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_redirects_cookies_and_auth_leave_no_descriptors(
    kind: str, test_server: TestServer
) -> None:
    test_server.route(
        "/login",
        lambda ex: ex.respond(302, [("Location", "/redirect/2"), ("Set-Cookie", "sid=1")]),
    )
    with make_session(kind) as warm:
        warm.get(test_server.url + "/echo")  # the loop's and the resolver's own descriptors
    gc.collect()
    before = fd_count()
    for _ in range(3):
        with make_session(kind, auth=("u", "p")) as s:
            assert s.get(test_server.url + "/login").status == 200
            with pytest.raises(tether.TooManyRedirects):
                s.get(test_server.url + "/redirect/40")  # more than the default 30
    gc.collect()
    assert fd_count() == before


@pytest.mark.parametrize("kind", KINDS)
def test_proxy_rule_checked_on_each_redirect_hop(
    kind: str, test_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # http is not proxied here, https is: a redirect to https must not go direct.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket closes
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    test_server.route(
        "/up", lambda ex: ex.respond(301, [("Location", f"https://127.0.0.1:{ex.server.port}/")])
    )
    s = make_session(kind, trust_env=True)
    with s, pytest.raises(tether.ConnectError, match=f"proxy http://127.0.0.1:{port}"):
        s.get(test_server.url + "/up")
    assert test_server.connections_accepted == 1  # the http hop only


@pytest.mark.parametrize("kind", KINDS)
def test_session_timeout_can_be_changed(kind: str, test_server: TestServer) -> None:
    with make_session(kind) as s:
        s.timeout = 0.2
        with pytest.raises(tether.ReadTimeout):
            s.get(test_server.url + "/slow/5")
