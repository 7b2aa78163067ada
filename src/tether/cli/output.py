"""Where the commands print: colour and live progress on a terminal (rich, if installed),
plain text when piped, one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

__all__ = ["Output", "Progress", "redact"]

# Header values never printed, even with -v: the transcript may be pasted into a bug report.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def redact(name: str, value: str) -> str:
    """``value``, or a placeholder for credentials and cookies."""
    return "[redacted]" if name.lower() in SECRET_HEADERS else value


class Progress:
    """A live progress display (rich on a terminal; nothing otherwise)."""

    def __init__(self, bar: Any, task: Any) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: float = 1.0, **fields: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=n, **fields)

    def update(self, **fields: Any) -> None:
        if self._bar is not None:
            self._bar.update(self._task, **fields)


class Output:
    """Lines for a person (styled on a terminal) or, with ``json_mode``, one JSON document."""

    def __init__(self, json_mode: bool = False, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.json_mode = json_mode
        self.tty = self.stream.isatty() and not json_mode
        self._console: Any = None
        if self.tty:
            try:
                from rich.console import Console
            except ImportError:  # rich is the tether[cli] extra: plain text without it
                pass
            else:
                self._console = Console(file=self.stream, highlight=False)

    def line(self, text: str = "", style: str | None = None) -> None:
        """A line of text (dropped in JSON mode: the document says it all)."""
        if self.json_mode:
            return
        if self._console is not None:
            self._console.print(text, style=style, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def table(self, renderable: Any, plain: str) -> None:
        """A rich renderable on a terminal, else its plain-text form."""
        if self.json_mode:
            return
        if self._console is not None:
            self._console.print(renderable)
        else:
            print(plain, file=self.stream, flush=True)

    def document(self, data: Any) -> None:
        """The JSON result (JSON mode only)."""
        if self.json_mode:
            json.dump(data, self.stream, indent=2, sort_keys=True)
            self.stream.write("\n")
            self.stream.flush()

    @contextmanager
    def progress(self, description: str, total: float | None) -> Iterator[Progress]:
        """A live bar on a terminal; silent when piped."""
        if self._console is None:
            yield Progress(None, None)
            return
        from rich.progress import (
            BarColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
        )
        with RichProgress(*columns, console=self._console, transient=True) as bar:
            yield Progress(bar, bar.add_task(description, total=total, note=""))
