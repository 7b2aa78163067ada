"""Session(transport=...), mounts by URL prefix, and MockTransport: code tested without a
network, as httpx users do."""

from __future__ import annotations

from typing import Any

import pytest
from aio_helpers import run

import tether
from tether.client.transports import Mounts
from tether.testing import TestServer


def _echo(request: tether.Request) -> tether.Response:
    body = request.body if isinstance(request.body, bytes) else b"".join(request.body or [])
    return tether.build_response(
        201,
        {"X-Seen": request.method},
        json={"url": str(request.url), "body": body.decode(), "ua": request.headers["User-Agent"]},
    )


def test_mock_transport_answers_without_a_network() -> None:
    with tether.Session(transport=tether.MockTransport(_echo)) as s:
        r = s.post("https://api.example/users?page=2", json={"name": "caf\u00e9"})
        assert s.stats().connections_opened == 0
    assert r.status == 201 and r.reason == "Created" and r.ok
    assert r.headers["x-seen"] == "POST"
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["url"] == "https://api.example/users?page=2"
    assert doc["body"] == '{"name":"caf\u00e9"}'
    assert doc["ua"].startswith("tether/")
    assert r.request.method == "POST" and str(r.url) == "https://api.example/users?page=2"
    assert r.connection_info.protocol == "mock"


def test_a_handlers_error_reaches_the_caller_as_a_real_one_would() -> None:
    def down(request: tether.Request) -> tether.Response:
        raise tether.ConnectError("simulated outage", request=request)

    session = tether.Session(transport=tether.MockTransport(down))
    with session as s, pytest.raises(tether.ConnectError, match="simulated outage"):
        s.get("https://api.example/")


def test_a_handler_that_returns_something_else_is_a_clear_error() -> None:
    session = tether.Session(transport=tether.MockTransport(lambda r: "ok"))  # type: ignore[arg-type,return-value]
    with session as s, pytest.raises(TypeError, match=r"tether\.Response"):
        s.get("https://api.example/")


def test_retries_work_through_a_mock_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.client import retry

    monkeypatch.setattr(retry, "sleep", lambda seconds: None)
    statuses = iter([503, 503, 200])
    seen: list[str] = []

    def handler(request: tether.Request) -> tether.Response:
        seen.append(request.method)
        return tether.build_response(next(statuses), text="x")

    with tether.Session(transport=tether.MockTransport(handler), retries=3) as s:
        assert s.get("https://api.example/").status == 200
        assert s.stats().user_retries == 2
    assert seen == ["GET"] * 3


def test_mounts_send_each_prefix_to_its_transport(test_server: TestServer) -> None:
    api = tether.MockTransport(lambda r: tether.build_response(200, text="api"))
    v2 = tether.MockTransport(lambda r: tether.build_response(200, text="v2"))
    mounts = {"https://api.example": api, "https://api.example/v2/": v2}
    with tether.Session(mounts=mounts) as s:
        assert s.get("https://api.example/users").text == "api"
        assert s.get("https://api.example/v2/users").text == "v2"  # the longest prefix
        assert s.get("https://API.example:443/x").text == "api"
        # anything else still goes to the pools, over a real socket
        assert s.get(f"{test_server.url}/echo").json()["path"] == "/echo"
        assert s.stats().connections_opened == 1


def test_a_prefix_matches_only_at_a_boundary() -> None:
    router: Mounts[str] = Mounts("default", {"https://api.example": "api"})
    assert router.for_url(tether.URL("https://api.example/")) == "api"
    assert router.for_url(tether.URL("https://api.example:8443/")) == "api"
    assert router.for_url(tether.URL("https://api.example.evil.test/")) == "default"
    assert router.for_url(tether.URL("http://api.example/")) == "default"
    with pytest.raises(ValueError, match="URL prefix"):
        Mounts("default", {"api.example": "api"})


class _Closing(tether.MockTransport):
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_closing_the_session_closes_its_transports_once() -> None:
    t = _Closing(_echo)
    with tether.Session(transport=t, mounts={"https://a.example": t}):
        pass
    assert t.closed == 1


def test_build_response_validates_its_input() -> None:
    with pytest.raises(ValueError, match="status"):
        tether.build_response(42)
    with pytest.raises(TypeError, match="only one"):
        tether.build_response(200, content=b"x", text="y")
    with pytest.raises(tether.InvalidHeader):
        tether.build_response(200, {"X-Bad": "a\r\nb"})
    r = tether.build_response(404, {"Content-Type": "text/html"}, b"<p>no</p>")
    assert not r.ok and r.headers["content-length"] == "9" and r.text == "<p>no</p>"


def test_async_mock_transport_with_plain_and_async_handlers() -> None:
    async def async_handler(request: tether.Request) -> tether.Response:
        return tether.build_response(200, json={"path": request.url.target})

    async def main() -> list[Any]:
        results = []
        for handler in (async_handler, _echo):
            transport = tether.AsyncMockTransport(handler)
            async with tether.AsyncSession(transport=transport) as s:
                r = await s.get("https://api.example/a", stream=True)
                assert isinstance(r, tether.AsyncResponse)
                results.append((r.status, await r.aread()))
        return results

    (s1, b1), (s2, _) = run(main())
    assert (s1, b1) == (200, b'{"path": "/a"}') and s2 == 201


def test_async_mounts(test_server: TestServer) -> None:
    async def main() -> tuple[str, str]:
        mock = tether.AsyncMockTransport(lambda r: tether.build_response(200, text="mock"))
        async with tether.AsyncSession(mounts={"https://api.example": mock}) as s:
            a = (await s.get("https://api.example/")).text
            b = (await s.get(f"{test_server.url}/echo")).json()["path"]
            return a, b

    assert run(main()) == ("mock", "/echo")
