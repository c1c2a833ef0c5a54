"""The App's start when the runtime opens after the first paint, as a mixin so app.py only gains a
few lines (issue 15; the boot itself is tui/boot.py).

Until the runtime is handed over: scans are held in order (`EarlyReads`) and recorded, oldest first,
as soon as it is; keys that need the runtime (the App's and the screens' actions) say "starting"
instead of failing; the status bar says the link is starting. If it cannot be opened, the screen
says why and closes, and `run` exits as it did when it opened the runtime before the App.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.screen import Screen

from kanban_terminal.tui.messages import BusEvent
from kanban_terminal.tui.palette import clip
from kanban_terminal.tui.widgets.status_bar import LinkView

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.timer import Timer

    from kanban_terminal.runtime import Runtime
    from kanban_terminal.services.events import ScanOutcome
    from kanban_terminal.services.queries import Status
    from kanban_terminal.services.terminal import Terminal
    from kanban_terminal.tui.boot import EarlyReads, RuntimeBoot, RuntimeFailed, RuntimeOpened
    from kanban_terminal.tui.screens.base import TerminalScreen
    from kanban_terminal.tui.views import ScreenChrome

    _Base = App[None]
else:
    _Base = object

STARTING = "The terminal is starting: a moment, then try again."
BOOT_FAILED_SHOWN_S = 15.0
"""How long the reason the terminal could not start stays on the screen before `run` exits (any
App key closes it at once): long enough to read, short enough for a supervisor to restart it."""


_READ_CHARS = 30
"""A read named in a notice: a card code is 6-8 characters, a garbage read up to the field's 512."""


def _shown(code: str) -> str:
    """A read as a notice names it: cut to a few words' width (a 512-character garbage read filled
    the 80x24 screen), and to be shown as it is, not as markup (`notify(markup=False)`): "[/b]"
    from a scanner raised a markup error and "[b]B1001Z" lost its brackets."""
    return clip(code, _READ_CHARS)


def freeze_start_up() -> None:
    """Everything built at start-up lives as long as the App: out of the collector's way. Full
    collections over Textual's widget objects stalled Enter -> banner by ~120 ms every second or
    so; frozen, p99 went from 117 ms to ~50 ms (bench/scan_latency.py). Done after the first frame
    (the scan field shows first, issue 15), and with a boot once the runtime is up."""
    gc.collect()
    gc.freeze()


def log_screen(chrome: ScreenChrome, terminal: Terminal) -> TerminalScreen:
    # Imported when first shown, not at start: the first screen is the scan screen (issue 15).
    from kanban_terminal.tui.screens.log import CardLogReader, LogScreen

    return LogScreen(chrome, CardLogReader(terminal.db, terminal.clock, terminal.config.site.calendar))


def metrics_screen(chrome: ScreenChrome, terminal: Terminal) -> TerminalScreen:
    from kanban_terminal.tui.screens.metrics import MetricsReader, MetricsScreen

    return MetricsScreen(chrome, MetricsReader(terminal).lines)


