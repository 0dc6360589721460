"""Progress on stderr for long pulls: rich bars on a terminal, quiet otherwise (stdout stays clean)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def stage(self, label: str, total: int | None = None) -> Iterator[Step]: ...


class Step(Protocol):
    def update(self, done: int, total: int | None = None) -> None: ...


class _NoStep:
    def update(self, done: int, total: int | None = None) -> None:
        return None


class QuietProgress:
    @contextmanager
    def stage(self, label: str, total: int | None = None) -> Iterator[Step]:
        yield _NoStep()


class _RichStep:
    def __init__(self, bar: object, task: object) -> None:
        self._bar, self._task = bar, task

    def update(self, done: int, total: int | None = None) -> None:
        self._bar.update(self._task, completed=done, total=total)  # type: ignore[attr-defined]


class RichProgress:
    """One bar per stage on stderr; bars stay on screen so the user sees what was pulled."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(file=sys.stderr), transient=False,
        )

    @contextmanager
    def stage(self, label: str, total: int | None = None) -> Iterator[Step]:
        if not self._bar.live.is_started:
            self._bar.start()
        task = self._bar.add_task(label, total=total)
        try:
            yield _RichStep(self._bar, task)
        finally:
            current = self._bar.tasks[task]
            self._bar.update(task, completed=current.total if current.total is not None else 1,
                             total=current.total if current.total is not None else 1)

    def close(self) -> None:
        if self._bar.live.is_started:
            self._bar.stop()


def for_terminal(enabled: bool | None) -> QuietProgress | RichProgress:
    """Bars when asked, or by default when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return RichProgress() if enabled else QuietProgress()
