"""The runtime's timed jobs and its serial scanners: threads the runtime starts, nothing else does.

`Periodic` calls one step every few seconds (andon escalation, the lost-card check); a failing step
is logged and tried again at the next period, so one bad read never ends the job. `SerialScanners`
runs one reader per configured `[[scanners]]` port and hands every complete line to the runtime's
scan entry; port state changes go out on the bus as `ScannerStateChanged`.

Nothing here decides anything about cards or andons (the use cases do) or knows a screen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from kanban_terminal.adapters.wire import RequestCancelMessage, encode
from kanban_terminal.config import SerialScannerSettings
from kanban_terminal.mqtt_settings import MqttSettings
from kanban_terminal.services.bus import Bus
from kanban_terminal.services.cancel_outbox import CancelOutbox
from kanban_terminal.services.events import ScannerStateChanged
from kanban_terminal.services.reconcile import Reconciler
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics

if TYPE_CHECKING:
    from kanban_terminal.adapters.mqtt_client import MqttLink
    from kanban_terminal.adapters.scanner_serial import SerialScanner

log = logging.getLogger(__name__)

TERMINATORS = {"CR": b"\r", "LF": b"\n", "TAB": b"\t"}


class Periodic:
    """A daemon thread that calls `step` every `every_s` seconds (the first call after one period),
    and at once after `wake()` (the runway job recomputes when a card changes, issue 18)."""

    def __init__(self, name: str, every_s: float, step: Callable[[], object], *, min_gap_s: float = 0.0):
        self.name = name
        self.every_s = every_s
        self.min_gap_s = min_gap_s
        """Least pause after a step before a wake runs the next: a burst of wakes (a flood of bin
        signals) then costs one step every `min_gap_s`, not one after another."""
        self._step = step
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Run the step now rather than at the end of the period (wakes coming together run it once)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.every_s)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self._step()
            except Exception:
                log.exception("%s failed; trying again in %.0f s", self.name, self.every_s)
            if self.min_gap_s and self._stop.wait(self.min_gap_s):
                return


def start_reconcile(terminal: Terminal, link: MqttLink, topics: LineTopics, after_s: float) -> Periodic:
    """Start the status reconciliation job (services/reconcile.py) on `link`; returns it to stop."""
    from datetime import timedelta

    from kanban_terminal.adapters.status_query import StatusQuerySender

    ask = StatusQuerySender(link, topics, terminal.config.terminal.id, terminal.clock)
    reconciler = Reconciler(terminal, ask, after=timedelta(seconds=after_s), connected=lambda: link.connected)
    job = Periodic("reconcile", reconciler.period_s, reconciler.step)
    job.start()
    return job


CANCELS_S = 5.0
"""The cancel outbox's timer. A re-route in this process and a reconnect wake it at once (the runtime
listens), so the timer only finds a re-route made by another process (the CLI's `reroute`) and
cancels due again: at 1 s it was one of an idle `serve`'s six wake-ups a second (issue 19)."""


def cancel_job(terminal: Terminal, link: MqttLink, settings: MqttSettings) -> Periodic:
    """The cancel outbox (services/cancel_outbox.py) on a timer: a re-route's cancels reach the
    broker at once, and are sent again every `republish_after_s` until upstream answers."""
    cancels = CancelOutbox(
        terminal,
        link,
        lambda payload: encode(RequestCancelMessage, payload),
        republish_after=timedelta(seconds=settings.republish_after_s),
    )
    return Periodic("cancels", CANCELS_S, cancels.step)


class SerialScanners:
    """One `SerialScanner` per configured port; codes go to `scan`, port states to the bus."""

    def __init__(
        self,
        settings: tuple[SerialScannerSettings, ...],
        bus: Bus,
        scan: Callable[[str, str], object],
    ):
        """Args:
        settings: the config's `[[scanners]]`.
        bus: where `ScannerStateChanged` is published.
        scan: called with (code, source) on the reader's thread; it records the scan.
        """
        self.settings = settings
        self._bus = bus
        self._scan = scan
        self._readers: list[SerialScanner] = []
        self._states: dict[str, bool] = {s.name: False for s in settings}
        self._lock = threading.Lock()

    def start(self) -> None:
        if not self.settings:  # pyserial only when a port is configured: 0.14 MB of `serve` (issue 19)
            return
        from kanban_terminal.adapters.scanner_serial import SerialScanner

        for cfg in self.settings:
            reader = SerialScanner(
                cfg.port,
                baud=cfg.baud,
                terminator=TERMINATORS[cfg.terminator],
                source=f"serial:{cfg.name}",
                on_code=self._on_code,
                on_state=self._state_reporter(cfg.name),
            )
            self._readers.append(reader)
            reader.start()

    def stop(self) -> None:
        for reader in self._readers:
            reader.stop()

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    def states(self) -> dict[str, bool]:
        """Whether each configured scanner's port is open now (all False before `start`)."""
        with self._lock:
            return dict(self._states)

    def _on_code(self, code: str, source: str) -> None:
        self._scan(code, source)  # the outcome reaches screens through the bus (ScanRecorded)

    def _state_reporter(self, name: str) -> Callable[[bool, str], None]:
        def on_state(connected: bool, detail: str) -> None:
            with self._lock:
                self._states[name] = connected
            # `serve` has no status bar: its log is where a lost scanner shows.
            log.log(logging.INFO if connected else logging.WARNING, "serial scanner %s: %s", name, detail)
            self._bus.publish(ScannerStateChanged(name, connected, detail))

        return on_state
