"""``tether demo``'s asyncio scene: its claims hold, and it fails when they do not."""

from __future__ import annotations

from typing import Any

import pytest

from tether.aio.pool import AsyncConnectionPool
from tether.cli import demo_async
from tether.lifecycle.rules import CloseReason


def test_async_scene_holds() -> None:
    lines: list[str] = []
    assert demo_async.scene_async_cancel(lines.append), "\n".join(lines)
    assert "  [ok] no connection is held by a cancelled task" in lines


def test_async_scene_fails_when_a_cancelled_task_keeps_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A pool that closed an abandoned exchange's socket but never gave back its slot: the
    # scene must say so (its next request times out on the pool wait), not print its claim.
    def leak_the_slot(self: AsyncConnectionPool, exchange: Any) -> None:
        exchange.conn.close(CloseReason.ABANDONED)

    monkeypatch.setattr(AsyncConnectionPool, "_abandon", leak_the_slot)
    lines: list[str] = []
    with pytest.raises(Exception, match="became free"):
        demo_async.scene_async_cancel(lines.append)
    assert "  [FAILED] no connection is held by a cancelled task" in lines
