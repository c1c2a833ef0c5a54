"""The App's andon half, as a mixin so app.py only gains a few lines: raise from any screen, the
team-lead login, the andon actions and the stop banner. Escalation is not here: the runtime runs
it (for the screen as for `serve`) and its results arrive as `AndonChanged` events.

Every use case runs in a worker thread (fsync, and the 0.5 s scrypt verify, never block the screen);
results come back through the bus (`AndonChanged`, `LineStateChanged`, `AndonRefused`) or
`call_from_thread`. Widgets only show: the App keeps the latest `AndonBoard`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from textual import work

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.auth import session_expired
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services.quality_stop import by_anyone
from kanban_terminal.tui.andon_watch import AndonWatchMixin
from kanban_terminal.tui.screens.andon import AndonScreen
from kanban_terminal.tui.screens.andon_dialogs import (
    BadgeEntry,
    BadgeScreen,
    CardActionEntry,
    CardActionScreen,
    RaiseAndonScreen,
    RaiseChoice,
    ResolveEntry,
    ResolveScreen,
    ShelveEntry,
    ShelveScreen,
)
from kanban_terminal.tui.screens.board import BoardScreen

if TYPE_CHECKING:
    # The use cases are imported where they run: they bring the storage stack, which the first
    # screen must not wait for (issue 15). `andon_init` runs once the runtime is up (tui/boot.py).
    from kanban_terminal.services.andon import AndonOutcome
    from kanban_terminal.services.andon_views import AndonBoard, AndonView, LineStateView
    from kanban_terminal.services.auth import AuthSession
    from kanban_terminal.services.terminal import Terminal

SOURCE = "keyboard"
_OnRefusal = Callable[[str, Rejection], None]


class AndonAppMixin(AndonWatchMixin):
    terminal: Terminal
    auth: AuthSession
    andon_board: AndonBoard | None = None
    kiosk: bool
    """Kiosk mode: no command palette; quitting and cancelling a call need a team lead (set by the App)."""

    def andon_init(self) -> None:
        from kanban_terminal.services.auth import AuthSession

        self.auth = AuthSession()
        self.andon_board = None
        stations = self.terminal.config.stations
        self.andon_station = stations[0].id if stations else ""

    @property
    def andon_line(self) -> LineStateView | None:
        return self.andon_board.line if self.andon_board else None

    def andon_mount(self) -> None:
        self.refresh_andon()
        self.set_interval(1.0, self._andon_second, name="andon")

    def _andon_second(self) -> None:
        """The team-lead session's idle timeout (the stop banner's clock comes with the App's view)."""
        state = self.auth.state
        idle = timedelta(minutes=self.terminal.config.andon.team_lead_idle_minutes)
        if state is not None and session_expired(state, self.terminal.clock(), idle):
            self.end_session(expired=True)
        self.look_for_andon_changes()

    @work(thread=True, group="session", exclusive=True, description="end the team-lead session")
    def end_session(self, expired: bool = False) -> None:
        """Idle timeout (logged by `current`) or an explicit log-out; the screen shows it at once."""
        if expired:
            self.auth.current(self.terminal, source=SOURCE)
        else:
            self.auth.logout(self.terminal, source=SOURCE)
        self.call_from_thread(self.notify, "Team-lead session ended.", title="Andon")
        self.call_from_thread(self._refresh_andon_screen)

    def _refresh_andon_screen(self) -> None:
        self.refresh_screen()

    def refresh_screen(self) -> None:
        """Give the screens a new view: the App's (app.py)."""
        raise NotImplementedError

    def action_andon_logout(self) -> None:
        if self.auth.state is not None:
            self.end_session()

    # -- what the screens ask for (messages up; a mixin, so handlers go by name, not @on) ----------

    def on_andon_screen_act(self, message: AndonScreen.Act) -> None:
        self.andon_action(message.action, message.view)

    def on_andon_screen_end_session(self, message: AndonScreen.EndSession) -> None:
        self.action_andon_logout()

    def on_board_screen_suspend_or_resume_card(self, message: BoardScreen.SuspendOrResumeCard) -> None:
        self.action_card_action()

    @work(thread=True, group="andon-read", exclusive=True, description="read the andon board")
    def refresh_andon(self) -> None:
        from kanban_terminal.services.andon_views import read_board

        board = read_board(self.terminal)
        self.call_from_thread(self._apply_andon_board, board)

    def andon_changed_elsewhere(self) -> None:
        self.refresh_andon()

    def _apply_andon_board(self, board: AndonBoard) -> None:
        self.andon_board = board
        self.refresh_screen()

    def andon_bus_event(self, event: object) -> None:
        """Called by the App for every bus event (on the event loop)."""
        from kanban_terminal.services.andon import AndonChanged, AndonRefused, LineStateChanged

        if isinstance(event, AndonChanged | LineStateChanged):
            self.refresh_andon()
        if isinstance(event, AndonChanged) and event.action == "escalated":
            a = event.view.andon
            who = (event.role or "").replace("_", " ")
            self.notify(
                f"Escalated: {who} called for {event.view.reason_label} at {a.station}", severity="warning"
            )
        elif (
            isinstance(event, AndonChanged)
            and event.action == "raised"
            and event.view.andon.kind is AndonKind.STOP
        ):
            self.bell()
        elif isinstance(event, AndonRefused):
            self.bell()
            self.notify(event.rejection.message, title="Not done", severity="error", timeout=10)

    def auth_text(self) -> str:
        state = self.auth.state
        return f"Team lead: {state.name}" if state else "No team lead logged in"

    # -- kiosk -----------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """F10 used to quit at once: on the floor, in kiosk mode, only a team lead quits. Either
        way the quit is a log row (services/quit_audit.py), written before the App exits."""
        if not self.kiosk or self.auth.state is not None:
            self._quit()
            return
        self.login_then(
            self._quit,
            "QUIT THE TERMINAL: team lead badge and PIN",
            refused="Not quit: in kiosk mode only a team lead may quit the terminal.",
            on_refusal=self._quit_refused,
        )

    def _quit_refused(self, badge: str, why: Rejection) -> None:
        from kanban_terminal.services.quit_audit import record_quit_refused

        record_quit_refused(self.terminal, badge, why, source=SOURCE)

    def _quit(self) -> None:
        self._quit_logged()

    @work(thread=True, group="quit", exclusive=True, description="log the quit, then quit")
    def _quit_logged(self) -> None:
        from kanban_terminal.services.quit_audit import record_quit
        from kanban_terminal.storage.errors import STORAGE_ERRORS, storage_reason

        state = self.auth.state
        try:
            record_quit(self.terminal, state.badge if state else None, source=SOURCE, kiosk=self.kiosk)
        except STORAGE_ERRORS as exc:
            # A team lead must be able to close a terminal whose disk fails (to fix it): quit, and
            # say on the way out that the row is missing.
            message = f"Quit; the quit was NOT logged: the terminal could not save ({storage_reason(exc)})."
            self.call_from_thread(self.exit, message=message)
            return
        self.call_from_thread(self.exit)

    def action_command_palette(self) -> None:
        if self.kiosk:
            self.notify("No command palette in kiosk mode.", title="Not done", severity="warning")
        else:
            super().action_command_palette()

    # -- actions ---------------------------------------------------------------------------------

    def action_raise_andon(self, kind: str) -> None:
        """F4 / F6 from any screen: pick station and reason; a STOP asks for a team lead first."""
        andon_kind = AndonKind(kind)
        anyone = self.terminal.config.quality_stop.anyone  # anyone may stop for quality (issue 18)
        if andon_kind is AndonKind.STOP and self.auth.state is None and not anyone:
            self.login_then(lambda: self._pick_reason(andon_kind), "STOP THE LINE: team lead badge and PIN")
        else:
            self._pick_reason(andon_kind)

    def _pick_reason(self, kind: AndonKind) -> None:
        from kanban_terminal.services.andon import raise_andon

        cfg = self.terminal.config

        def chosen(choice: RaiseChoice | None) -> None:
            if choice is None:
                return
            self.andon_station = choice.station

            def raise_it() -> None:
                self.run_andon(
                    lambda: raise_andon(
                        self.terminal, kind, choice.station, choice.reason, source=SOURCE, auth=self.auth
                    )
                )

            if self.auth.state is None and kind is AndonKind.STOP and not by_anyone(cfg, kind, choice.reason):
                self.login_then(raise_it, "STOP THE LINE: team lead badge and PIN")
            else:
                raise_it()

        self.push_screen(RaiseAndonScreen(kind, cfg.stations, cfg.andon_reasons, self.andon_station), chosen)

    def login_then(
        self,
        then: Callable[[], None],
        title: str,
        error: str = "",
        refused: str = "",
        on_refusal: _OnRefusal | None = None,
        sheet: str = "",
    ) -> None:
        """Ask for a team lead's badge and PIN, then do `then`; on Esc, say `refused` (if any).
        `on_refusal` (in a worker thread) logs what a refused login was for; `sheet` is shown to
        read first (BadgeScreen)."""

        def answered(entry: BadgeEntry | None) -> None:
            if entry is not None and entry.pin is not None:
                self._login(entry.badge, entry.pin, then, title, refused, on_refusal, sheet)
            elif refused:
                self.notify(refused, title="Not done", severity="warning")

        self.push_screen(BadgeScreen(title, need_pin=True, error=error, sheet=sheet), answered)

    @work(thread=True, group="login", exclusive=True, description="check badge and PIN")
    def _login(
        self,
        badge: str,
        pin: str,
        then: Callable[[], None],
        title: str,
        refused: str = "",
        on_refusal: _OnRefusal | None = None,
        sheet: str = "",
    ) -> None:
        from kanban_terminal.services.auth import login

        result = login(self.terminal, badge, pin, source=SOURCE)
        if isinstance(result, Rejection):
            if on_refusal is not None:
                on_refusal(badge, result)
            self.call_from_thread(self.bell)
            self.call_from_thread(self.login_then, then, title, result.message, refused, on_refusal, sheet)
            return
        self.auth.start(result)
        self.call_from_thread(then)

    def andon_action(self, what: str, view: AndonView) -> None:
        """Acknowledge, resolve or cancel the selected event (from the andon screen)."""
        from kanban_terminal.services.andon import acknowledge_andon, cancel_andon, resolve_andon

        andon = view.andon
        label = f"{andon.kind.value.upper()} {andon.station} {view.reason_label}"
        if what == "acknowledge":
            if self.auth.state is not None:
                badge = self.auth.state.badge
                self.run_andon(lambda: acknowledge_andon(self.terminal, andon.id, badge, source=SOURCE))
                return

            def acked(entry: BadgeEntry | None) -> None:
                if entry is not None:
                    self.run_andon(
                        lambda: acknowledge_andon(self.terminal, andon.id, entry.badge, source=SOURCE)
                    )

            self.push_screen(BadgeScreen(f"ACKNOWLEDGE: {label}", need_pin=False), acked)
        elif what == "resolve":
            if andon.kind is AndonKind.STOP and self.auth.state is None:
                self.login_then(
                    lambda: self.andon_action(what, view), "RESTART THE LINE: team lead badge and PIN"
                )
                return

            def resolved(entry: ResolveEntry | None) -> None:
                if entry is not None:
                    self.run_andon(
                        lambda: resolve_andon(
                            self.terminal,
                            andon.id,
                            entry.note,
                            source=SOURCE,
                            auth=self.auth,
                            actor=entry.badge,
                        )
                    )

            resolver = self.auth.state.badge if self.auth.state else None
            self.push_screen(ResolveScreen(label, resolver), resolved)
        elif what == "cancel":
            if self.kiosk and self.auth.state is None:
                self.login_then(
                    lambda: self.andon_action(what, view),
                    f"CANCEL {label}: team lead badge and PIN",
                    refused="Call not cancelled: in kiosk mode only a team lead may cancel a call.",
                )
                return
            self.run_andon(lambda: cancel_andon(self.terminal, andon.id, source=SOURCE, auth=self.auth))
        elif what == "shelve":
            self._shelve_source_of(view)

    def _shelve_source_of(self, view: AndonView) -> None:
        """Shelve the device that raised `view` (a chattering button): a team lead's action."""
        from kanban_terminal.services.andon_signals import DEVICE_SOURCE

        source = view.andon.source
        if not source.startswith(DEVICE_SOURCE):
            self.notify(
                f"This call was not raised by a device (it came from {source}): nothing to shelve.",
                severity="warning",
            )
            return
        device = source.removeprefix(DEVICE_SOURCE)
        if self.auth.state is None:
            self.login_then(
                lambda: self._ask_minutes(device), f"SHELVE DEVICE {device}: team lead badge and PIN"
            )
        else:
            self._ask_minutes(device)

    def _ask_minutes(self, device: str) -> None:
        from kanban_terminal.services.andon import shelve_source

        def chosen(entry: ShelveEntry | None) -> None:
            if entry is not None:
                self.run_andon(
                    lambda: shelve_source(self.terminal, device, entry.minutes, source=SOURCE, auth=self.auth)
                )

        who = f"Team lead {self.auth.state.name}" if self.auth.state else "No team lead logged in"
        self.push_screen(ShelveScreen(device, who, self.terminal.config.andon.shelve_max_minutes), chosen)

    def action_card_action(self) -> None:
        """Suspend or resume a card (board screen, F7): a team lead's action, so log in first."""
        if self.auth.state is None:
            self.login_then(self._ask_card, "SUSPEND OR RESUME A CARD: team lead badge and PIN")
        else:
            self._ask_card()

    def _ask_card(self) -> None:
        from kanban_terminal.services.suspension import suspend_or_resume

        def chosen(entry: CardActionEntry | None) -> None:
            if entry is not None:
                self.run_andon(
                    lambda: suspend_or_resume(
                        self.terminal, entry.card, source=SOURCE, auth=self.auth, note=entry.note
                    ),
                    title="Card",
                )

        who = f"Team lead {self.auth.state.name}" if self.auth.state else "No team lead logged in"
        self.push_screen(CardActionScreen(who), chosen)

    @work(thread=True, group="andon", description="andon action")
    def run_andon(self, action: Callable[[], AndonOutcome], title: str = "Andon") -> AndonOutcome:
        outcome = action()
        if outcome.ok:
            self.call_from_thread(self.notify, outcome.message, title=title)
        return outcome
