"""Logging for a terminal nobody watches: one key=value line per event, safe to `cat`, free of secrets.

- Structured: `level=warning logger=kanban_terminal.x msg="..." card=B1001Z`, one event per line (a
  traceback becomes one escaped `exc=` field), so `grep card=B1001Z` and log shippers just work.
- Rotated: a size-capped file in `<data-dir>/logs/` (0600, like everything in the data dir), for a
  PC whose disk must not fill up over a year of unattended running.
- journald-friendly: under systemd (`JOURNAL_STREAM` is set) stderr lines carry a `<N>` syslog
  priority prefix and no timestamp, because journald adds its own and maps the prefix to a priority.
- Escaped: every message and field passes through `escape_external`, so a barcode or MQTT payload
  quoted in a log cannot carry escape sequences to the terminal of whoever reads it.
- Redacted: the values of secret environment variables (the MQTT password) never reach a handler.

Only long-running processes (`run`, `serve`) get the file; two processes rotating one file race.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kanban_terminal.domain.text import escape_external

LOG_DIRNAME = "logs"
LOG_FILENAME = "kanban-terminal.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
"""30 MB of logs at most: at ~200 bytes a line, well over a month of a busy line."""
SECRET_ENV = ("KANBAN_MQTT_PASSWORD",)
"""Environment variables whose values are secrets; any other KANBAN_*PASSWORD/_SECRET/_TOKEN too."""
REDACTED = "***"
MSG_LIMIT = 2000
EXC_LIMIT = 8000

# Attributes every LogRecord has; anything else on a record came in through `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SYSLOG = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The secret values to redact: named ones plus any KANBAN_*PASSWORD / *SECRET / *TOKEN variable."""
    names = set(SECRET_ENV) | {
        k for k in env if k.startswith("KANBAN_") and k.endswith(("PASSWORD", "SECRET", "TOKEN"))
    }
    # Very short values would redact ordinary words; a 1-3 character password is a problem of its own.
    return sorted((env[n] for n in names if len(env.get(n, "")) >= 4), key=len, reverse=True)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Replace secret values in a record's message and fields before any handler sees them."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = _redact(record.getMessage(), self.secrets)
            record.args = None
            for key, value in list(vars(record).items()):
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, _redact(value, self.secrets))
        return True


def _value(value: object, limit: int = MSG_LIMIT) -> str:
    text = escape_external(str(value), limit)
    if text == "" or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    """One `key=value` line per record; values escaped; the final line redacted once more."""

    def __init__(self, *, timestamps: bool, syslog_prefix: bool = False, secrets: Iterable[str] = ()):
        super().__init__()
        self.timestamps = timestamps
        self.syslog_prefix = syslog_prefix
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.timestamps:
            at = datetime.fromtimestamp(record.created, UTC)
            parts.append(f"ts={at.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}")
        parts += [
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_value(record.getMessage())}",
        ]
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                parts.append(f"{key}={_value(value)}")
        if record.exc_info:
            parts.append(f"exc={_value(self.formatException(record.exc_info), EXC_LIMIT)}")
        line = " ".join(parts)
        # Defence in depth: a secret inside a traceback or a field object's str() is caught here.
        line = _redact(line, self.secrets)
        if self.syslog_prefix:
            line = f"<{_SYSLOG.get(record.levelno, 6)}>{line}"
        return line


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file whose every generation is created 0600, whatever the umask."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        stream = open(fd, self.mode.replace("w", "a"), encoding=self.encoding or "utf-8")  # noqa: SIM115
        assert isinstance(stream, io.TextIOWrapper)  # text mode always gives one
        return stream


def setup_logging(
    data_dir: Path | None,
    *,
    level: int = logging.INFO,
    stderr: bool = True,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> list[logging.Handler]:
    """Configure the root logger for this process and return the handlers it installed.

    Args:
        data_dir: where the rotating log goes (`<data_dir>/logs/`); None for no file.
        level: the root level.
        stderr: also log to stderr (not for the TUI, which owns the terminal).
        env: the environment to read JOURNAL_STREAM and secrets from; default os.environ.
        stream: the stderr stand-in, for tests.
    """
    env = os.environ if env is None else env
    secrets = secret_values(env)
    redact = RedactSecrets(secrets)
    handlers: list[logging.Handler] = []
    if data_dir is not None:
        logs = data_dir / LOG_DIRNAME
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        file_handler = _PrivateRotatingFileHandler(
            logs / LOG_FILENAME, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8"
        )
        file_handler.setFormatter(KeyValueFormatter(timestamps=True, secrets=secrets))
        handlers.append(file_handler)
    if stderr:
        under_journald = bool(env.get("JOURNAL_STREAM"))
        stream_handler = logging.StreamHandler(stream or sys.stderr)
        stream_handler.setFormatter(
            KeyValueFormatter(timestamps=not under_journald, syslog_prefix=under_journald, secrets=secrets)
        )
        handlers.append(stream_handler)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_kanban", False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.addFilter(redact)
        # Marked as ours, so a second call replaces these handlers instead of stacking more.
        handler._kanban = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return handlers
