"""TUI start-up and scan-to-banner, two ways.

1. `python bench/tui_start.py CONFIG DATA_DIR`: one timed start in a fresh process, headless, for
   bench/log_bench.py. Prints a dict of wall-clock marks (time.time()): first screen painted
   (Textual's Ready), the log screen's first page shown, the metrics screen filled; and peak RSS.

2. `python bench/tui_start.py tmux [--runs 5] [--scans 39] [--echoes 60]`: in a real terminal
   (tmux 3.3, TERM=xterm-256color, 80x24), from outside, the way a person sees it (issue 15):
     launch     `kanban-terminal run` (demo config, offline, an existing database copied fresh per run)
                until the scan field shows on the screen, against the same run's bare-Textual launch
                (an App with one Input and a Footer) measured the same way;
     scan       `send-keys CARD Enter` (a wedge scanner's whole read at once) until the banner names
                the card, against the same run's key-echo floor: one typed character in the bare
                Textual app until it shows.
   `--baseline-root DIR` also launches `run` from another checkout (e.g. `git archive main | tar -x
   -C DIR`) in every run, interleaved, so before and after are measured in the same minutes.
   Every figure is read by polling `tmux capture-pane`, so the polling cost (a tmux client per poll)
   is in the floors exactly as in the figures; compare with the floors, not with zero. Prints
   p50 / p95 / p99 and max. Runs the apps under their own tmux server (-L), killed at the end.

3. `python bench/tui_start.py cpu [--runs 7] [--baseline-root DIR]`: CPU seconds (user + sys, all
   threads, from the interpreter's start) to the first paint, in fresh processes, headless: a bare
   Textual app, `kanban-terminal run` through the CLI's `main`, and the same from another checkout.
   Each process reports right after the refresh that follows Textual's ready, then `os._exit`s.
   On a shared box, CPU time moves far less with load than wall time does (perf's instruction
   counter is not available in this VM), so this is the start-up figure to compare across runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Its own tmux server per run: two benches on one box must not kill each other's panes.
SOCKET = f"kt-bench-{os.getpid()}"
SIZE = ("80", "24")
BARE_APP = """
from textual.app import App
from textual.widgets import Footer, Input
class Bare(App[None]):
    BINDINGS = [("f10", "quit", "Quit")]
    def compose(self):
        yield Input(placeholder="bare ready", id="field")
        yield Footer()
    def on_input_submitted(self, event):
        event.input.value = ""
Bare().run()
"""


FIRST_PAINT_HOOK = """
import os, time
from textual.app import App
_real_ready = App._ready
async def _ready(self):
    await _real_ready(self)
    def up():  # the runtime open too (an App opened before it has no `runtime_ready`: up at once)
        if getattr(self, "runtime_ready", True):
            print(f"UP {time.process_time():.4f}", flush=True)
            os._exit(0)
    def report():
        print(f"FIRST_PAINT {time.process_time():.4f}", flush=True)
        up()
        self.set_interval(0.01, up)
    self.call_after_refresh(report)
App._ready = _ready
_real_run = App.run
App.run = lambda self, *a, **k: _real_run(self, headless=True, size=(80, 24))
"""


def _cpu_to_first_paint(code: str, cwd: Path) -> tuple[float, float, float]:
    """(CPU s to the first paint, CPU s until the runtime is up, wall s) from a fresh interpreter."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", FIRST_PAINT_HOOK + code],
        capture_output=True, text=True, cwd=cwd, check=False, timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    wall = time.perf_counter() - t0
    marks = dict(ln.split() for ln in out.stdout.splitlines() if ln.startswith(("FIRST_PAINT ", "UP ")))
    if len(marks) != 2:
        raise RuntimeError(f"no first paint from {cwd}: {out.stderr[-2000:]}")
    return float(marks["FIRST_PAINT"]), float(marks["UP"]), wall


