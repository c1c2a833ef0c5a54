"""The Textual application: wires the screens to the terminal's runtime.

The App starts no background job: the runtime (kanban_terminal/runtime/) runs the link, escalation,
the lost-card check and the serial scanners, for the screen exactly as for `serve`. The App only
subscribes to the bus and calls use cases. Scans run in a worker thread through the runtime's scan
entry (the fsync must never block the screen); what they committed comes back through the bus as
messages. The App keeps the latest view models; screens show them.

`run` builds the App with a `RuntimeBoot` instead of a runtime (tui/boot.py): the scan screen paints
from the config alone, then the runtime opens on another thread and is handed over; until then
scans are held in order and keys that need the runtime say so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import App
from textual.binding import Binding

from kanban_terminal.config_keyboard import key_label
from kanban_terminal.services.events import (
    CardsChanged,
    RequestRaised,
    ScannerStateChanged,
    ScanOutcome,
    ScanRecorded,
)
from kanban_terminal.tui.andon_app import AndonAppMixin
from kanban_terminal.tui.badge_reads import read_is_for_scan_path
from kanban_terminal.tui.boot import EarlyReads, RuntimeBoot
from kanban_terminal.tui.handover_app import HandoverAppMixin
from kanban_terminal.tui.link_views import link_view_from, offline_link
from kanban_terminal.tui.messages import BusEvent
from kanban_terminal.tui.palette import FLOOR_THEME
from kanban_terminal.tui.scan_app import ScanAppMixin
from kanban_terminal.tui.scanner_wins import ScannerWinsMixin
from kanban_terminal.tui.screens.andon import AndonScreen
from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.screens.board import BoardScreen
from kanban_terminal.tui.screens.scan import ScanScreen
from kanban_terminal.tui.start_app import StartAppMixin, log_screen, metrics_screen
from kanban_terminal.tui.supply_app import SupplyAppMixin
from kanban_terminal.tui.views import RecentRow, ScreenChrome, TerminalView
from kanban_terminal.tui.widgets.banner import outcome_expired
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.status_bar import LinkView

if TYPE_CHECKING:
    # Not imported to paint the first screen: they bring the storage stack (issue 15, tui/boot.py).
    from kanban_terminal.config import TerminalConfig
    from kanban_terminal.runtime import Runtime
    from kanban_terminal.services.queries import Status
    from kanban_terminal.services.signals import SignalRejected
    from kanban_terminal.services.terminal import Terminal

__all__ = ["KanbanApp", "RecentRow", "link_view_from"]


class KanbanApp(
    StartAppMixin,
    ScannerWinsMixin,
    SupplyAppMixin,
    AndonAppMixin,
    HandoverAppMixin,
    ScanAppMixin,
    App[None],
    inherit_bindings=False,
):
    CSS_PATH = "app.tcss"
    TITLE = "kanban-terminal"
    # The modes' screens are added in __init__ (`_add_modes`): each is built with what it shows.
    DEFAULT_MODE = "scan"
    # Default keys; `[keys]` in the config remaps them by id (config_keyboard.py says why these).
    # Textual's own App bindings are not inherited: its Ctrl+Q would quit past the kiosk check.
    BINDINGS = [
        Binding("f12", "switch_mode('scan')", "Scan", id="mode.scan"),
        Binding("f2", "switch_mode('board')", "Board", id="mode.board"),
        Binding("f3", "switch_mode('andon')", "Andon", id="mode.andon"),
        Binding("f4", "raise_andon('call')", "Call help", id="andon.raise_call"),
        Binding("f5", "switch_mode('log')", "Log", id="mode.log"),
        Binding("f6", "raise_andon('stop')", "Stop line", id="andon.raise_stop"),
        # F7-F9 act on the screen shown (andon: acknowledge, resolve, cancel; board: card action).
        Binding("ctrl+r", "switch_mode('metrics')", "Metrics", id="mode.metrics"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("ctrl+p", "command_palette", "Palette", show=False, id="app.palette", priority=True),
        # Not in the footer: 80 columns hold the eight keys above and no more; the sheet is offered by
        # itself once a shift (handover_app.py), and Ctrl+T is on the sheet's notice and in the README.
        Binding("ctrl+t", "handover", "Handover", id="app.handover", show=False),
    ]
    ENABLE_COMMAND_PALETTE = False  # its Ctrl+P binding is ours (above): kiosk mode refuses it
    _status_after_paint = False  # a board read is queued for after the next paint (on_bus_event)

    terminal: Terminal
    runtime: Runtime

    def __init__(
        self,
        terminal: Terminal | None = None,
        *,
        runtime: Runtime | None = None,
        boot: RuntimeBoot | None = None,
        demo: bool = False,
        link_view: Callable[[Status | None], LinkView] | None = None,
        device_view: Callable[[], tuple[tuple[str, str, str], ...]] | None = None,
        demo_hint: str = "",
        kiosk: bool = False,
    ) -> None:
        """Args:
        terminal: the terminal shown; None with `boot`.
        runtime: the running runtime (its link state, scanner states and scan entry); None shows
            the terminal offline through a runtime that is never started (tests), so no job runs.
        boot: opens the runtime after the first paint (`run`, `demo`: tui/boot.py), instead of
            `terminal` and `runtime`.
        link_view: how the status bar's link line is made (default: from `runtime`).
        device_view: status items of simulated devices (the demo's station).
        demo_hint: an extra line for the idle banner of the demo.
        kiosk: no command palette; quitting and cancelling a call need a team lead (andon_app.py).
        """
        super().__init__()
        if boot is not None:
            cfg = boot.config
        elif terminal is not None:
            cfg = terminal.config
        else:
            raise ValueError("KanbanApp needs a terminal or a boot")
        self.terminal_config: TerminalConfig = cfg
        self.use_command_palette = not kiosk
        self.set_keymap(cfg.keys.binding_keymap())
        self.register_theme(FLOOR_THEME)  # grey chrome: colour only for the abnormal (palette.py)
        # set_reactive, not `self.theme =`: the watcher queues a second parse of every stylesheet,
        # 0.3-0.4 s of the start on the shared box (cProfile); the theme is dark like the default, so
        # the dark-mode classes the watcher would set are already right.
        self.set_reactive(App.theme, FLOOR_THEME.name)
        self.events_seen = 0
        self.demo = demo
        if link_view is None and (runtime is not None or boot is not None):
            link_view = self._runtime_link
        self._link_view_of = link_view or offline_link
        self._device_view = device_view or tuple
        self._boot = boot
        self.kiosk = kiosk
        self._early: EarlyReads[tuple[str, bool, str]] = EarlyReads(held=boot is not None)
        self.last_outcome: ScanOutcome | None = None
        self.status: Status | None = None
        self.link_view = LinkView("starting", None, 0, None)
        self.devices: tuple[tuple[str, str, str], ...] = ()
        self._recent: list[RecentRow] = []
        self._unsubscribe: Callable[[], None] | None = None
        self.scanner_states: dict[str, bool] = {s.name: False for s in cfg.scanners}
        self._signal_warned: dict[str, datetime] = {}
        first_card = next((card for loop in cfg.loops for card in loop.card_id_list()), "")
        self.idle_text = "Scan a kanban card"
        if demo and first_card:
            keys = cfg.keys
            board, call, stop = (key_label(k) for k in (keys.board, keys.call_help, keys.stop_line))
            self.idle_text += f"\nDemo line: type {first_card} and Enter to scan a card."
            self.idle_text += f" {board} shows the board."
            self.idle_text += f"\n{call} calls help; {stop} stops the line (team lead badge E2001, PIN 4711)."
        if demo and demo_hint:
            self.idle_text += f"\n{demo_hint}"
        self.sub_title = f"{cfg.line.name} - terminal {cfg.terminal.id}"
        self.scanner_wins_init(cfg.wedge, self._is_card, frozenset(p.badge for p in cfg.people).__contains__)
        self._add_modes()
        if terminal is not None and boot is None:
            if runtime is None:
                from kanban_terminal.runtime import Runtime

                runtime = Runtime(terminal, None)
            self._take(terminal, runtime)

    def _add_modes(self) -> None:
        """Each mode's screen gets what it needs at construction (never the App): the chrome, and
        for the log and metrics screens a read-only way to the terminal."""
        cfg = self.terminal_config
        chrome = ScreenChrome(
            cfg.terminal.id,
            cfg.line.name or cfg.line.id,
            self.idle_text,
            cfg.display.live_refresh_seconds,
            key_label(cfg.keys.andon),
        )
        self.add_mode("scan", lambda: ScanScreen(chrome))
        self.add_mode("board", lambda: BoardScreen(chrome))
        self.add_mode("andon", lambda: AndonScreen(chrome))
        self.add_mode("log", lambda: log_screen(chrome, self.terminal))
        self.add_mode("metrics", lambda: metrics_screen(chrome, self.terminal))

    # -- lifecycle (the start: start_app.py) -----------------------------------------------------

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _is_card(self, code: str) -> bool:
        """One of this terminal's cards, or a garbled read of one: a scanner read in a badge field
        goes to the scan path (badge_reads.py)."""
        if not self.runtime_ready:  # no dialog is open before: only the scan field takes reads
            return False
        cfg = self.terminal.config
        badges = (p.badge for p in cfg.people)
        return read_is_for_scan_path(code, self.terminal.card_loops, badges, cfg.terminal.max_code_length)

    def _runtime_link(self, _status: Status | None) -> LinkView:
        return link_view_from(self.runtime.link_state())

    # -- scans -----------------------------------------------------------------------------------

    @on(ScanField.Scanned)
    def _on_scanned(self, event: ScanField.Scanned) -> None:
        self.submit_scan(event.code)

    @work(thread=True, group="scan", description="record a scan")
    def _record_scan(self, code: str, confirmed: bool = False, source: str = "keyboard") -> ScanOutcome:
        # The runtime records one scan at a time, in the order read (its serial scanners included);
        # the outcome comes back through the bus.
        return self.runtime.scan(code, source=source, confirmed=confirmed)

    def on_bus_event(self, message: BusEvent) -> None:
        from kanban_terminal.services.signals import SignalRejected  # loaded by the runtime by now

        event = message.event
        self.events_seen += 1  # the log and metrics screens follow it (tui/live.py)
        if isinstance(event, ScanRecorded):
            self.show_outcome(event.outcome)
        if isinstance(event, CardsChanged | RequestRaised) and not self._status_after_paint:
            # After the banner is painted (the board read's thread would compete with that paint),
            # once for a scan's two events: a thread worker cannot be cancelled (`exclusive`).
            self._status_after_paint = True
            self.call_after_refresh(self._read_status_after_paint)
        if isinstance(event, SignalRejected):
            self._warn_signal(event)
        if isinstance(event, ScannerStateChanged):
            self.scanner_states[event.name] = event.connected
            self.refresh_screen()
        self.andon_bus_event(event)

    def _read_status_after_paint(self) -> None:
        self._status_after_paint = False
        self.refresh_status()

    def _warn_signal(self, event: SignalRejected) -> None:
        """A refused bin signal, shown as a warning at most every 30 s per device: a flooding or
        misconfigured sensor must not bury the operator's screen (each one is in the log anyway)."""
        now = self.terminal.clock()
        last = self._signal_warned.get(event.device)
        if last is not None and (now - last).total_seconds() < 30:
            return
        self._signal_warned[event.device] = now
        # Plain text: the device and the reason come from the wire, where "[" is not markup.
        words = f"Bin sensor {event.device}: {event.reason}"
        self.notify(words, title="Signal refused", severity="warning", markup=False)

    # -- status ----------------------------------------------------------------------------------

    @work(thread=True, group="status", exclusive=True, description="read the board")
    def refresh_status(self) -> None:
        from kanban_terminal.services.queries import read_status

        status = read_status(self.terminal)
        self.call_from_thread(self._apply_status, status)

    def _apply_status(self, status: Status) -> None:
        self.status = status
        self.link_view = self._link_view_of(status)
        self.refresh_screen()

    def _tick(self) -> None:
        self.link_view = self._link_view_of(self.status)
        self.devices = self._device_view()
        shown_for = self.terminal.config.display.misread_banner_seconds
        if outcome_expired(self.last_outcome, self.terminal.clock(), shown_for):
            self.last_outcome = None  # an old misread no longer hides the state of the line
        self.refresh_screen()  # the clock moves: ages, durations and the stop banner's downtime
        self.handover_tick()

    def refresh_screen(self) -> None:
        """Give the screens of the current mode (a dialog's too) a new view; hidden modes get
        theirs when they come back (`TerminalScreen.Shown`)."""
        if not self.is_running:
            # Shutting down: Textual takes the screens apart before it stops the App's timers, and a
            # clock tick in between failed with NoMatches (StatusBar) now and then in tests/tui.
            return
        view = self.terminal_view()
        for screen in self.screen_stack:
            if isinstance(screen, TerminalScreen):
                screen.show(view)

    def terminal_view(self) -> TerminalView:
        """What the screens show, as of now: attributes down."""
        ready = self.runtime_ready
        return TerminalView(
            now=self.terminal.clock() if ready else datetime.now(UTC),
            link=self.link_view,
            last_outcome=self.last_outcome,
            scanners=tuple(self.scanner_states.items()),
            devices=self.devices,
            recent=tuple(self._recent),
            status=self.status,
            andon_board=self.andon_board,
            auth_text=self.auth_text() if ready else "Terminal starting",
            events_seen=self.events_seen,
            mono_s=self.terminal.monotonic() if ready else None,
        )

    @on(TerminalScreen.Shown)
    def _on_screen_shown(self, message: TerminalScreen.Shown) -> None:
        if self.is_running:
            message.screen.show(self.terminal_view())
