"""What holding keys while the focus may move (tui/scanner_wins.py) costs, against no hold, same run.

    python bench/key_hold.py [--runs 100]

Headless (Pilot), the demo line, keys posted to the App as the terminal's input thread posts them
(stamped, in one batch, without waiting), the two cases where the hold kicks in:
  back-to-back   two scanner reads queued at once (6 characters + Enter each, 4 ms stamps; the App
                 was busy while both arrived), until the second read's outcome is shown, against
  one-by-one     the same two reads, the second posted once the first is shown (no hold waits).
                 Without the hold there is no figure: the two reads were merged into one misread
                 (tests/tui/test_scanner_wins.py).
  echo-after     Enter in the empty scan field, then one character typed 150 ms later: until the
                 field shows it, hold on against hold off.
Runs alternate the order of each pair so both see the same load; prints p50 / p95 / max in ms and
the ratio of the p50s. Wall-clock figures: on a busy box compare the ratios, not the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


async def measure(runs: int, folder: Path) -> dict[str, dict[bool, list[float]]]:
    from textual.widgets import Input

    from kanban_terminal.config import demo_config_path, load_config
    from kanban_terminal.services.terminal import Terminal
    from kanban_terminal.tui.app import KanbanApp
    from tests.support.keys import Key, typed
    from tests.support.keys import post as post_keys

    cfg = load_config(demo_config_path())
    loops = tuple(lp.model_copy(update={"min_plausible_lead_time_minutes": 0}) for lp in cfg.loops)
    cfg = cfg.model_copy(update={"loops": loops})
    now = [datetime.now(UTC)]
    terminal = Terminal.open(cfg, folder / "hold", clock=lambda: now[0])
    cards = list(terminal.card_loops)
    app = KanbanApp(terminal)
    out: dict[str, dict[bool, list[float]]] = {
        "back-to-back": {True: []},
        "one-by-one": {True: []},
        "echo-after": {True: [], False: []},
    }

    def post(keys: list[Key], gap: float = 0.004) -> None:
        post_keys(app, *keys, gap=gap)

    def read(card: str) -> list[Key]:
        return [*typed(card), ("enter", "\r")]

    async def until(done: object, what: str) -> None:
        give_up = time.perf_counter() + 5
        while not done():  # type: ignore[operator]  # noqa: ASYNC110
            if time.perf_counter() > give_up:
                state = f"{app.screen}, {app.focused}, {app.last_outcome}"
                raise RuntimeError(f"{what}: not seen in 5 s ({state})")
            await asyncio.sleep(0)

    def shown(card: str, before: object) -> bool:
        o = app.last_outcome
        return o is not None and o is not before and o.code == card

    async with app.run_test(size=(80, 24)) as pilot:
        field = app.screen.query_one("#scan-field", Input)
        for i in range(runs):
            first, second = cards[(2 * i) % len(cards)], cards[(2 * i + 1) % len(cards)]
            for queued in (True, False) if i % 2 == 0 else (False, True):
                now[0] += timedelta(seconds=4)
                before = app.last_outcome
                t0 = time.perf_counter()
                if queued:  # both reads in the App's queue at once: the hold orders them
                    post(read(first) + read(second))
                else:  # the second read only once the first is shown: no hold ever waits
                    post(read(first))
                    await until(lambda b=before, c=first: shown(c, b), "first read")
                    before = app.last_outcome
                    post(read(second))
                await until(lambda b=before, c=second: shown(c, b), "second read")
                out["back-to-back" if queued else "one-by-one"][True].append(time.perf_counter() - t0)
                await pilot.pause()  # the status refresh the scans started (exclusive: may be cancelled)
            for hold in (True, False) if i % 2 == 0 else (False, True):
                app.hold_keys = hold
                t0 = time.perf_counter()
                post([("enter", "\r"), ("x", "x")], gap=0.150)
                await until(lambda: field.value == "x", "echo")
                out["echo-after"][hold].append(time.perf_counter() - t0)
                field.value = ""
                await pilot.pause()
            app.hold_keys = True
    terminal.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanban-bench-") as tmp:
        results = asyncio.run(measure(args.runs, Path(tmp)))
    print(f"{'case':<14}{'hold':>6}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for case, by_hold in results.items():
        for hold, v in sorted(by_hold.items()):
            print(
                f"{case:<14}{'on' if hold else 'off':>6}{len(v):>5}{pct(v, 0.5):>9.2f}{pct(v, 0.95):>9.2f}"
                f"{max(v) * 1000:>9.2f}"
            )
    two = statistics.median(results["back-to-back"][True]) / statistics.median(results["one-by-one"][True])
    echo = statistics.median(results["echo-after"][True]) / statistics.median(results["echo-after"][False])
    print(f"two reads queued at once vs one after the other, p50: {two:.2f}x")
    print(f"a typed key right after Enter, hold on vs off, p50: {echo:.2f}x")


if __name__ == "__main__":
    main()
