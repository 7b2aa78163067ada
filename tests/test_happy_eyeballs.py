"""Happy eyeballs (RFC 8305): a host with a black-holed address still connects, by its next one.

The dial plan's rules are checked directly; then through Session and AsyncSession against real
sockets: a black-holed first address (``tether.testing.BlackHole``: a full accept queue drops
SYNs), IPv6 and IPv4 loopback for one name, names resolving to several addresses through the
resolver hook, one deadline for the whole dial, typed resolution errors, and no descriptor
left open by the attempts that lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from aio_helpers import HAVE_UVLOOP, LOOPS, run
from helpers import fd_count

import tether
import tether.io.resolver as resolver_module
from tether.exceptions import ConnectError, ConnectTimeout, ResolveError, ResolveTimeout
from tether.io.resolver import MAX_RESOLVER_THREADS, resolve_within
from tether.lifecycle.dialplan import ATTEMPT_DELAY, DialPlan, Target, interleave, targets_for
from tether.testing import BlackHole, TestServer


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


def hosts(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A resolver hook answering from ``table`` (a name it lacks does not resolve)."""

    def resolver(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolver


def get(mode: str, url: str, **session: Any) -> tether.ConnectionInfo:
    """GET ``url`` with a new Session (``mode`` "sync") or AsyncSession (on the loop ``mode``
    names); closes it."""
    if mode == "sync":
        with tether.Session(**session) as s:
            r = s.get(url)
            assert r.status == 200
            return r.connection_info

    async def main() -> tether.ConnectionInfo:
        async with tether.AsyncSession(**session) as s:
            r = await s.get(url)
            assert r.status == 200
            return r.connection_info

    return run(main(), mode)


def warm_up(mode: str) -> None:
    """Start what lives on after a first request (the idle watcher's epoll, uvloop's pipes),
    so that a descriptor count taken next sees only what the dial leaves behind."""
    with TestServer() as srv:
        get(mode, f"{srv.url}/")
        assert srv.wait_open_connections(0)


@contextlib.contextmanager
def refusing(port: int, *ips: str) -> Iterator[None]:
    """While open, ``port`` on each of ``ips`` is bound and not listening: refused at once
    (and no other process's server can be there)."""
    with contextlib.ExitStack() as stack:
        for ip in ips:
            sock = stack.enter_context(
                socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
            )
            sock.bind((ip, port))
        yield


def attempts(info: tether.ConnectionInfo) -> list[tuple[str, str]]:
    return [(a.address[0], a.outcome) for a in info.dial_attempts]


MODES = [
    "sync",
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="no uvloop")),
]


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


# -- the plan -------------------------------------------------------------------------------


def test_addresses_alternate_families_starting_with_the_first() -> None:
    mixed = targets_for("h", ["::1", "::2", "::3", "10.0.0.1", "10.0.0.2", "::1"], 80)
    assert [t.ip for t in mixed] == ["::1", "10.0.0.1", "::2", "10.0.0.2", "::3"]
    assert [t.ip for t in interleave(targets_for("h", ["10.0.0.1", "::1"], 80))] == [
        "10.0.0.1",
        "::1",
    ]


def test_next_attempt_starts_after_the_delay_or_at_once_when_one_fails() -> None:
    a, b, c = targets_for("h", ["::1", "10.0.0.1", "::2"], 80)
    plan = DialPlan([a, b, c], deadline=None, began=0.0)
    assert plan.due(0.0) == a
    plan.started(a, 0.0)
    assert plan.due(ATTEMPT_DELAY / 2) is None
    assert plan.wait(ATTEMPT_DELAY / 2) == pytest.approx(ATTEMPT_DELAY / 2)
    assert plan.due(ATTEMPT_DELAY) == b
    plan.started(b, ATTEMPT_DELAY)
    plan.failed(b, ConnectionRefusedError(111, "Connection refused"))
    assert plan.due(ATTEMPT_DELAY + 0.01) == c  # a failure starts the next at once
    plan.started(c, ATTEMPT_DELAY + 0.01)
    assert plan.won(c) == [a]  # the one still in flight is closed
    assert [x.outcome for x in plan.record()] == ["abandoned", "connection refused", "connected"]
    assert plan.failure(1.0, "http://h:80") is None


