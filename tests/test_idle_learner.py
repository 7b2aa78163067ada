"""The idle-timeout learner recovers from a mass close, never with a POST, and is shared by the
pools of one origin (rules.IdleTimeoutLearner, LearnerTable; docs/lifecycle.md)."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Callable

import pytest
import trustme
from aio_helpers import LOOPS, run
from test_poolstate import Conn

from tether import AsyncPoolManager, ConnectionPool, PoolManager
from tether.aio.pool import AsyncConnectionPool
from tether.io.tls import TLSConfig
from tether.lifecycle.poolstate import Action, PoolState
from tether.lifecycle.rules import CloseReason, IdleTimeoutLearner, Limits, server_deadline
from tether.models import Origin
from tether.testing import TestServer

# -- the rule on its own -------------------------------------------------------------------------


def test_a_surviving_probe_raises_the_bound_to_what_survived() -> None:
    learner = IdleTimeoutLearner()
    learner.observe_idle_close(0.3)  # a mass close
    assert learner.timeout == 0.3 and learner.may_probe(0.0)
    learner.probing = True
    assert not learner.may_probe(0.0)  # one probe at a time
    learner.probe_ended(0.45, answered=True, rtt=0.01, now=1.0)
    assert learner.timeout is not None
    # Every request may now reuse a connection idle as long as the probe's, no longer.
    assert server_deadline(learner.timeout, 0.01) == pytest.approx(0.45)
    learner.observe_idle_close(0.25)  # a real close below it still lowers it
    assert learner.timeout == 0.25


def test_probes_that_find_the_bound_right_back_off() -> None:
    learner = IdleTimeoutLearner()
    learner.observe_idle_close(0.3)
    starts = []
    now = 0.0
    for _ in range(4):
        while not learner.may_probe(now):
            now += 0.5
        starts.append(now)
        learner.probing = True
        learner.probe_ended(0.4, answered=False, rtt=0.0, now=now)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == sorted(gaps) and gaps[-1] >= 4 * gaps[0]  # doubling
    assert learner.timeout == 0.3  # confirmed, not lowered


def test_only_a_replayable_request_probes_past_the_bound() -> None:
    state: PoolState[Conn] = PoolState(4, False, Limits(idle_timeout=5.0), False)
    doomed: list[tuple[Conn, CloseReason]] = []
    learner = state.learner
    learner.observe_idle_close(0.3)
    for replayable, expected in ((False, Action.DIAL), (True, Action.REUSE)):
        order = state.checkout(0.0, False, doomed)
        state.dialed(order, conn := Conn(multiplexed=False), 0.0, doomed)
        assert order.exchange is not None
        state.finish(order.exchange, 0.0, doomed)  # idle from 0.0, learned deadline < 0.3
        order = state.checkout(0.4, False, doomed, None, replayable)
        assert order.action is expected, replayable
        if expected is Action.REUSE:
            assert order.exchange is not None and order.exchange.probe
            assert order.exchange.conn is conn
            order.exchange.response_started = True  # answered: the bound was wrong
            state.finish(order.exchange, 0.41, doomed)
        else:
            assert doomed[-1] == (conn, CloseReason.LEARNED_IDLE_TIMEOUT)
            state.dial_failed(order, 0.4, doomed)
    assert learner.timeout is not None and server_deadline(learner.timeout, 0.0) >= 0.4


def test_a_probe_that_finds_the_connection_closed_confirms_the_bound() -> None:
    state: PoolState[Conn] = PoolState(4, False, Limits(idle_timeout=5.0), False)
    doomed: list[tuple[Conn, CloseReason]] = []
    state.learner.observe_idle_close(0.3)
    order = state.checkout(0.0, False, doomed)
    state.dialed(order, Conn(multiplexed=False), 0.0, doomed)
    assert order.exchange is not None
    state.finish(order.exchange, 0.0, doomed)
    order = state.checkout(0.5, False, doomed, None, True)
    assert order.exchange is not None and order.exchange.probe
    state.dead_on_checkout(order, CloseReason.SERVER_CLOSED_IDLE, 0.5, doomed)
    learner = state.learner
    assert learner.timeout == 0.3 and learner.closes == 2
    assert not learner.may_probe(1.0) and learner.may_probe(1.5)  # the next one waits 1 s


# -- against a server: a mass close, then recovery -----------------------------------------------


def _wait(cond: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_recovers_after_a_mass_close() -> None:
    with TestServer() as server, ConnectionPool("127.0.0.1", server.port) as pool:
        pool.request("GET", "/")
        time.sleep(0.3)
        assert server.close_idle_connections() == 1  # a restart: every idle connection closed
        assert _wait(lambda: pool.learned_idle_timeout is not None)
        learned = pool.learned_idle_timeout
        assert learned is not None and learned < 0.5
        pool.request("GET", "/")
        time.sleep(0.45)
        post = pool.request("POST", "/echo", body=b"a")
        assert not post.connection_info.reused  # past the learned bound: a new connection
        time.sleep(0.5)
        probe = pool.request("GET", "/")
        assert probe.connection_info.reused  # the probe, and it was answered
        raised = pool.learned_idle_timeout
        assert raised is not None and raised > learned
        time.sleep(0.35)
        post = pool.request("POST", "/echo", body=b"b")
        assert post.connection_info.reused  # recovered: a POST reuses an idle connection again
        stats = pool.stats()
    assert stats.retries == 0
    assert [e.body for e in server.exchanges if e.method == "POST"] == [b"a", b"b"]


@pytest.mark.parametrize("loop", LOOPS)
def test_async_recovers_after_a_mass_close(loop: str) -> None:
    async def main() -> None:
        with TestServer() as server:
            async with AsyncConnectionPool("127.0.0.1", server.port) as pool:
                await pool.request("GET", "/")
                await asyncio.sleep(0.3)
                assert await asyncio.to_thread(server.close_idle_connections) == 1
                for _ in range(300):
                    if pool.learned_idle_timeout is not None:
                        break
                    await asyncio.sleep(0.01)
                learned = pool.learned_idle_timeout
                assert learned is not None and learned < 0.5
                await pool.request("GET", "/")
                await asyncio.sleep(0.45)
                post = await pool.request("POST", "/echo", body=b"a")
                assert not post.connection_info.reused
                await asyncio.sleep(0.5)
                assert (await pool.request("GET", "/")).connection_info.reused
                raised = pool.learned_idle_timeout
                assert raised is not None and raised > learned
                await asyncio.sleep(0.35)
                post = await pool.request("POST", "/echo", body=b"b")
                assert post.connection_info.reused
                assert pool.stats().retries == 0

    run(main(), loop)


# -- one learner per origin, across pools with different TLS settings ----------------------------


def _tls(ca: trustme.CA) -> tuple[ssl.SSLContext, TLSConfig, TLSConfig]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    a, b = ssl.create_default_context(), ssl.create_default_context()
    ca.configure_trust(a)
    ca.configure_trust(b)
    b.maximum_version = ssl.TLSVersion.TLSv1_2  # different settings, one server
    return server_ctx, TLSConfig(a), TLSConfig(b)


def test_pools_of_one_origin_share_what_they_learn(ca: trustme.CA) -> None:
    server_ctx, tls_a, tls_b = _tls(ca)
    with TestServer(ssl_context=server_ctx) as server, PoolManager() as manager:
        origin = Origin.of("https", "127.0.0.1", server.port)
        a, b = manager.pool_for(origin, tls_a), manager.pool_for(origin, tls_b)
        assert a is not b
        a.request("GET", "/")
        time.sleep(0.3)
        server.close_idle_connections()
        assert _wait(lambda: a.learned_idle_timeout is not None)
        assert b.learned_idle_timeout == a.learned_idle_timeout  # b never saw a close


def test_async_pools_of_one_origin_share_what_they_learn(ca: trustme.CA) -> None:
    server_ctx, tls_a, tls_b = _tls(ca)

    async def main() -> None:
        with TestServer(ssl_context=server_ctx) as server:
            async with AsyncPoolManager() as manager:
                origin = Origin.of("https", "127.0.0.1", server.port)
                a, b = manager.pool_for(origin, tls_a), manager.pool_for(origin, tls_b)
                assert a is not b
                await a.request("GET", "/")
                await asyncio.sleep(0.3)
                await asyncio.to_thread(server.close_idle_connections)
                for _ in range(300):
                    if a.learned_idle_timeout is not None:
                        break
                    await asyncio.sleep(0.01)
                assert a.learned_idle_timeout is not None
                assert b.learned_idle_timeout == a.learned_idle_timeout

    run(main())