def bench_cpu(runs: int, baseline: Path | None) -> None:
    config = ROOT / "config" / "demo.toml"
    load = os.getloadavg()
    figures: dict[str, list[tuple[float, float, float]]] = {"bare": [], "run": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="kt-cpu-bench-") as tmp:
        warm, _cards = warm_data_dir(config, Path(tmp) / "warm")
        for i in range(runs):  # interleaved: each run measures every kind in the same minutes
            figures["bare"].append(_cpu_to_first_paint(BARE_APP, ROOT))
            for kind, root in (("run", ROOT), ("baseline", baseline)):
                if root is None:
                    continue
                data = Path(tmp) / f"{kind}{i}"
                shutil.copytree(warm, data)
                argv = ["run", "--config", str(config), "--data-dir", str(data)]
                run = f"from kanban_terminal.cli import main; main({argv!r})"
                figures[kind].append(_cpu_to_first_paint(run, root))
    print(
        f"CPU to first paint, headless, {runs} runs each, load average at start {load[0]:.2f} {load[1]:.2f}"
    )
    bare_cpu = statistics.median(c for c, _, _ in figures["bare"])
    print("  CPU medians: to the first paint (x bare), to the runtime up; wall median to the exit")
    for kind, values in figures.items():
        if not values:
            continue
        cpu = statistics.median(c for c, _, _ in values)
        up = statistics.median(u for _, u, _ in values)
        wall = statistics.median(w for _, _, w in values)
        where = f"  ({baseline})" if kind == "baseline" else ""
        ms = f"{cpu * 1000:7.1f} ms ({cpu / bare_cpu:4.2f}x)  {up * 1000:7.1f} ms  {wall * 1000:7.1f} ms"
        print(f"  {kind:9s} {ms}{where}")


def _headless_child() -> None:
    from kanban_terminal.config import load_config
    from kanban_terminal.services.terminal import Terminal
    from kanban_terminal.tui.app import KanbanApp
    from kanban_terminal.tui.screens.log import LogScreen
    from kanban_terminal.tui.screens.metrics import MetricsScreen

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

    terminal = Terminal.open(load_config(Path(sys.argv[1])), Path(sys.argv[2]))
    Timed(terminal).run(headless=True, size=(120, 40))
    terminal.close()
    print(repr({**marks, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


# -- tmux ------------------------------------------------------------------------------------------


def tmux(*args: str) -> str:
    out = subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False)
    return out.stdout


def screen_text() -> str:
    return tmux("capture-pane", "-p", "-t", "b")


def wait_gone(text: str, limit_s: float = 60.0) -> float:
    """Poll the pane until `text` is no longer on it; returns the perf_counter time."""
    end = time.perf_counter() + limit_s
    while time.perf_counter() < end:
        if text not in screen_text():
            return time.perf_counter()
    raise TimeoutError(f"{text!r} stayed; the screen was:\n{screen_text()}")


def wait_for(text: str, limit_s: float = 60.0) -> float:
    """Poll the pane until `text` shows; returns the perf_counter time it was first seen."""
    end = time.perf_counter() + limit_s
    while time.perf_counter() < end:
        if text in screen_text():
            return time.perf_counter()
    raise TimeoutError(f"{text!r} never showed; the screen was:\n{screen_text()}")


def launch(command: str, ready_text: str, root: Path = ROOT) -> float:
    """Start `command` in a fresh 80x24 pane, in `root`; seconds until `ready_text` shows."""
    tmux("kill-session", "-t", "b")
    env = f"cd {root} && TERM=xterm-256color PYTHONDONTWRITEBYTECODE=1 exec {command}"
    for _attempt in range(3):
        t0 = time.perf_counter()
        started = subprocess.run(
            ["tmux", "-L", SOCKET, "new-session", "-d", "-s", "b", "-x", SIZE[0], "-y", SIZE[1], env],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if started.returncode == 0:
            return wait_for(ready_text) - t0
        time.sleep(0.5)  # the previous server was still going away ("server exited unexpectedly")
    raise RuntimeError(f"tmux would not start a session: {started.stderr.strip()}")


def key_echo(n: int) -> list[float]:
    """One character typed into the bare app's Input until it shows; Enter clears every 40."""
    out: list[float] = []
    typed = ""
    for i in range(n):
        ch = "abcdefghij"[i % 10]
        t0 = time.perf_counter()
        tmux("send-keys", "-t", "b", "-l", ch)
        typed += ch
        out.append(wait_for(typed) - t0)
        if len(typed) >= 40:
            tmux("send-keys", "-t", "b", "Enter")
            wait_for("bare ready")
            typed = ""
    return out


def scans(cards: list[str], sent: list[tuple[float, float]] | None = None) -> list[float]:
    out: list[float] = []
    for card in cards:
        t0 = time.perf_counter()
        m0 = time.monotonic()
        tmux("send-keys", "-t", "b", card, "Enter")
        out.append(wait_for(f"Card {card} -") - t0)
        if sent is not None:  # monotonic, to line up with the app's own trace (bench/scan_stages.py)
            sent.append((m0, m0 + out[-1]))
    return out


def warm_data_dir(config: Path, folder: Path) -> tuple[Path, list[str]]:
    """A database made once (catalog synced, migrated), copied for each run so each starts fresh."""
    from kanban_terminal.config import load_config
    from kanban_terminal.services.terminal import Terminal

    terminal = Terminal.open(load_config(config), folder)
    cards = list(terminal.card_loops)
    terminal.close()
    return folder, cards


def pcts(values: list[float]) -> str:
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))] * 1000

    return f"p50 {at(0.50):7.1f}  p95 {at(0.95):7.1f}  p99 {at(0.99):7.1f}  max {ordered[-1] * 1000:7.1f} ms"