def test_the_deadline_ends_the_dial_and_names_every_address() -> None:
    a, b, c = targets_for("h", ["192.0.2.1", "192.0.2.2", "192.0.2.3"], 80)
    plan = DialPlan([a, b, c], deadline=0.4, began=0.0)
    plan.started(a, 0.0)
    plan.started(b, 0.25)
    assert plan.wait(0.3) == pytest.approx(0.1)  # the deadline comes before the next attempt
    assert plan.due(0.4) is None
    error = plan.failure(0.4, "http://h:80")
    assert isinstance(error, ConnectTimeout)
    text = str(error)
    assert "192.0.2.1:80 timed out" in text and "192.0.2.2:80 timed out" in text
    assert "not tried: 192.0.2.3:80" in text


def test_every_address_failing_is_a_connect_error_naming_each() -> None:
    a, b = targets_for("h", ["::1", "127.0.0.1"], 8)
    plan = DialPlan([a, b], deadline=1.0, began=0.0)
    for target in (a, b):
        plan.started(target, 0.0)
        plan.failed(target, ConnectionRefusedError(111, "Connection refused"))
    error = plan.failure(5.0, "http://h:8")  # past the deadline too: refused, not a timeout
    assert type(error) is ConnectError
    assert str(error) == (
        "cannot connect to http://h:8: [::1]:8 connection refused; 127.0.0.1:8 connection refused"
    )


def test_a_resolver_answer_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(ResolveError, match=r"'example.test'.*'not-an-ip'"):
        targets_for("example.test", ["127.0.0.1", "not-an-ip"], 80)
    with pytest.raises(ResolveError, match="no addresses"):
        targets_for("example.test", [], 80)
    assert targets_for("h", ["fe80::1%1"], 80) == [Target("fe80::1%1", 80, 6)]


# -- real dials -----------------------------------------------------------------------------


@needs_ipv6
@pytest.mark.parametrize("mode", MODES)
def test_black_holed_first_address_falls_back_to_the_next(mode: str, server: TestServer) -> None:
    warm_up(mode)
    with BlackHole("::1", server.port) as hole:
        assert server.wait_open_connections(0)  # count no server-side socket being closed
        baseline = fd_count()
        resolver = hosts({"dual.test": ["::1", "127.0.0.1"]})
        info = get(mode, f"http://dual.test:{server.port}/", resolver=resolver)
        assert server.wait_open_connections(0)
        assert fd_count() == baseline  # the loser was closed, not left connecting
    assert attempts(info) == [("::1", "abandoned"), ("127.0.0.1", "connected")]
    assert info.dial_attempts[1].started >= ATTEMPT_DELAY  # raced, not tried after a timeout
    assert info.remote_address == ("127.0.0.1", server.port)
    assert info.connect_time >= ATTEMPT_DELAY
    assert server.connections_accepted == 1
    assert hole.port == server.port


@needs_ipv6
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("listening", ["127.0.0.1", "::1"])
def test_localhost_on_both_loopbacks_reaches_the_one_listening(mode: str, listening: str) -> None:
    warm_up(mode)
    baseline = fd_count()
    other = "::1" if listening == "127.0.0.1" else "127.0.0.1"
    with TestServer(host=listening) as srv, refusing(srv.port, other):
        resolver = hosts({"localhost": ["::1", "127.0.0.1"]})
        info = get(mode, f"http://localhost:{srv.port}/", resolver=resolver)
        assert srv.wait_open_connections(0)
    if listening == "::1":
        assert attempts(info) == [("::1", "connected")]
    else:
        assert attempts(info) == [("::1", "connection refused"), ("127.0.0.1", "connected")]
    assert info.remote_address[0] == listening
    assert fd_count() == baseline