class StartAppMixin(_Base):
    """Mixed into the App first: its `run_action` sees every key's action before the App's."""

    terminal: Terminal
    runtime: Runtime
    link_view: LinkView
    scanner_states: dict[str, bool]
    _boot: RuntimeBoot | None
    _early: EarlyReads[tuple[str, bool, str]]
    _link_view_of: Callable[[Status | None], LinkView]
    _unsubscribe: Callable[[], None] | None
    _starting_clock: Timer
    runtime_ready = False
    """The runtime is wired (set on the App's loop, once); until then scans are held."""
    boot_failed = ""
    """Why the runtime could not be opened, when it could not."""

    if TYPE_CHECKING:  # the App's (app.py) and the andon half's (andon_app.py)

        def refresh_screen(self) -> None: ...
        def refresh_status(self) -> object: ...
        def _record_scan(self, code: str, confirmed: bool = False, source: str = "keyboard") -> object: ...
        def _seed_recent(self) -> None: ...
        def _tick(self) -> None: ...
        def andon_init(self) -> None: ...
        def andon_mount(self) -> None: ...

    def on_mount(self) -> None:
        if self._boot is None:
            self._wire()
        else:  # the clock moves while the runtime opens (1-3 s on a busy box); `_wire` takes over
            self._starting_clock = self.set_interval(1.0, self.refresh_screen, name="starting-clock")

    def on_ready(self) -> None:
        if self._boot is None:
            freeze_start_up()
        else:  # after the first paint: the scan field shows and takes keys while the runtime opens
            self.call_after_refresh(self._boot.start, self.post_message)

    def _take(self, terminal: Terminal, runtime: Runtime) -> None:
        """The terminal and its runtime, from the App's __init__ or from the boot."""
        self.terminal = terminal
        self.runtime = runtime
        self.andon_init()
        self.link_view = self._link_view_of(None)

    def _wire(self) -> None:
        """Subscribe to the bus and start the reads and timers: at mount, or once the runtime is
        up when it is opened after the first paint."""

        def deliver(event: object) -> None:  # from any thread; the App handles it on its loop
            self.post_message(BusEvent(event))

        self._unsubscribe = self.terminal.bus.subscribe(deliver)
        # Subscribed first, then read: a port that opened before the App existed is shown too.
        self.scanner_states.update(self.runtime.scanner_states())
        self._seed_recent()
        self.refresh_status()
        self.set_interval(1.0, self._tick, name="clock")
        self.set_interval(2.0, self.refresh_status, name="status-poll")
        self.andon_mount()
        self.runtime_ready = True

    def on_runtime_opened(self, message: RuntimeOpened) -> None:
        self._starting_clock.stop()
        self._take(message.runtime.terminal, message.runtime)
        self._wire()
        self._record_early_reads()
        self.refresh_screen()
        freeze_start_up()  # the runtime's and the screens' objects (`freeze_start_up` says why)

    def on_runtime_failed(self, message: RuntimeFailed) -> None:
        self.boot_failed = message.reason
        self.link_view = LinkView("not started", None, 0, None)
        self.refresh_screen()
        self.bell()
        held = self._early.held()
        lost = f"\n{held} scan(s) read while starting NOT recorded." if held else ""
        self.notify(
            f"{message.reason}{lost}\nClosing in {BOOT_FAILED_SHOWN_S:.0f} s, or now with a function key.",
            title="The terminal could not start",
            severity="error",
            timeout=BOOT_FAILED_SHOWN_S,
            markup=False,  # the reason is an error's text (a path may hold "[")
        )
        self.set_timer(BOOT_FAILED_SHOWN_S, self.exit, name="boot-failed")

    async def run_action(self, action: Any, default_namespace: Any = None, namespaces: Any = None) -> bool:
        """Until the runtime is up, the App's and the screens' actions say so instead of failing (a
        field's own editing keys go through); after a failed start, any of them closes the screen."""
        of_app = default_namespace is None or isinstance(default_namespace, App | Screen)
        if self.runtime_ready or not of_app:
            return await super().run_action(action, default_namespace, namespaces)
        if self.boot_failed:
            self.exit()
        else:
            self.notify(STARTING, title="Starting", severity="warning", timeout=3)
        return True

    def submit_scan(self, code: str, confirmed: bool = False, source: str = "keyboard") -> object:
        """The scan path: recorded by the runtime, or held in order until it is up."""
        if self.boot_failed:  # never say "recorded later" for a read that never will be
            self.bell()
            self.notify(
                f"{_shown(code)} NOT recorded: the terminal could not start.", severity="error", markup=False
            )
            return None
        if self._early.hold((code, confirmed, source)):
            self.notify(
                f"{_shown(code)} read: recorded as soon as the terminal has started.", timeout=3, markup=False
            )
            return None
        return self._record_scan(code, confirmed, source)

    @work(thread=True, group="scan", description="record the scans read while starting")
    def _record_early_reads(self) -> None:
        # One thread, oldest first; reads that come meanwhile wait behind them (boot.py).
        def record(read: tuple[str, bool, str]) -> ScanOutcome:
            return self.runtime.scan(read[0], confirmed=read[1], source=read[2])

        self._early.drain(record)
