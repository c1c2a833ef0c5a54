"""The terminal's card-log key: a per-terminal secret that turns the hash chain into an HMAC chain.

Without a secret, the chain only proves that rows fit together: anyone holding the database file can
edit a row and recompute every later SHA-256 (issue 17: `verify-log` said "intact" over such a file).
With the key, every row written after the key was made carries HMAC-SHA256(key, ...) instead, and a
chain recomputed without the key fails at the first row that was changed.

The key lives in a small JSON file, 0600, created on the terminal's first start (in the data dir,
or at `[terminal] log_key_file`). It also records `keyed_after_id`: the id of the last row that was
already in the log when the key was made. Rows up to it keep their plain SHA-256 (they were written
before any key existed); every row after it must be keyed. That boundary lives in the key file and
not in the database so that someone with only the database cannot move it: rewriting the keyed rows
as plain SHA-256 rows leaves them after the boundary, where only keyed rows are believed.

A key file that others may read is refused (the process exits with a message): a key that leaked
proves nothing. This module knows files only; it never reads the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

KEY_FILENAME = "log-key.json"
"""The key file's name in the data dir when the config names no other path."""
KEYED_PREFIX = "k1:"
"""Marks a keyed row's stored hash: `k1:` + hex HMAC-SHA256. A plain row's hash is bare hex."""


class LogKeyError(Exception):
    """The key file cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class LogKey:
    """A terminal's log key and the row after which every card-log row is keyed."""

    secret: bytes
    keyed_after_id: int
    """Rows with a greater id must be keyed; rows up to it were written before the key existed."""
    created_at: str
    path: Path

    @property
    def fingerprint(self) -> str:
        """A short public name of the key (SHA-256 of the secret), safe to print and to publish."""
        return hashlib.sha256(self.secret).hexdigest()[:16]

    @cached_property
    def _keyed(self) -> hmac.HMAC:
        return hmac.new(self.secret, digestmod=hashlib.sha256)

    def mac(self, message: bytes) -> str:
        """The stored hash of a keyed row over `message`: `k1:` + hex HMAC-SHA256."""
        # Copying an HMAC whose key is already absorbed skips the key's two padding blocks:
        # 3.7 vs 5.5 us for hmac.digest() a call (timeit, loaded box, same run). A keyed row costs
        # 33.7k instructions in chain_hash against 22.7k plain (callgrind, 5,000 rows): x1.5.
        h = self._keyed.copy()
        h.update(message)
        return KEYED_PREFIX + h.hexdigest()


def key_path(data_dir: Path, configured: Path | None) -> Path:
    """Where the key file is: the configured path, else `log-key.json` in the data dir."""
    return configured if configured is not None else data_dir / KEY_FILENAME


def _problem_with_mode(path: Path, st: os.stat_result) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if st.st_uid != os.getuid():
        return f"{path} belongs to uid {st.st_uid}, not to the user the terminal runs as ({os.getuid()})"
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose:
        return (
            f"{path} can be read or written by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"the card-log key must be private: run `chmod 600 {path}` if nobody else can have "
            "read it, or else treat the key as leaked"
        )
    return None


def load(path: Path) -> LogKey | None:
    """Read the key file at `path`; None when there is none.

    Raises:
        LogKeyError: the file is readable by others, not ours, or not a key file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogKeyError(f"cannot read the card-log key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as f:
        problem = _problem_with_mode(path, os.fstat(f.fileno()))
        if problem is not None:
            raise LogKeyError(f"refusing to start: {problem}")
        raw = f.read(4096)
    try:
        data = json.loads(raw)
        return LogKey(bytes.fromhex(data["key"]), int(data["keyed_after_id"]), str(data["created_at"]), path)
    except (ValueError, KeyError, TypeError) as exc:
        raise LogKeyError(
            f"{path} is not a card-log key file ({type(exc).__name__}: {exc}); restore it from the key "
            "backup (docs/OPERATIONS.md)"
        ) from exc


def load_or_create(path: Path, last_row_id: Callable[[], int], now: datetime | None = None) -> LogKey:
    """The key at `path`, made on first use: 32 random bytes, keyed after the log's current tail.

    Args:
        path: the key file.
        last_row_id: the database's highest card-log id now (0 for an empty log); asked only when
            the key is created.
        now: the creation time written into the file.

    Raises:
        LogKeyError: an existing file is unusable (see `load`), or the file cannot be written.
    """
    found = load(path)
    if found is not None:
        return found
    at = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    key = LogKey(secrets.token_bytes(32), last_row_id(), at, path)
    body = json.dumps(
        {"v": 1, "key": key.secret.hex(), "keyed_after_id": key.keyed_after_id, "created_at": at,
         "fingerprint": key.fingerprint},
        indent=1,
    ).encode()  # fmt: skip
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # open's mode is masked by the umask; this is not
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        # link, not rename: a key another process made meanwhile must win, never be replaced
        try:
            os.link(tmp, path)
        except FileExistsError:
            os.unlink(tmp)
            found = load(path)
            assert found is not None
            return found
        os.unlink(tmp)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise LogKeyError(f"cannot create the card-log key {path}: {exc.strerror}") from exc
    return key