@pytest.mark.parametrize("mode", MODES)
def test_the_system_resolver_is_the_default(mode: str, server: TestServer) -> None:
    info = get(mode, f"http://localhost:{server.port}/")
    assert info.dial_attempts[-1].outcome == "connected"
    assert info.dial_attempts[-1].address == info.remote_address
    assert info.dns_time >= 0.0
    literal = get(mode, f"{server.url}/", resolver=hosts({}))  # literals skip the resolver
    assert attempts(literal) == [("127.0.0.1", "connected")]


@pytest.mark.parametrize("mode", MODES)
def test_a_name_with_several_addresses_tries_them_in_order(mode: str, server: TestServer) -> None:
    with refusing(server.port, "127.0.0.3", "127.0.0.2"):
        resolver = hosts({"many.test": ["127.0.0.3", "127.0.0.2", "127.0.0.1"]})
        info = get(mode, f"http://many.test:{server.port}/", resolver=resolver)
    assert attempts(info) == [
        ("127.0.0.3", "connection refused"),
        ("127.0.0.2", "connection refused"),
        ("127.0.0.1", "connected"),
    ]


def dial_error(mode: str, url: str, **session: Any) -> BaseException:
    """The error a GET of ``url`` fails with (a typed transport error, nothing else)."""
    with pytest.raises(tether.TransportError) as caught:
        get(mode, url, **session)
    return caught.value


@pytest.mark.parametrize("mode", MODES)
def test_one_deadline_covers_every_attempt(mode: str) -> None:
    warm_up(mode)
    baseline = fd_count()
    with BlackHole("127.0.0.1") as first, BlackHole("127.0.0.2", first.port):
        resolver = hosts({"holes.test": ["127.0.0.1", "127.0.0.2"]})
        error = dial_error(
            mode, f"http://holes.test:{first.port}/", resolver=resolver, timeout=ATTEMPT_DELAY * 3
        )
    assert type(error) is ConnectTimeout
    assert f"127.0.0.1:{first.port} timed out; 127.0.0.2:{first.port} timed out" in str(error)
    assert fd_count() == baseline


