"""Inbound bin signals: deduplicate, and hand each one to `record_scan` like a scan.

A bin sensor saying "empty" is the same fact as an operator scanning the card, so it takes the same
use case (`record_scan` with `intent=EMPTY`, `source="mqtt:<device>"`, `at=` the device's time).
This module adds only what a network door needs on top:

* validation is not here: the wire schema (adapters/wire) turns a payload into a `BinSignal` or a
  reasoned refusal (kept by services/refusals.py) before this module sees it;
* deduplication by (device, boot id, seq) in `inbound_signal`, written in the same transaction as the
  card state, so QoS 1 redeliveries and device retries never raise a second request while a device
  that rebooted (new boot id, seq restarting at 0) is still heard;
* group commit: a burst is one unit of work (each signal through the unchanged `record_scan`,
  writing into the unit's buffered repositories, whose rows go to SQLite as multi-row statements), and
  the caller acknowledges each message to the broker only after the group has committed. One fsync
  per signal has a hard ceiling (stack.md 9); acknowledging before the commit is how a crash loses
  acknowledged signals.

It must not import paho: the MQTT adapter hands over plain bytes and an `ack` callable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from kanban_terminal.config_bins import BinIndex
from kanban_terminal.domain.inbound import BinSignal
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.delivery_issue import record_delivery_issue
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.errors import SignalNotStored
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

__all__ = ["BinSignal", "SignalApplier", "SignalNotStored", "SignalRejected", "SignalResult"]


@dataclass(frozen=True)
class SignalRejected:
    """Bus event: an inbound signal was refused (malformed, unknown device). Shown as a warning."""

    device: str
    reason: str
    """Escaped, safe to show and log."""


@dataclass(frozen=True)
class SignalResult:
    """What one signal did: `outcome` is None for a duplicate (already applied earlier)."""

    signal: BinSignal
    outcome: ScanOutcome | None

    @property
    def duplicate(self) -> bool:
        return self.outcome is None


BeforeCommit = Callable[[UnitOfWork, "list[SignalResult]"], None]
"""`SignalApplier.apply`'s hook: runs last inside the group's unit of work, with its results; it
may write into the unit and register steps for after its commit or rollback (`UnitOfWork.after_commit`,
`after_rollback`), which run before the group's events are announced."""


class SignalApplier:
    """Applies validated bin signals to a terminal, many per unit of work."""

    def __init__(self, terminal: Terminal, bins: BinIndex | None = None):
        """`bins`: the config's `BinIndex`, when the caller shares one with its wire check."""
        self.terminal = terminal
        self.bins = BinIndex(terminal.config.bins) if bins is None else bins

    def card_of(self, signal: BinSignal) -> str | None:
        """The card a signal is about: the device's named bin, else the device's only bin."""
        return self.bins.card_of(signal.device, signal.bin)

    def apply(
        self, signals: list[BinSignal], before_commit: BeforeCommit | None = None
    ) -> list[SignalResult]:
        """Apply `signals` in one unit of work; returns only after it has committed (fsynced).

        Each signal goes through `record_scan` in the group's unit of work, whose rows go to SQLite
        as multi-row statements at the commit. `before_commit(uow, results)` runs last inside it.
        The group's events (scans, requests raised) are announced only once it has committed.

        Raises:
            sqlalchemy.exc.SQLAlchemyError, sqlite3.Error: the group could not be committed;
                nothing of it is stored, and the caller must not acknowledge any of its messages.
        """
        terminal = self.terminal
        results: list[SignalResult] = []
        # `held`: the signal thread's own write connection, no pool checkout a group (db.py).
        with terminal.db.unit_of_work(release=terminal.bus.publish, held=True) as uow:
            received_at = terminal.clock()
            seen = uow.inbound.seen([(s.device, s.boot, s.seq) for s in signals])
            uow.scans.prefetch([card for s in signals if (card := self.card_of(s))])
            outcomes: list[tuple[str, str, int, str]] = []
            for signal, again in zip(signals, seen, strict=True):
                result = SignalResult(signal, None) if again else self._apply_one(uow, signal)
                if result.outcome is not None:
                    # `_value_`, not `.value` (a Python-level property): see services/scanning.py
                    outcomes.append((signal.device, signal.boot, signal.seq, result.outcome.kind._value_))
                results.append(result)
            # Each fresh key with its outcome, in one write (storage/inbound.py).
            uow.inbound.record(outcomes, received_at)
            if before_commit is not None:
                before_commit(uow, results)
        return results

    def _apply_one(self, uow: UnitOfWork, signal: BinSignal) -> SignalResult:
        # A storage error is raised out of record_scan (it is the group's unit of work): the whole
        # group rolls back, so no dedupe key commits without its effect and no ack loses a signal.
        outcome = record_scan(
            self.terminal,
            self.card_of(signal) or "",
            source=f"mqtt:{signal.device}",
            at=signal.at,
            intent=signal.intent,
            # The early-delivery guard protects against a person scanning the wrong card; a sensor
            # on the bin itself has measured the refill, so its "full" needs no confirmation.
            confirmed=signal.kind == "full",
            uow=uow,
        )
        if signal.short and outcome.kind is OutcomeKind.DELIVERED and outcome.card_id:
            # A weighing sensor's short count: the shortfall is requested in the same transaction.
            issue = record_delivery_issue(
                self.terminal, outcome.card_id, short=signal.short, source=outcome.source, uow=uow
            )
            if not issue.ok:
                log.warning("short count of %s not recorded: %s", signal.device, issue.message)
        return SignalResult(signal, outcome)


def prune_signals(terminal: Terminal, keep: timedelta = timedelta(days=14)) -> int:
    """Forget dedupe keys older than `keep` (longer than any broker session or device buffer)."""
    with terminal.db.unit_of_work() as uow:
        return uow.inbound.prune(terminal.clock() - keep)