def bench_tmux(
    runs: int, n_scans: int, echoes: int, trace: bool = False, baseline: Path | None = None
) -> None:
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed: apt-get install -y tmux")
    config = ROOT / "config" / "demo.toml"
    python = sys.executable
    load = os.getloadavg()
    bare_launch, our_launch, echo, scan, base_launch, our_up = [], [], [], [], [], []
    sent: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="kt-tui-bench-") as tmp:
        trace_file = Path(tmp) / "trace.jsonl"
        traced = f"env KT_SCAN_TRACE={trace_file} {python} {ROOT / 'bench' / 'scan_stages.py'} run"
        runner = traced if trace else f"{python} -m kanban_terminal"
        warm, cards = warm_data_dir(config, Path(tmp) / "warm")
        cards = cards[:n_scans]
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE_APP)
        try:
            for i in range(runs):
                # Interleaved: each run measures the floor and the product in the same minutes.
                bare_launch.append(launch(f"{python} {bare}", "bare ready"))
                echo += key_echo(echoes)
                data = Path(tmp) / f"run{i}"
                shutil.copytree(warm, data)
                cmd = f"{runner} run --config {config} --data-dir {data}"
                if baseline is not None:  # the other checkout's `run`, on a copy of the same data
                    shutil.copytree(warm, Path(tmp) / f"base{i}")
                    base_cmd = f"{python} -m kanban_terminal run --config {config} --data-dir {tmp}/base{i}"
                    base_launch.append(launch(base_cmd, "Scan a kanban card", baseline))
                t0 = time.perf_counter()
                our_launch.append(launch(cmd, "Scan a kanban card"))
                # The runtime opens after the first paint (tui/boot.py): scans read meanwhile are
                # held and recorded once it is up; the scan figures below start after that.
                our_up.append(wait_gone("Upstream: starting") - t0)
                time.sleep(1.0)  # let the first status read and andon read settle, as a person would
                scan.extend(scans(cards, sent))
        finally:
            tmux("kill-server")
            # A socket of its own per run (SOCKET): do not leave one behind in tmux's folder each time.
            folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
            (folder / SOCKET).unlink(missing_ok=True)
        traces = _traces(trace_file) if trace else []
    print(f"tmux {SIZE[0]}x{SIZE[1]}, {runs} runs, load average at start {load[0]:.2f} {load[1]:.2f}")
    print(f"launch, bare Textual      ({len(bare_launch):4d}): {pcts(bare_launch)}")
    print(f"launch, kanban run        ({len(our_launch):4d}): {pcts(our_launch)}")
    print(f"  kanban run, runtime up  ({len(our_up):4d}): {pcts(our_up)}  (status bar no longer 'starting')")
    ratio = statistics.median(our_launch) / statistics.median(bare_launch)
    print(f"  median launch ratio run / bare: {ratio:.2f}x (target <= 3x, and <= 1.0 s on a quiet box)")
    if base_launch:
        print(f"launch, baseline run      ({len(base_launch):4d}): {pcts(base_launch)}  ({baseline})")
        base_ratio = statistics.median(base_launch) / statistics.median(bare_launch)
        print(f"  median launch ratio baseline / bare: {base_ratio:.2f}x")
    print(f"key echo, bare Textual    ({len(echo):4d}): {pcts(echo)}")
    print(f"scan -> banner, kanban    ({len(scan):4d}): {pcts(scan)}")
    p99 = sorted(scan)[min(len(scan) - 1, round(0.99 * len(scan)) - 1)]
    floor = sorted(echo)[min(len(echo) - 1, round(0.99 * len(echo)) - 1)]
    print(f"  p99 scan - p99 echo: {(p99 - floor) * 1000:.1f} ms (target <= 30 ms)")
    if trace:
        _report_traces(traces, sent)