@pytest.mark.parametrize("mode", MODES)
def test_every_address_refused_names_each(mode: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        with refusing(port, "127.0.0.2"):
            resolver = hosts({"none.test": ["127.0.0.1", "127.0.0.2"]})
            error = dial_error(mode, f"http://none.test:{port}/", resolver=resolver)
    assert type(error) is ConnectError
    assert f"127.0.0.1:{port} connection refused; 127.0.0.2:{port} connection refused" in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_a_name_that_does_not_resolve_is_a_resolve_error(mode: str) -> None:
    error = dial_error(mode, "http://nowhere.test:9/", resolver=hosts({}))
    assert type(error) is ResolveError
    assert "'nowhere.test'" in str(error) and "not known" in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_resolution_is_bounded_by_the_connect_timeout(mode: str) -> None:
    release = threading.Event()

    def stuck(host: str, port: int) -> list[str]:
        release.wait(10)
        return ["127.0.0.1"]

    url = "http://slow.test:9/"
    try:
        if mode == "sync":
            with (
                tether.Session(resolver=stuck, timeout=0.2) as s,
                pytest.raises(ResolveTimeout) as caught,
            ):
                s.get(url)
        else:

            async def main() -> pytest.ExceptionInfo[ResolveTimeout]:
                async with tether.AsyncSession(resolver=stuck, timeout=0.2) as s:
                    with pytest.raises(ResolveTimeout) as caught:
                        await s.get(url)
                release.set()  # before asyncio.run waits for its executor's threads
                return caught

            caught = run(main(), mode)
    finally:
        release.set()
    assert re.search(r"resolving 'slow.test' timed out after \d+\.\d{3}s", str(caught.value))


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``check`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("loop", LOOPS)
def test_a_cancelled_dial_leaves_nothing_open(loop: str) -> None:
    warm_up(loop)
    baseline = fd_count()

    async def main() -> None:
        async with tether.AsyncSession(resolver=hosts({"h.test": ["127.0.0.1", "127.0.0.2"]})) as s:
            task = asyncio.create_task(s.get(f"http://h.test:{hole.port}/"))
            await asyncio.sleep(ATTEMPT_DELAY * 1.5)  # both attempts in flight
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    with BlackHole("127.0.0.1") as hole, BlackHole("127.0.0.2", hole.port):
        run(main(), loop)
    assert fd_count() == baseline


@needs_ipv6
@pytest.mark.parametrize("mode", MODES)
def test_https_handshakes_with_the_winner_by_the_name(
    mode: str, ca: trustme.CA, tmp_path: pathlib.Path
) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("dual.test").configure_cert(ctx)  # the name only: SNI and checks use it
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TestServer(ssl_context=ctx) as srv, BlackHole("::1", srv.port):
        resolver = hosts({"dual.test": ["::1", "127.0.0.1"]})
        info = get(mode, f"https://dual.test:{srv.port}/", resolver=resolver, verify=str(ca_file))
        assert srv.errors == []
    assert attempts(info) == [("::1", "abandoned"), ("127.0.0.1", "connected")]
    assert info.tls_version is not None and info.tls_time > 0.0


def test_a_hung_resolver_cannot_pile_up_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolver_module, "IDLE_EXIT", 0.05)
    release = threading.Event()

    def stuck(host: str, port: int) -> list[str]:
        release.wait(10)
        return ["127.0.0.1"]

    waiters: list[threading.Thread] = []
    answers: list[list[str]] = []
    try:
        for _ in range(MAX_RESOLVER_THREADS):  # every thread stuck
            with pytest.raises(ResolveTimeout, match="timed out after"):
                resolve_within(stuck, "hung.test", 80, time.monotonic() + 0.01)
        for _ in range(MAX_RESOLVER_THREADS):  # as many callers waiting behind them
            waiter = threading.Thread(
                target=lambda: answers.append(
                    resolve_within(stuck, "hung.test", 80, time.monotonic() + 5)
                )
            )
            waiter.start()
            waiters.append(waiter)
        assert wait_for(lambda: len(resolver_module._workers._jobs) == MAX_RESOLVER_THREADS)
        with pytest.raises(ResolveTimeout, match=f"{MAX_RESOLVER_THREADS} resolutions are still"):
            resolve_within(stuck, "hung.test", 80, time.monotonic() + 1)
        assert _resolver_threads() == MAX_RESOLVER_THREADS
    finally:
        release.set()
        for waiter in waiters:
            waiter.join(10)
    assert answers == [["127.0.0.1"]] * MAX_RESOLVER_THREADS  # the waiting ones were served
    ok = hosts({"ok.test": ["::1"]})
    assert resolve_within(ok, "ok.test", 80, time.monotonic() + 1) == ["::1"]
    # Idle threads end on their own: none is left behind.
    assert wait_for(lambda: _resolver_threads() == 0, seconds=resolver_module.IDLE_EXIT + 7)


def _resolver_threads() -> int:
    return sum(t.name.startswith("tether-resolve") for t in threading.enumerate())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_resolves_on_threads_of_its_own() -> None:
    hook = hosts({"f.test": ["127.0.0.1"]})
    assert resolve_within(hook, "f.test", 80, time.monotonic() + 2) == ["127.0.0.1"]
    assert _resolver_threads() >= 1  # the parent's worker, waiting for work: not the child's
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report in one byte, run none of pytest's teardown
        try:
            ok = resolve_within(hook, "f.test", 80, time.monotonic() + 2) == ["127.0.0.1"]
        except BaseException:
            ok = False
        os.write(write_end, b"1" if ok else b"0")
        os._exit(0)
    os.close(write_end)
    try:
        ready = select.select([read_end], [], [], 10)[0]
        answer = os.read(read_end, 1) if ready else b""
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert answer == b"1"
