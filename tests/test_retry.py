"""User-level retries: the Retry policy's verdicts, and the sessions' loops against a server
that answers 503 with Retry-After (attempts counted on the server's side)."""

from __future__ import annotations

import email.utils
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aio_helpers import run

import tether
from tether.client import retry as retry_module
from tether.client.retry import Attempts, parse_retry_after
from tether.testing import Exchange, TestServer

NOW = 1_800_000_000.0


def _req(method: str = "GET", body: Any = None) -> tether.Request:
    return tether.Request(method, "http://127.0.0.1:1/x", body=body)


# -- the policy, pure -------------------------------------------------------------------------


def test_a_503_with_retry_after_seconds_is_retried_after_that_long() -> None:
    verdict = tether.Retry().verdict(_req(), 503, Attempts(), "7", NOW)
    assert verdict.retry and verdict.sleep == 7.0
    assert verdict.attempts == Attempts(total=1, status=1)


def test_retry_after_as_an_http_date() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    verdict = tether.Retry().verdict(_req(), 429, Attempts(), date, NOW)
    assert verdict.retry and verdict.sleep == pytest.approx(30.0)
    past = email.utils.formatdate(NOW - 30, usegmt=True)
    assert tether.Retry().verdict(_req(), 429, Attempts(), past, NOW).sleep == 0.0


@pytest.mark.parametrize("value", ["soon", "-3", "1.5", ""])
def test_a_retry_after_that_is_neither_form_falls_back_to_the_backoff(value: str) -> None:
    assert parse_retry_after(value, NOW) is None
    policy = tether.Retry(backoff_factor=0.5)
    verdict = policy.verdict(_req(), 503, Attempts(), value, NOW)
    assert verdict.retry and verdict.sleep == 0.5


def test_retry_after_can_be_ignored_and_a_very_long_one_is_not_waited_for() -> None:
    assert tether.Retry(respect_retry_after=False).verdict(_req(), 503, Attempts(), "9").sleep == 0
    assert not tether.Retry(retry_after_max=60).verdict(_req(), 503, Attempts(), "3600").retry


def test_backoff_doubles_up_to_its_maximum() -> None:
    policy = tether.Retry(total=10, backoff_factor=1.0, backoff_max=5.0)
    attempts, sleeps = Attempts(), []
    for _ in range(5):
        verdict = policy.verdict(_req(), 502, attempts)
        sleeps.append(verdict.sleep)
        attempts = verdict.attempts
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_statuses_outside_the_forcelist_are_not_retried() -> None:
    for status in (200, 404, 500):
        assert not tether.Retry().verdict(_req(), status, Attempts()).retry
    assert tether.Retry(status_forcelist={500}).verdict(_req(), 500, Attempts()).retry


def test_non_idempotent_methods_are_retried_only_when_nothing_reached_the_server() -> None:
    policy = tether.Retry()
    assert not policy.verdict(_req("POST"), 503, Attempts()).retry
    assert not policy.verdict(_req("POST"), "read", Attempts()).retry
    assert policy.verdict(_req("POST"), "connect", Attempts()).retry
    assert tether.Retry(allowed_methods=None).verdict(_req("POST"), 503, Attempts()).retry


def test_a_one_shot_body_is_never_sent_twice() -> None:
    policy = tether.Retry(allowed_methods=None)
    assert not policy.verdict(_req("PUT", iter([b"x"])), 503, Attempts()).retry
    assert policy.verdict(_req("PUT", b"x"), 503, Attempts()).retry


def test_files_from_paths_can_be_sent_again_but_file_objects_cannot(tmp_path: Any) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"data")
    policy = tether.Retry(allowed_methods=None)
    from tether.client.build import build_request

    session_headers = tether.Headers()
    by_path = build_request("POST", "http://h/", session_headers, files={"f": path})
    assert policy.verdict(by_path, 503, Attempts()).retry
    with path.open("rb") as opened:
        by_file = build_request("POST", "http://h/", session_headers, files={"f": opened})
        assert not policy.verdict(by_file, 503, Attempts()).retry


def test_total_and_per_kind_limits() -> None:
    assert not tether.Retry(total=2).verdict(_req(), 503, Attempts(total=2, status=2)).retry
    capped = tether.Retry(total=None, status=1, connect=5)
    assert not capped.verdict(_req(), 503, Attempts(total=1, status=1)).retry
    assert capped.verdict(_req(), "connect", Attempts(total=1, status=1)).retry
    assert not tether.Retry(total=0).verdict(_req(), "connect", Attempts()).retry


def test_outcome_of_errors() -> None:
    assert tether.Retry.outcome_of(tether.ConnectError("x")) == "connect"
    assert tether.Retry.outcome_of(tether.ConnectTimeout("x")) == "connect"
    assert tether.Retry.outcome_of(tether.ReadTimeout("x")) == "read"
    assert tether.Retry.outcome_of(tether.TLSError("bad certificate")) is None
    assert tether.Retry.outcome_of(tether.PoolTimeout("x")) is None


@pytest.mark.parametrize("bad", [-1, 2.5, "3", True])
def test_retries_must_be_a_policy_or_a_count(bad: Any) -> None:
    with pytest.raises(TypeError, match="retries must be"):
        tether.Session(retries=bad)


