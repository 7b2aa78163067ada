"""``tether demo``'s HTTP/2 scene: its claims hold, and it fails when they do not."""

from __future__ import annotations

import functools

import pytest

from tether.cli import demo
from tether.testing.h2server import H2TestServer


def test_h2_scene_shares_one_connection_between_16_threads() -> None:
    lines: list[str] = []
    assert demo._scene_h2(lines.append), "\n".join(lines)
    assert "  [ok] the server accepted 1 TCP connection(s) for 16 threads" in lines


def test_h2_scene_fails_when_the_server_counts_more_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server allowing 4 streams at once makes the pool open 4 connections for 16 threads:
    # the scene must say so and fail, not print its claim regardless.
    monkeypatch.setattr(
        demo, "H2TestServer", functools.partial(H2TestServer, max_concurrent_streams=4)
    )
    lines: list[str] = []
    assert not demo._scene_h2(lines.append)
    assert "  [FAILED] the server accepted 4 TCP connection(s) for 16 threads" in lines
