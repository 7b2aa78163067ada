"""``PoolStats`` as a table, one row per origin: plain text, or a rich ``Table``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .poolstate import PoolStats

__all__ = ["COLUMNS", "describe", "rich_table", "rows"]

COLUMNS = (
    "origin",
    "open",
    "idle",
    "in use",
    "opened",
    "requests",
    "reuse",
    "retries",
    "closes",
    "learned idle",
    "keep-alive",
)


def _closes(closes: dict[str, int]) -> str:
    return ", ".join(f"{name.lower()}={n}" for name, n in sorted(closes.items())) or "-"


def _row(origin: str, s: PoolStats) -> list[str]:
    learned = f"{s.learned_idle_timeout:.2f} s" if s.learned_idle_timeout else "-"
    return [
        origin,
        str(s.open),
        str(s.idle),
        str(s.in_use),
        str(s.connections_opened),
        str(s.requests),
        f"{s.reuse_ratio:.0%}",
        str(s.retries),
        _closes(s.closes),
        learned,
        s.keep_alive or "-",
    ]


def rows(stats: PoolStats) -> list[list[str]]:
    """One row per origin, then a total row when there are several origins."""
    found = [_row(origin, s) for origin, s in sorted(stats.by_origin.items())]
    if len(found) != 1:
        found.append(_row("total", stats))
    return found


def describe(stats: PoolStats) -> str:
    """A fixed-width plain-text table of ``rows``."""
    table = [list(COLUMNS), *rows(stats)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def rich_table(stats: PoolStats) -> Any:
    """A ``rich.table.Table`` of ``rows`` (rich comes with ``pip install tether[cli]``)."""
    from rich.table import Table

    table = Table(title="connections by origin")
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i in (0, 8, 10) else "right")
    for row in rows(stats):
        table.add_row(*row)
    return table
