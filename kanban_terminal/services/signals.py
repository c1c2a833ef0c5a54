"""Inbound bin signals: deduplicate, and hand each one to `record_scan` like a scan.

A bin sensor saying "empty" is the same fact as an operator scanning the card, so it takes the same
use case (`record_scan` with `intent=EMPTY`, `source="mqtt:<device>"`, `at=` the device's time).
This module adds only what a network door needs on top:

* validation is not here: the wire schema (adapters/wire) turns a payload into a `BinSignal` or a
  reasoned refusal (kept by services/refusals.py) before this module sees it;
* deduplication by (device, boot id, seq) in `inbound_signal`, written in the same transaction as the
  card state, so QoS 1 redeliveries and device retries never raise a second request while a device
  that rebooted (new boot id, seq restarting at 0) is still heard;
* group commit: a burst is applied in one transaction (each signal through the unchanged
  `record_scan`, writing into one `ScanStore` whose rows go to SQLite as multi-row statements), and
  the caller acknowledges each message to the broker only after the group has committed. One fsync
  per signal has a hard ceiling (stack.md 9); acknowledging before the commit is how a crash loses
  acknowledged signals.

It must not import paho: the MQTT adapter hands over plain bytes and an `ack` callable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from kanban_terminal.domain.inbound import BinSignal
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.domain.text import escape_bytes, escape_external
from kanban_terminal.services.bus import Bus
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import batches
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.scan_repo import ScanStore, driver
from kanban_terminal.storage.types import to_text

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


class SignalNotStored(SQLAlchemyError):
    """A signal of the group hit a storage error: the whole group is rolled back, none acknowledged."""


class _JoinedDatabase:
    """A `Database` stand-in whose ORM transactions are savepoints inside one open group transaction.

    `record_scan` keeps a refused input through `terminal.db.transaction()`; pointed at this, that
    becomes a SAVEPOINT of the group, which commits once. The scan's own writes go into the group's
    `ScanStore` instead (`record_scan(store=...)`).
    """

    def __init__(self, db: Database):
        self.path = db.path
        self.conn: Connection | None = None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        assert self.conn is not None, "used outside a signal group"
        with (
            Session(bind=self.conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s,
            s.begin(),
        ):
            yield s

    reading = transaction


class _CollectingBus(Bus):
    """Holds the events `record_scan` announces until the group has really committed."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[object] = []

    def publish(self, event: object) -> None:
        self.held.append(event)


BeforeCommit = Callable[[Connection, "list[SignalResult]"], "Callable[[bool], None] | None"]
"""`SignalApplier.apply`'s hook: (connection, results) -> the step to run once the transaction has
committed (True) or rolled back (False)."""


