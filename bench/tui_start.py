"""One timed TUI start for bench/log_bench.py: a fresh process, so imports and the catalog sync count.

Prints a dict of wall-clock marks (time.time()): first screen painted (Textual's Ready), the log
screen's first page shown, the metrics screen filled; and the process's peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kanban_terminal.config import load_config  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from kanban_terminal.tui.app import KanbanApp  # noqa: E402
from kanban_terminal.tui.screens.log import LogScreen  # noqa: E402
from kanban_terminal.tui.screens.metrics import MetricsScreen  # noqa: E402

marks: dict[str, float] = {}


class Timed(KanbanApp):
    CSS_PATH = str(ROOT / "kanban_terminal" / "tui" / "app.tcss")

    def on_ready(self) -> None:
        marks["first_screen"] = time.time()
        self.switch_mode("log")
        self.set_interval(0.005, self._watch)

    def _watch(self) -> None:
        screen = self.screen
        if isinstance(screen, LogScreen) and screen.page is not None and "log_page" not in marks:
            marks["log_page"] = time.time()
            self.switch_mode("metrics")
        elif isinstance(screen, MetricsScreen) and screen.lines and "metrics" not in marks:
            marks["metrics"] = time.time()
            self.exit()


if __name__ == "__main__":
    terminal = Terminal.open(load_config(Path(sys.argv[1])), Path(sys.argv[2]))
    Timed(terminal).run(headless=True, size=(120, 40))
    terminal.close()
    print(repr({**marks, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
