"""The unit of work: one write transaction, the repositories that write into it, and what waits for it.

Every write of the terminal goes through one of these (`Database.unit_of_work()`; the older
`transaction()` and `write_connection()` are views of it), so there is one transaction style:
this process's write turn (`Database.writing()`), one pooled connection, BEGIN IMMEDIATE, and
COMMIT fsynced (synchronous=FULL) unless the caller asked for `fsync=False`.

Grown from `ScanStore` (storage/scan_repo.py), whose design it keeps: a scan's rows wait in memory
and go to SQLite as a few multi-row statements when the unit is about to commit, so a group of
256 bin signals is one unit of work with 256 `record_scan` calls in it and costs a few statements,
not 12 a signal. The repositories reachable from it:

* `scans`: cards, requests (raise, close), loop sequence numbers (`ScanStore`, buffered);
* `log`: the chained card log (`card_log.BufferedLog`, shared with `scans`, so one chain);
* `outbox`: requests on their way to the broker (storage/outbox.py: PUBACK marks, fresh rows);
* `inbound`: dedupe keys of bin signals (storage/inbound.py);
* `rejected`: refused input kept for maintenance (storage/rejected_inputs.py, buffered);
* `supply`: supplier warnings, re-routes and their cancels, delivery-in-full records
  (storage/supply_rows.py);
* `andons`: andons, their escalation tiers, shelves and card-log rows (storage/andon_rows.py, on
  `session`);
* `session`: an ORM session on the same connection, for the use cases still written on SQLModel
  (andons, auth, catalog). Taking it flushes everything buffered first.

Events a use case announces (`collect`) are held and released only after the commit; a rollback
drops them. `after_commit` / `after_rollback` hooks run after the write turn has been given back,
so they never hold the write lock; a failing after-commit hook is logged, not raised: the data is
committed and the caller must still learn so (e.g. acknowledge its messages to the broker).

It must not decide anything (that is the domain's and the use cases') and must not import services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from kanban_terminal.storage.andon_rows import AndonRows
from kanban_terminal.storage.card_log import SESSION_KEY, BufferedLog
from kanban_terminal.storage.inbound import InboundKeys
from kanban_terminal.storage.log_key import LogKey
from kanban_terminal.storage.outbox import OutboxWrites
from kanban_terminal.storage.rejected_inputs import RejectedInputs
from kanban_terminal.storage.scan_repo import ScanStore, driver
from kanban_terminal.storage.supply_rows import SupplyRows

log = logging.getLogger(__name__)

Hook = Callable[[], None]


class UnitOfWork:
    """One open write transaction (BEGIN IMMEDIATE) and everything that writes into it.

    Made by `Database.unit_of_work()`, which flushes, commits or rolls back, and then runs the hooks
    and releases the events. Repositories never commit; only the unit of work does.
    """

    def __init__(self, conn: Connection, log_key: LogKey | None = None, sql: Any = None):
        self.conn = conn
        """The SQLAlchemy Core connection, inside its transaction (or, for a held unit, on top of
        the one begun on `sql`: see `session`)."""
        self.log_key = log_key
        """The terminal's card-log key: every log row written in this unit is keyed with it."""
        self.sql: Any = driver(conn) if sql is None else sql
        """Its sqlite3 connection: the repositories' plain SQL goes here (see scan_repo.py)."""
        self.scans = ScanStore(self.sql, log_key)
        self.log: BufferedLog = self.scans.log
        self.outbox = OutboxWrites(self.sql, self.flush, self._holds, self.scans.forget)
        self.inbound = InboundKeys(self.sql)
        self.rejected = RejectedInputs(self.sql)
        self.supply = SupplyRows(self.sql, self.flush)
        self.events: list[object] = []
        self._session: Session | None = None
        self._after_commit: list[Hook] = []
        self._after_rollback: list[Hook] = []
        self._orm_log_moved = False

    @property
    def session(self) -> Session:
        """An ORM session joined to this transaction (it never commits it)."""
        if self._session is None:
            self.flush()  # the ORM must see the rows still waiting in memory
            if not self.conn.in_transaction():
                # A held unit began on sqlite3 itself (Database._held_unit): begin SQLAlchemy's on
                # top (it joins), so the session joins it and never commits or rolls back itself.
                self.conn.begin()
            self._session = Session(bind=self.conn, expire_on_commit=False, autoflush=True)
            self._session.info[SESSION_KEY] = self.log_key
        return self._session

    @property
    def andons(self) -> AndonRows:
        """The andon repository, on this unit's ORM session."""
        return AndonRows(self.session)

    def collect(self, event: object) -> None:
        """Announce `event` once this unit has committed; dropped if it rolls back."""
        self.events.append(event)

    def after_commit(self, hook: Hook) -> None:
        """Run `hook` once the transaction is committed (durable), outside the write turn."""
        self._after_commit.append(hook)

    def after_rollback(self, hook: Hook) -> None:
        """Run `hook` if the transaction is rolled back, before the error reaches the caller."""
        self._after_rollback.append(hook)

    def flush(self) -> None:
        """Write everything waiting in memory, in an order the constraints accept.

        Needed before plain SQL that reads what the buffered repositories write (the unit does it
        before it commits; `outbox` and `inbound` do it before their own statements).
        """
        if self._session is not None:
            self._session.flush()
        self.scans.flush()
        self.rejected.flush()

    def _holds(self, request_ids: list[str], card_ids: list[str]) -> bool:
        """Whether a write of these requests or cards may still wait in memory: anything in the ORM
        session counts (it is not looked into), and the scan store's own writes."""
        return self._session is not None or self.scans.holds(request_ids, card_ids)

    # -- called by Database.unit_of_work() ---------------------------------------------------------

    @property
    def log_moved(self) -> bool:
        """Whether this unit appended card-log rows (through the ORM or the scan store's log)."""
        return self._orm_log_moved or self.log.moved

    def close_session(self) -> None:
        if self._session is not None:
            # `card_log.append` keeps the chain's tail in the session: set only by an append.
            self._orm_log_moved = self._orm_log_moved or "card_log_tail" in self._session.info
            self._session.close()
            self._session = None

    def committed(self, release: Callable[[object], None] | None) -> None:
        for hook in self._after_commit:
            try:
                hook()
            except Exception:  # committed is committed: the caller must still hear it
                log.exception("an after-commit step failed")
        events, self.events = self.events, []
        if release is not None:
            for event in events:
                release(event)

    def rolled_back(self) -> None:
        self.events.clear()
        for hook in self._after_rollback:
            try:
                hook()
            except Exception:  # the storage error is what the caller must see
                log.exception("an after-rollback step failed")
