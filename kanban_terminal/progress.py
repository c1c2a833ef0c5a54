"""A progress bar on stderr for long command-line work (backup, restore; export and generation later).

Long work reports `(done, total)` through a plain callback, so the same code feeds this bar on the
command line and a Textual `ProgressBar` in the TUI, and runs silently in tests and under systemd.
The bar goes to stderr (stdout stays parseable) and only when stderr is a terminal: a journald log
full of redraw escapes helps nobody.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

ProgressCallback = Callable[[int, int], None]


def _noop(_done: int, _total: int) -> None:
    return None


@contextmanager
def cli_progress(
    description: str, *, stream: TextIO | None = None, enabled: bool | None = None
) -> Iterator[ProgressCallback]:
    """Yield a `progress(done, total)` callback that drives a rich progress bar.

    Args:
        description: what is being done ("backup", "restore").
        stream: where to draw; default stderr.
        enabled: force the bar on or off; default on only when `stream` is a terminal.
    """
    stream = stream or sys.stderr
    if enabled is None:
        enabled = stream.isatty()
    if not enabled:
        yield _noop
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            # total 0: not known yet (a streamed export); the bar shows a count until it is.
            bar.update(task, completed=done, total=total or None)

        yield update