class SignalApplier:
    """Applies validated bin signals to a terminal, many per transaction."""

    def __init__(self, terminal: Terminal):
        self.terminal = terminal
        self.cards = {(b.device, b.bin): b.card.upper() for b in terminal.config.bins}
        self.devices = {b.device for b in terminal.config.bins}
        self._joined = _JoinedDatabase(terminal.db)
        self._bus = _CollectingBus()
        # A view of the terminal whose writes join the group transaction and whose events wait.
        self._group_terminal = Terminal(
            terminal.config,
            cast(Database, self._joined),
            clock=terminal.clock,
            new_id=terminal.new_id,
            bus=self._bus,
        )

    def known(self, device: str) -> bool:
        return device in self.devices

    def card_of(self, signal: BinSignal) -> str | None:
        """The card a signal is about: the device's named bin, else the device's only bin."""
        return self.cards.get((signal.device, signal.bin)) or self.cards.get((signal.device, None))

    def apply(
        self, signals: list[BinSignal], before_commit: BeforeCommit | None = None
    ) -> list[SignalResult]:
        """Apply `signals` in one transaction; returns only after it has committed (fsynced).

        `before_commit(conn, results)` runs last inside the transaction and returns what to run
        once it has committed or rolled back, before the group's events are announced.

        Raises:
            sqlalchemy.exc.SQLAlchemyError, sqlite3.Error: the group could not be committed;
                nothing of it is stored, and the caller must not acknowledge any of its messages.
        """
        results: list[SignalResult] = []
        self._bus.held.clear()
        now_text = to_text(self.terminal.clock())
        after: Callable[[bool], None] | None = None
        try:
            with self.terminal.db.writing(), self.terminal.db.write_engine.connect() as conn, conn.begin():
                self._joined.conn = conn
                fresh = _claim_keys(driver(conn), signals, now_text)
                store = ScanStore(conn)
                store.prefetch([card for s in signals if (card := self.card_of(s))])
                outcomes: list[tuple[object, ...]] = []
                for signal, first in zip(signals, fresh, strict=True):
                    result = self._apply_one(store, signal) if first else SignalResult(signal, None)
                    if result.outcome is not None:
                        outcomes.append((signal.device, signal.boot, signal.seq, result.outcome.kind.value))
                    results.append(result)
                store.flush()
                _record_outcomes(driver(conn), outcomes)
                after = before_commit(conn, results) if before_commit else None
        except BaseException:
            if after is not None:
                after(False)
            raise
        finally:
            self._joined.conn = None
        if after is not None:
            try:
                after(True)
            except Exception:  # the group is stored: its messages must still be acknowledged
                log.exception("after-commit step of a signal group failed")
        # Committed: only now may screens and the relay hear about it.
        for event in self._bus.held:
            self.terminal.bus.publish(event)
        self._bus.held.clear()
        return results

    def _apply_one(self, store: ScanStore, signal: BinSignal) -> SignalResult:
        outcome: ScanOutcome = record_scan(
            self._group_terminal,
            self.card_of(signal) or "",
            source=f"mqtt:{signal.device}",
            at=signal.at,
            intent=signal.intent,
            # The early-delivery guard protects against a person scanning the wrong card; a sensor
            # on the bin itself has measured the refill, so its "full" needs no confirmation.
            confirmed=signal.kind == "full",
            store=store,
        )
        if outcome.kind is OutcomeKind.FAILED:
            # record_scan reports a storage error as a refusal; inside a group that must abort the
            # group, or the dedupe key would commit without its effect and the ack lose the signal.
            raise SignalNotStored(outcome.message)
        return SignalResult(signal, outcome)


def _claim_keys(db: Any, signals: list[BinSignal], now_text: str) -> list[bool]:
    """Insert the group's dedupe keys; True for each signal heard for the first time.

    A key already stored (a QoS 1 redelivery, a device retry) or met earlier in the same group is
    a duplicate. One multi-row INSERT a chunk: `RETURNING` names the keys it really inserted.
    """
    claimed: set[tuple[str, str, int]] = set()
    for chunk in batches.chunks(signals):
        marks, params = batches.values([(s.device, s.boot, s.seq, now_text, "") for s in chunk])
        rows = db.execute(
            f"INSERT OR IGNORE INTO inbound_signal (device, boot, seq, received_at, outcome) VALUES {marks} "
            "RETURNING device, boot, seq",
            params,
        ).fetchall()
        claimed.update((d, b, int(q)) for d, b, q in rows)
    fresh = []
    for signal in signals:
        key = (signal.device, signal.boot, signal.seq)
        fresh.append(key in claimed)
        claimed.discard(key)  # a second copy in the same group is a duplicate
    return fresh


def _record_outcomes(db: Any, outcomes: list[tuple[object, ...]]) -> None:
    """Store what each applied signal did beside its dedupe key (for maintenance)."""
    for chunk in batches.chunks(outcomes):
        marks, params = batches.values(chunk)
        db.execute(
            f"UPDATE inbound_signal SET outcome = v.column4 FROM (VALUES {marks}) AS v "
            "WHERE device = v.column1 AND boot = v.column2 AND seq = v.column3",
            params,
        )


def prune_signals(terminal: Terminal, keep: timedelta = timedelta(days=14)) -> int:
    """Forget dedupe keys older than `keep` (longer than any broker session or device buffer)."""
    cutoff = to_text(terminal.clock() - keep)
    with terminal.db.write_connection() as conn:
        return conn.exec_driver_sql("DELETE FROM inbound_signal WHERE received_at < ?", (cutoff,)).rowcount


def reject(bus: Bus, device: str, topic: str, reason: str) -> None:
    """Log a refused inbound message with its topic and reason and tell the screens."""
    log.warning("signal refused on %s: %s", escape_external(topic, 120), reason)
    bus.publish(SignalRejected(escape_external(device, 64), reason))


def describe_payload(payload: bytes) -> str:
    return escape_bytes(payload, 80)