def _traces(path: Path) -> list[Any]:
    from bench.scan_stages import load

    return load(str(path)) if path.exists() else []


def _report_traces(traces: list[Any], sent: list[tuple[float, float]]) -> None:
    """The app's own hops, plus the two it cannot see: send-keys until its input thread has the
    Enter (tmux, the pty, Textual's parser) and its frame written until the poll sees it."""
    from bench.scan_stages import report, row

    report(traces, "in the app, in tmux (--trace)")
    if len(traces) != len(sent):
        print(f"  ({len(traces)} traces for {len(sent)} scans: outside hops not lined up)")
        return
    pairs = [(t.marks, s) for t, s in zip(traces, sent, strict=True) if {"read", "frame"} <= set(t.marks)]
    if pairs:
        print(row("send-keys -> read", [(m["read"] - s0) * 1000 for m, (s0, _) in pairs]))
        print(row("frame -> seen", [(s1 - m["frame"]) * 1000 for m, (_, s1) in pairs]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "cpu":
        parser = argparse.ArgumentParser(description="CPU time to the first paint, headless")
        parser.add_argument("mode")
        parser.add_argument("--runs", type=int, default=7)
        parser.add_argument("--baseline-root", type=Path, default=None, help="another checkout's `run` too")
        args = parser.parse_args()
        bench_cpu(args.runs, args.baseline_root)
    elif len(sys.argv) > 1 and sys.argv[1] == "tmux":
        parser = argparse.ArgumentParser(description="TUI launch and scan-to-banner in tmux")
        parser.add_argument("mode")
        parser.add_argument("--runs", type=int, default=5)
        parser.add_argument("--scans", type=int, default=39)
        parser.add_argument("--echoes", type=int, default=60)
        parser.add_argument("--trace", action="store_true", help="the app's own hops (bench/scan_stages.py)")
        parser.add_argument("--baseline-root", type=Path, default=None, help="another checkout's `run` too")
        args = parser.parse_args()
        bench_tmux(args.runs, args.scans, args.echoes, args.trace, args.baseline_root)
    else:
        _headless_child()


if __name__ == "__main__":
    main()