def test_retry_takes_lists_and_lower_case_methods_and_refuses_nonsense() -> None:
    policy = tether.Retry(status_forcelist=[500], allowed_methods=["post"])
    assert policy.verdict(_req("POST"), 500, Attempts()).retry
    with pytest.raises(ValueError, match="negative"):
        tether.Retry(total=-1)
    with pytest.raises(TypeError, match="a count or None"):
        tether.Retry(connect=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        tether.Retry(backoff_factor=-1)


# -- the loops, against a server --------------------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits the loops ask for instead of sleeping them."""
    recorded: list[float] = []

    async def asleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(retry_module, "sleep", recorded.append)
    monkeypatch.setattr(retry_module, "asleep", asleep)
    return recorded


@pytest.fixture
def flaky(test_server: TestServer) -> Iterator[dict[str, int]]:
    """``/flaky?fail=n&status=s&after=v``: ``s`` (503) with ``Retry-After: v`` for the first
    ``n`` requests, then 200; ``attempts`` counts what the server received."""
    seen = {"attempts": 0}

    def handler(ex: Exchange) -> None:
        seen["attempts"] += 1
        args = {k: v[0] for k, v in ex.args.items()}
        if seen["attempts"] <= int(args.get("fail", "0")):
            headers = [("Retry-After", args["after"])] if "after" in args else []
            ex.respond(int(args.get("status", "503")), headers, b"busy\n")
        else:
            ex.respond(200, [("Content-Type", "text/plain")], f"ok {seen['attempts']}".encode())

    test_server.route("/flaky", handler)
    yield seen


def test_off_by_default(test_server: TestServer, flaky: dict[str, int]) -> None:
    with tether.Session() as s:
        assert s.get(f"{test_server.url}/flaky?fail=1").status == 503
        assert s.stats().user_retries == 0
    assert flaky["attempts"] == 1


def test_session_retries_503_honouring_retry_after(
    test_server: TestServer, flaky: dict[str, int], sleeps: list[float]
) -> None:
    with tether.Session(retries=tether.Retry(total=3)) as s:
        r = s.get(f"{test_server.url}/flaky?fail=2&after=1")
        assert r.status == 200 and r.text == "ok 3"
        assert s.stats().user_retries == 2
        assert s.stats().connections_opened == 1  # retries ride the pooled connection
    assert flaky["attempts"] == 3
    assert sleeps == [1.0, 1.0]


def test_when_retries_run_out_the_last_response_is_returned(
    test_server: TestServer, flaky: dict[str, int], sleeps: list[float]
) -> None:
    with tether.Session(retries=2) as s:
        r = s.get(f"{test_server.url}/flaky?fail=99&status=429")
    assert r.status == 429 and not r.ok
    assert flaky["attempts"] == 3
    assert len(sleeps) == 2


def test_a_put_with_files_from_a_path_is_sent_whole_again(
    test_server: TestServer, flaky: dict[str, int], sleeps: list[float], tmp_path: Any
) -> None:
    path = tmp_path / "up.bin"
    path.write_bytes(b"z" * 100_000)
    with tether.Session(retries=2) as s:
        r = s.put(f"{test_server.url}/flaky?fail=1", files={"f": path})
    assert r.status == 200 and flaky["attempts"] == 2
    first, second = list(test_server.exchanges)[-2:]
    assert first.body == second.body and len(second.body) > 100_000


def test_post_is_not_retried_after_reaching_the_server(
    test_server: TestServer, flaky: dict[str, int], sleeps: list[float]
) -> None:
    with tether.Session(retries=5) as s:
        assert s.post(f"{test_server.url}/flaky?fail=1", data=b"order").status == 503
    assert flaky["attempts"] == 1 and sleeps == []


def test_a_streamed_503_is_released_before_the_retry(
    test_server: TestServer, flaky: dict[str, int], sleeps: list[float]
) -> None:
    with tether.Session(retries=1) as s:
        with s.get(f"{test_server.url}/flaky?fail=1", stream=True) as r:
            assert r.read() == b"ok 2"
        stats = s.stats()
    assert stats.connections_opened == 1 and stats.in_use == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connect_failures_are_retried_even_for_post(sleeps: list[float]) -> None:
    policy = tether.Retry(total=None, connect=2, backoff_factor=0.25)
    with tether.Session(retries=policy) as s:
        with pytest.raises(tether.ConnectError):
            s.post(f"http://127.0.0.1:{_closed_port()}/", data=b"x")
        assert s.stats().user_retries == 2
    assert sleeps == [0.25, 0.5]


def test_async_session_retries_the_same_way(
    test_server: TestServer, flaky: dict[str, int], sleeps: list[float]
) -> None:
    async def main() -> tuple[int, str, int]:
        async with tether.AsyncSession(retries=tether.Retry(total=3)) as s:
            r = await s.get(f"{test_server.url}/flaky?fail=2&after=2")
            return r.status, r.text, s.stats().user_retries

    assert run(main()) == (200, "ok 3", 2)
    assert flaky["attempts"] == 3
    assert sleeps == [2.0, 2.0]


def test_async_post_is_not_retried(
    test_server: TestServer, flaky: dict[str, int], sleeps: list[float]
) -> None:
    async def main() -> int:
        async with tether.AsyncSession(retries=3) as s:
            return (await s.post(f"{test_server.url}/flaky?fail=1", data=b"x")).status

    assert run(main()) == 503
    assert flaky["attempts"] == 1 and sleeps == []
