"""After os.fork() the child opens its own connections; the parent's stay the parent's."""

from __future__ import annotations

import json
import os
import select
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest
import trustme

import tether
from tether.io.watcher import watcher
from tether.testing import TestServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def in_child(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a forked child; return what it returned (JSON), or raise its error."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running any of pytest's teardown
        try:
            result = {"ok": work()}
        except BaseException as exc:
            result = {"error": repr(exc)}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + 20.0
    try:
        while time.monotonic() < deadline:
            if not select.select([read_end], [], [], 0.5)[0]:
                continue
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks) or b'{"error": "child said nothing"}')
    if "error" in result:
        raise AssertionError(f"child failed: {result['error']}")
    return result["ok"]


def _child_request(session: tether.Session, url: str) -> Callable[[], Any]:
    def work() -> Any:
        r = session.get(url)
        return {
            "reused": r.connection_info.reused,
            "server_connection": r.json()["connection_id"],
            "watcher_running": watcher.running,
        }

    return work


def test_the_child_dials_its_own_connection(test_server: TestServer) -> None:
    url = f"{test_server.url}/echo"
    with tether.Session() as s:
        assert s.get(url).json()["connection_id"] == 1  # pooled in the parent
        child = in_child(_child_request(s, url))
        assert child["reused"] is False
        assert child["server_connection"] == 2
        again = s.get(url)  # the parent's connection was not touched by the child
        assert again.connection_info.reused
        assert again.json()["connection_id"] == 1
    assert test_server.connections_accepted == 2


def test_the_child_leaves_the_parents_tls_connection_intact(ca: trustme.CA) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with TestServer(ssl_context=ctx) as server, tether.Session(verify=client) as s:
        url = f"{server.url}/echo"
        s.get(url)
        child = in_child(_child_request(s, url))
        assert child["server_connection"] == 2
        # No close_notify, no FIN from the child: the parent's TLS connection still works.
        again = s.get(url)
        assert again.connection_info.reused and again.json()["connection_id"] == 1
    assert not server.errors


def test_the_child_gets_a_watcher_of_its_own(test_server: TestServer) -> None:
    url = f"{test_server.url}/echo"
    with tether.Session() as s:
        s.get(url)
        assert watcher.running

        def work() -> Any:
            before = watcher.running
            s.get(url)  # released into the pool: watched, so the watcher starts again
            return {"before": before, "after": watcher.running}

        assert in_child(work) == {"before": False, "after": True}
