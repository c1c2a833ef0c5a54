"""Where a scan's time goes between the Enter key and the frame that shows its banner.

Hooks (installed by `install`, from the bench only: the product carries no tracing) stamp
`time.monotonic()` (CLOCK_MONOTONIC, the same clock in every process on Linux, so a bench driving
tmux from outside can line its own send-keys up with these) at each hop of one scan:

    read     the terminator key built in Textual's input thread (`events.Key.time`)
    loop     the App's loop takes that key (`on_event`)
    submit   the scan path is asked for it (`submit_scan`, on the loop)
    thread   the scan worker's thread runs (`Runtime.scan` entered)
    commit   the transaction is durable (`ScanRecorded` published, after the commit)
    handler  the App's loop takes the bus event (`on_bus_event`)
    shown    the App has given the screens the new view (`on_bus_event` returned)
    frame    the first frame after that is written (`App._display` returned with the banner in it)

plus, per scan, the frames written and the collector's passes (`gc.callbacks`) between read and
frame. `python bench/scan_stages.py run ARGS...` runs `kanban-terminal ARGS...` with the hooks and
writes one JSON line per scan to $KT_SCAN_TRACE (bench/tui_start.py --trace reads it).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

STAGES = ("read", "loop", "submit", "thread", "commit", "handler", "shown", "frame")


@dataclass
class ScanTrace:
    code: str = ""
    marks: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    """Frames written from the Enter key to the banner's (the banner's included)."""
    gc: list[tuple[int, float]] = field(default_factory=list)
    """(generation, ms) of each collection from the Enter key to the banner's frame."""
    frame_ms: list[float] = field(default_factory=list)
    """How long each of those frames took to render and hand to the driver."""
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    """(what, ms after the Enter key was read, ms it took) of the screen's update work meanwhile."""


class Tracer:
    def __init__(self, sink: Callable[[ScanTrace], None] | None = None) -> None:
        self.done: list[ScanTrace] = []
        self.current: ScanTrace | None = None
        self._sink = sink
        self._gc_start = 0.0

    def mark(self, stage: str, at: float | None = None) -> None:
        trace = self.current
        if trace is not None and stage not in trace.marks:
            trace.marks[stage] = time.monotonic() if at is None else at

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
        elif self.current is not None:
            self.current.gc.append((info["generation"], (time.monotonic() - self._gc_start) * 1000))

    def finish(self) -> None:
        trace, self.current = self.current, None
        if trace is not None:
            self.done.append(trace)
            if self._sink is not None:
                self._sink(trace)


def install(tracer: Tracer, *, render_headless: bool = False) -> None:
    """Wrap the hops of a scan in KanbanApp, the runtime and the bus (class-wide)."""
    importlib.import_module("kanban_terminal.tui")  # first: it sets the frame cap Textual reads on import
    from textual import events
    from textual._compositor import CompositorUpdate
    from textual.app import App

    from kanban_terminal.runtime.terminal_runtime import Runtime
    from kanban_terminal.services.bus import Bus
    from kanban_terminal.services.events import ScanRecorded
    from kanban_terminal.tui.app import KanbanApp

    gc.callbacks.append(tracer.on_gc)
    on_event, submit, scan = KanbanApp.on_event, KanbanApp.submit_scan, Runtime.scan
    bus_event, publish, display = KanbanApp.on_bus_event, Bus.publish, App._display

    async def traced_on_event(self: KanbanApp, event: events.Event) -> None:
        if isinstance(event, events.Key) and event.key == "enter" and not event.is_forwarded:
            tracer.finish()  # a scan whose banner never came (refused before the scan path)
            tracer.current = ScanTrace()
            tracer.mark("read", event.time)
            tracer.mark("loop")
        await on_event(self, event)

    def traced_submit(self: KanbanApp, code: str, *args: Any, **kwargs: Any) -> Any:
        tracer.mark("submit")
        if tracer.current is not None:
            tracer.current.code = code
        return submit(self, code, *args, **kwargs)

    def traced_scan(self: Runtime, code: str, **kwargs: Any) -> Any:
        tracer.mark("thread")
        return scan(self, code, **kwargs)

    def traced_publish(self: Bus, event: object) -> None:
        if isinstance(event, ScanRecorded):
            tracer.mark("commit")
        publish(self, event)

    def traced_bus_event(self: KanbanApp, message: Any) -> None:
        scan_event = isinstance(message.event, ScanRecorded)
        if scan_event:
            tracer.mark("handler")
        bus_event(self, message)
        if scan_event:
            tracer.mark("shown")

    def traced_display(self: App[Any], screen: Any, renderable: Any) -> None:
        t0 = time.monotonic()
        display(self, screen, renderable)
        if render_headless and self.is_headless and isinstance(renderable, CompositorUpdate):
            renderable.render_segments(self.console)  # the text a terminal would have been sent
        trace = tracer.current
        if trace is None or renderable is None:
            return
        now = time.monotonic()
        trace.frames += 1
        trace.frame_ms.append((now - t0) * 1000)
        if "shown" in trace.marks:
            tracer.mark("frame", now)
            tracer.finish()

    def span(cls: Any, name: str) -> None:
        inner = getattr(cls, name)

        def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.monotonic()
            try:
                return inner(self, *args, **kwargs)
            finally:
                trace = tracer.current
                if trace is not None and "read" in trace.marks:
                    t1 = time.monotonic()
                    label = f"{type(self).__name__}.{name}"
                    trace.spans.append((label, (t0 - trace.marks["read"]) * 1000, (t1 - t0) * 1000))

        setattr(cls, name, traced)

    from textual._compositor import Compositor
    from textual.message_pump import MessagePump
    from textual.screen import Screen

    dispatch = MessagePump._dispatch_message

    async def traced_dispatch(self: MessagePump, message: Any) -> None:
        # What the loop does between the new view and its frame (the hop that holds the tail).
        trace = tracer.current
        if trace is None or "shown" not in trace.marks:
            await dispatch(self, message)
            return
        t0 = time.monotonic()
        try:
            await dispatch(self, message)
        finally:
            ms = (time.monotonic() - t0) * 1000
            if ms >= 0.5 and tracer.current is trace:
                label = f"{type(self).__name__}:{type(message).__name__}"
                trace.spans.append((label, (t0 - trace.marks["read"]) * 1000, ms))

    MessagePump._dispatch_message = traced_dispatch  # type: ignore[method-assign]

    for cls, name in (
        (Screen, "_on_timer_update"),
        (Screen, "_refresh_layout"),
        (Compositor, "render_update"),
        (Compositor, "update_widgets"),
    ):
        span(cls, name)
    KanbanApp.on_event = traced_on_event  # type: ignore[method-assign]
    KanbanApp.submit_scan = traced_submit  # type: ignore[method-assign]
    Runtime.scan = traced_scan  # type: ignore[method-assign]
    Bus.publish = traced_publish  # type: ignore[method-assign]
    KanbanApp.on_bus_event = traced_bus_event  # type: ignore[method-assign]
    App._display = traced_display  # type: ignore[method-assign]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def row(name: str, ms: list[float]) -> str:
    """One hop's p50 / p90 / p99 / max."""
    return f"  {name:<18}{pct(ms, 0.5):8.2f}{pct(ms, 0.9):8.2f}{pct(ms, 0.99):8.2f}{max(ms):8.2f}"


