"""The scan's write path in plain SQL: the one hot path of the terminal.

A scan reads one card and writes up to five rows in one fsynced transaction. Through the ORM's unit
of work that cost ~1.4 ms of Python per scan against a ~0.2 ms fsync (bench/scan_latency.py); as
prepared driver statements it costs a small fraction of that, so "accepted" shows as soon as the disk
has it. Everything else (catalog, queries, andon) stays on SQLModel where speed does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kanban_terminal.storage.types import from_text, to_text


def driver(conn: Connection) -> Any:
    """The sqlite3 connection under `conn`, inside the transaction SQLAlchemy opened (BEGIN IMMEDIATE).

    SQLAlchemy's per-statement bookkeeping costs more than SQLite's execute on this path.
    """
    return conn.connection.driver_connection


@dataclass(frozen=True)
class StoredCard:
    state: str
    last_scan_at: datetime | None
    open_request_id: str | None
    request_raised_at: datetime | None
    retired: bool


def read_card(conn: Connection, card_id: str) -> StoredCard | None:
    row = (
        driver(conn)
        .execute(
            "SELECT c.state, c.last_scan_at, c.open_request_id, r.raised_at, c.retired "
            "FROM card c LEFT JOIN replenishment_request r ON r.id = c.open_request_id WHERE c.id = ?",
            (card_id,),
        )
        .fetchone()
    )
    if row is None:
        return None
    return StoredCard(
        row[0],
        from_text(row[1]) if row[1] else None,
        row[2],
        from_text(row[3]) if row[3] else None,
        bool(row[4]),
    )


def take_loop_seq(conn: Connection, loop_id: str) -> int:
    """Return the loop's next request sequence number and advance it."""
    (seq,) = (
        driver(conn)
        .execute("UPDATE loop SET next_seq = next_seq + 1 WHERE id = ? RETURNING next_seq - 1", (loop_id,))
        .fetchone()
    )
    return int(seq)


def insert_request(
    conn: Connection,
    *,
    request_id: str,
    card_id: str,
    loop_id: str,
    loop_seq: int,
    part_number: str,
    quantity: int,
    station: str,
    point_of_use: str,
    source: str,
    raised_at: datetime,
    due_at: datetime,
    status: str,
) -> None:
    driver(conn).execute(
        "INSERT INTO replenishment_request (id, card_id, loop_id, loop_seq, part_number, quantity, "
        "station, point_of_use, source, raised_at, due_at, status, publish_state, publish_count) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)",
        (
            request_id, card_id, loop_id, loop_seq, part_number, quantity, station, point_of_use, source,
            to_text(raised_at), to_text(due_at), status,
        ),
    )  # fmt: skip


def close_request(
    conn: Connection, request_id: str, *, status: str, at: datetime, lead_time_s: float | None
) -> None:
    driver(conn).execute(
        "UPDATE replenishment_request SET status = ?, closed_at = ?, lead_time_s = ? WHERE id = ?",
        (status, to_text(at), lead_time_s, request_id),
    )


def update_card(
    conn: Connection, card_id: str, *, state: str, at: datetime, open_request_id: str | None
) -> None:
    stamp = to_text(at)
    driver(conn).execute(
        "UPDATE card SET state = ?, state_since = ?, last_scan_at = ?, last_seen_at = ?, "
        "open_request_id = ? WHERE id = ?",
        (state, stamp, stamp, stamp, open_request_id, card_id),
    )
