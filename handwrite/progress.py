"""Progress bars on standard error, so standard output stays clean for results.

rich comes with typer; a bar is drawn only when stderr is a terminal, so logs
and pipes get no control characters.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class _Bar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def advance(self, n: int = 1, **fields) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n, **fields)

    def print(self, message: str, fallback) -> None:
        """Show a log line above a live bar (so the two do not garble each other), else via ``fallback``."""
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            fallback(message)

    def reset(self, total: int, description: str) -> None:
        if self._progress is not None:
            self._progress.reset(self._task, total=total, description=description, info="")


@contextmanager
def bar(total: int, description: str, enabled: bool = True):
    console = Console(file=sys.stderr)
    if not (enabled and console.is_terminal):
        yield _Bar(None, None)
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        yield _Bar(progress, progress.add_task(description, total=total, info=""))
