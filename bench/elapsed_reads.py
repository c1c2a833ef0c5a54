"""What counting andon and request durations on elapsed time costs the reads that show them (branch
stepdown, issue 19 section of docs/BENCHMARKS.md).

    python bench/elapsed_reads.py [--open 20] [--rounds 300]

The demo line in a real SQLite file (in a temporary dir), `--open` cards scanned empty (open
requests), one STOP active and a few resolved, every open request and the stop anchored by the
escalation runner as `serve` would. In the same process, alternating, median CPU
(`time.process_time`) of:

* `read_status`, what the board reads every 2 s and after a scan: "wall" is main's (the anchor
  query left out of the snapshot the read opens anyway), "elapsed" this branch's;
* `read_board`, what the andon screen reads after an andon change: "wall" is main's function
  (copied here), "elapsed" this branch's (one more raw snapshot: anchors and recorded downtimes).

Ratios against the "wall" baseline taken in the same run, since the box is shared.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.services import andon_views, queries
from kanban_terminal.services.auth import AuthSession, enroll, login
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_reads, elapsed_anchors


class Clock:
    """Wall and monotonic clocks moved together (as tests/support/andon.py's FakeClock)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 6, tzinfo=UTC)
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


def cpu_us(call: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.process_time()
        call()
        out.append((time.process_time() - start) * 1e6)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(demo_config_path())
        terminal = Terminal.open(config, Path(tmp), clock=clock, monotonic=clock.monotonic)
        assert enroll(terminal, "E2001", "4711", n=2**10) is None
        cards = [c for lp in terminal.config.loops for c in lp.card_id_list()][: args.open]
        for card in cards:
            record_scan(terminal, card, source="keyboard")
            clock.advance(5)
        state = login(terminal, "E2001", "4711", source="keyboard")
        auth = AuthSession(state)  # type: ignore[arg-type]
        for i in range(4):  # resolved stops for the history
            stop = svc.raise_andon(
                terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", auth=auth
            ).andon
            assert stop is not None
            clock.advance(60)
            assert svc.resolve_andon(terminal, stop.id, f"fixed {i}", source="keyboard", auth=auth).ok
            assert svc.acknowledge_andon(terminal, stop.id, "E2001", source="keyboard").ok
        assert svc.raise_andon(terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", auth=auth).ok
        EscalationRunner(terminal).tick()  # anchors requests and the stop
        status = queries.read_status(terminal)
        board = andon_views.read_board(terminal)
        anchored = sum(r.elapsed is not None for r in status.open_requests)
        print(
            f"{len(status.open_requests)} open requests ({anchored} anchored), "
            f"{len(board.line.active)} active andon, {len(board.history)} in the history"
        )

        load_raw = elapsed_anchors.load_raw

        def status_main() -> object:  # main's read: the same snapshot, no anchor query in it
            elapsed_anchors.load_raw = lambda _raw, _keys: {}  # type: ignore[assignment]
            try:
                return queries.read_status(terminal)
            finally:
                elapsed_anchors.load_raw = load_raw  # type: ignore[assignment]

        def board_main() -> object:  # main's read_board, verbatim
            now = terminal.clock()
            rows = andon_reads.board(terminal.db, terminal.config.andon.history)
            history = tuple(andon_views.view_of(terminal, a, rows.fired.get(a.id, ())) for a in rows.history)
            return andon_views.AndonBoard(
                andon_views._line(terminal, rows.attention, rows.fired, now), history
            )

        pairs = {
            "read_status": (status_main, lambda: queries.read_status(terminal)),
            "read_board": (board_main, lambda: andon_views.read_board(terminal)),
        }
        results: dict[str, dict[str, list[float]]] = {name: {"wall": [], "elapsed": []} for name in pairs}
        for _ in range(3):  # alternate, so load drifts hit both alike
            for name, (before, after) in pairs.items():
                results[name]["wall"].extend(cpu_us(before, args.rounds))
                results[name]["elapsed"].extend(cpu_us(after, args.rounds))
        for name, runs in results.items():
            wall, elapsed = statistics.median(runs["wall"]), statistics.median(runs["elapsed"])
            print(
                f"{name:<12} wall (main) {wall:8.0f} us   elapsed (stepdown) {elapsed:8.0f} us   "
                f"ratio {elapsed / wall:.2f}   (median CPU of {len(runs['wall'])} calls each)"
            )
        terminal.close()


if __name__ == "__main__":
    main()