def _ms(t: ScanTrace, a: str, b: str) -> float:
    return (t.marks[b] - t.marks[a]) * 1000


def report(traces: list[ScanTrace], title: str, worst: int = 5, spans: bool = False) -> None:
    """Per-hop p50 / p99 / max in ms, then the slowest scans hop by hop."""
    whole = [t for t in traces if all(s in t.marks for s in STAGES)]
    print(f"{title}: {len(whole)} scans traced end to end ({len(traces) - len(whole)} incomplete)")
    if not whole:
        return
    print(f"  {'hop':<18}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}  ms")
    hops = list(zip(STAGES, STAGES[1:], strict=False))
    for a, b in hops:
        print(row(f"{a} -> {b}", [_ms(t, a, b) for t in whole]))
    print(row("read -> frame", [_ms(t, "read", "frame") for t in whole]))
    frames = [t.frames for t in whole]
    gcs = [g for t in whole for g in t.gc]
    longest = max((ms for _, ms in gcs), default=0.0)
    gen2 = sum(1 for g, _ in gcs if g == 2)
    print(
        f"  frames per scan p50 {pct(frames, 0.5)} max {max(frames)}; collections in the window: {len(gcs)}"
    )
    print(f"  (gen2 {gen2}, longest {longest:.1f} ms)")
    print("  slowest scans (ms per hop, frames with their render ms, collections):")
    for t in sorted(whole, key=lambda t: _ms(t, "read", "frame"), reverse=True)[:worst]:
        each = " ".join(f"{_ms(t, a, b):.1f}" for a, b in hops)
        frame_ms = ",".join(f"{ms:.1f}" for ms in t.frame_ms)
        print(f"    {_ms(t, 'read', 'frame'):6.1f} = {each}  frames [{frame_ms}] gc {t.gc}")
        if spans:
            print("      " + " ".join(f"{n.split('.')[-1]}@{at:.1f}+{ms:.1f}" for n, at, ms in t.spans))


def load(path: str) -> list[ScanTrace]:
    with open(path, encoding="utf-8") as f:
        return [ScanTrace(**json.loads(line)) for line in f if line.strip()]


def _run() -> None:
    """`python bench/scan_stages.py run ARGS...`: the CLI with the hooks, traces to $KT_SCAN_TRACE."""
    out = open(os.environ["KT_SCAN_TRACE"], "a", encoding="utf-8")  # noqa: SIM115 (lives with the process)

    def sink(trace: ScanTrace) -> None:
        out.write(json.dumps(asdict(trace)) + "\n")
        out.flush()

    install(Tracer(sink))
    from kanban_terminal.cli import main

    raise SystemExit(main(sys.argv[2:]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        _run()
    else:
        report(load(sys.argv[1]), sys.argv[1])
