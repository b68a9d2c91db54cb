"""One progress display for every long command (reconcile, invoke over many events, check, backfill).

On a terminal (stderr is a TTY) it is a rich bar with done/total, rate and ETA, drawn on stderr so stdout
keeps only the result. Off a terminal it writes nothing, unless ``ACRSYNC_PROGRESS=jsonl`` asks for one
JSON line per update on stderr (for CI logs that want a heartbeat).

Usage::

    with progress("reconcile", total=len(items)) as bar:
        for item in items:
            ...
            bar.advance()            # or bar.advance(n), bar.update(done=..., total=...)
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


class Progress(Protocol):
    def advance(self, n: int = 1) -> None:
        """``n`` more items done."""

    def update(self, *, done: int | None = None, total: int | None = None) -> None:
        """Set the count done and/or the total (a total can become known late)."""


class _Silent:
    def advance(self, n: int = 1) -> None:
        pass

    def update(self, *, done: int | None = None, total: int | None = None) -> None:
        pass


class _JsonLines:
    """One ``{"progress": label, "done": n, "total": m}`` line per update on stderr, at most 2 a second."""

    def __init__(self, label: str, total: int | None):
        self.label, self.total, self.done, self._last = label, total, 0, 0.0

    def _emit(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= 0.5:
            self._last = now
            sys.stderr.write(
                json.dumps({"progress": self.label, "done": self.done, "total": self.total}) + "\n"
            )
            sys.stderr.flush()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._emit()

    def update(self, *, done: int | None = None, total: int | None = None) -> None:
        self.done = self.done if done is None else done
        self.total = self.total if total is None else total
        self._emit()


class _Bar:
    """A rich bar: done/total, items per second, time remaining."""

    def __init__(self, bar: RichProgress, task: TaskID) -> None:
        self._bar, self._task, self._started = bar, task, time.monotonic()

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)
        self._rate()

    def update(self, *, done: int | None = None, total: int | None = None) -> None:
        self._bar.update(self._task, completed=done, total=total)
        self._rate()

    def _rate(self) -> None:
        elapsed = time.monotonic() - self._started
        done = self._bar.tasks[0].completed
        self._bar.update(self._task, rate=f"{done / elapsed:.1f}/s" if elapsed > 0 else "")


def mode() -> str:
    """"bar" on a terminal, "jsonl" when ACRSYNC_PROGRESS=jsonl, else "off"."""
    wanted = os.environ.get("ACRSYNC_PROGRESS", "").lower()
    if wanted in ("off", "jsonl", "bar"):
        return wanted
    return "bar" if sys.stderr.isatty() else "off"


@contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Progress]:
    """A progress display for ``label`` (see the module doc); the bar disappears when the block ends."""
    how = mode()
    if how == "off":
        yield _Silent()
        return
    if how == "jsonl":
        p = _JsonLines(label, total)
        yield p
        p._emit(force=True)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=Console(stderr=True),
                       transient=True)
    with bar:
        yield _Bar(bar, bar.add_task(label, total=total, rate=""))
