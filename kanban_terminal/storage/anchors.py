"""Card-log anchors: the log's head (row id + stored hash) kept outside the terminal's file.

A hash chain, keyed or not, cannot show that its newest rows were cut away, nor (for plain rows)
that someone rewrote a row and recomputed everything after it: the file alone agrees with itself.
An anchor kept elsewhere can: if the log still holds row N with the anchored hash, every row up to
N is as it was when the anchor left (each hash covers the one before it).

Anchors are kept in three places: the upstream peer's anchor store (`AnchorStore`, a table in the
peer's own SQLite file, fed by the retained MQTT message), the broker (the retained message itself,
adapters/anchor_fetch.py), and beside every backup (`<backup>.anchor.json`). This module reads and
writes those files; comparing them with a log is services/log_integrity.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SIDECAR_SUFFIX = ".anchor.json"
"""A backup's anchor file: `terminal-backup.db` -> `terminal-backup.db.anchor.json`."""

STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_anchor (
    terminal TEXT NOT NULL, row INTEGER NOT NULL, hash TEXT NOT NULL, key TEXT, at TEXT NOT NULL,
    site TEXT NOT NULL, line TEXT NOT NULL, received_at TEXT NOT NULL, conflict TEXT,
    PRIMARY KEY (terminal, row)
);
"""
KEEP_PER_TERMINAL = 20_000
"""Anchors kept per terminal (oldest dropped): 200 days at one every 15 minutes. More anchors only
narrow where a rewrite lies; the newest one proves the most."""


class AnchorFileError(Exception):
    """An anchors file cannot be read; the message says why."""


@dataclass(frozen=True)
class Anchor:
    """The head of one terminal's log at one moment."""

    terminal: str
    row: int
    hash: str
    at: str
    key: str | None = None
    """Fingerprint of the log key the row was keyed with (storage/log_key.py)."""
    site: str = ""
    line: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def head(sql: Any) -> tuple[int, str] | None:
    """(id, hash) of the newest card-log row on a sqlite3 connection; None for an empty log."""
    row = sql.execute("SELECT id, hash FROM card_log ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def stored_hashes(sql: Any, rows: list[int]) -> tuple[dict[int, str], int]:
    """The stored hash of each of `rows` that the log holds, and the log's highest id (0 if empty)."""
    found: dict[int, str] = {}
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found.update(
            (int(i), str(h))
            for i, h in sql.execute(f"SELECT id, hash FROM card_log WHERE id IN ({marks})", chunk)
        )
    last = sql.execute("SELECT max(id) FROM card_log").fetchone()[0]
    return found, int(last or 0)


def sidecar_path(backup: Path) -> Path:
    """`<backup>.anchor.json`; for a backup name so long that the suffix would pass NAME_MAX (255
    bytes on ext4: a 250-byte backup name is legal), the name's first 200 bytes plus 8 hex of its
    SHA-256, so the sidecar can still be written beside it."""
    name = backup.name + SIDECAR_SUFFIX
    if len(name.encode()) > 255:
        digest = hashlib.sha256(backup.name.encode()).hexdigest()[:8]
        name = backup.name.encode()[:200].decode(errors="ignore") + f"-{digest}{SIDECAR_SUFFIX}"
    return backup.with_name(name)


def write_sidecar(backup: Path, anchor: Anchor) -> Path:
    """Write `anchor` beside the backup file (0600, fsynced); returns the sidecar's path."""
    path = sidecar_path(backup)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(anchor.to_json(), f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    return path


class AnchorStore:
    """The upstream peer's anchors, in a table of its own SQLite file (the caller's connection).

    Every anchor is kept once per (terminal, row). A second anchor for the same row with another
    hash is not stored over the first: it is noted in `conflict`, because one of the two logs was
    rewritten, and the first one seen is the one that left the terminal earlier.
    """

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        db.executescript(STORE_SCHEMA)

    def record(self, anchor: Anchor, received_at: str) -> bool:
        """Keep `anchor`; False when it conflicts with one already kept (and is only noted)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute(
                "SELECT hash FROM log_anchor WHERE terminal = ? AND row = ?", (anchor.terminal, anchor.row)
            ).fetchone()
            if found is None:
                db.execute(
                    "INSERT INTO log_anchor (terminal, row, hash, key, at, site, line, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (anchor.terminal, anchor.row, anchor.hash, anchor.key, anchor.at, anchor.site,
                     anchor.line, received_at),
                )  # fmt: skip
                db.execute(
                    "DELETE FROM log_anchor WHERE terminal = ? AND row <= (SELECT row FROM log_anchor "
                    "WHERE terminal = ? ORDER BY row DESC LIMIT 1 OFFSET ?)",
                    (anchor.terminal, anchor.terminal, KEEP_PER_TERMINAL),
                )
            elif found[0] != anchor.hash:
                db.execute(
                    "UPDATE log_anchor SET conflict = ? WHERE terminal = ? AND row = ?",
                    (anchor.hash, anchor.terminal, anchor.row),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return found is None or found[0] == anchor.hash

    def anchors_of(self, terminal: str) -> list[Anchor]:
        return list(_store_rows(self.db, terminal))


def _store_rows(db: sqlite3.Connection, terminal: str | None) -> Iterator[Anchor]:
    sql = "SELECT terminal, row, hash, at, key, site, line FROM log_anchor"
    params: tuple[str, ...] = ()
    if terminal is not None:
        sql += " WHERE terminal = ?"
        params = (terminal,)
    for r in db.execute(sql + " ORDER BY terminal, row", params):
        yield Anchor(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6])


def _from_json(data: object, where: str) -> Anchor:
    if not isinstance(data, dict):
        raise AnchorFileError(f"{where}: an anchor must be a JSON object")
    try:
        row = data["row"]
        if not isinstance(row, int) or isinstance(row, bool) or row < 0:
            raise ValueError("row must be a whole number")
        return Anchor(
            str(data["terminal"]), row, str(data["hash"]), str(data.get("at", "")),
            data.get("key"), str(data.get("site", "")), str(data.get("line", "")),
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise AnchorFileError(f"{where}: not an anchor ({type(exc).__name__}: {exc})") from exc


def read_anchors(path: Path, terminal: str) -> list[Anchor]:
    """The anchors of `terminal` in the file at `path`, oldest row first.

    `path` is an upstream peer's database (its `log_anchor` table), a backup's sidecar (one JSON
    object), or a JSON-lines file of anchors (one object a line, as `verify-log` documents).

    Raises:
        AnchorFileError: the file cannot be read or holds something else.
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(16)
    except OSError as exc:
        raise AnchorFileError(f"{path}: {exc.strerror}") from exc
    if magic == b"SQLite format 3\x00":
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                found = list(_store_rows(db, terminal))
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise AnchorFileError(f"{path}: no anchor store in this database ({exc})") from exc
        return found
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    try:
        items: Iterable[object] = [json.loads(text)] if text.startswith("{") and "\n{" not in text else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]  # fmt: skip
    except json.JSONDecodeError as exc:
        raise AnchorFileError(f"{path}: not JSON ({exc})") from exc
    anchors = [_from_json(item, f"{path}") for item in items]
    # A backup made without the config knows no terminal id (""): the file was named by hand.
    return sorted((a for a in anchors if a.terminal in (terminal, "")), key=lambda a: a.row)
