"""Logs are key=value lines, escaped, redacted, rotated 0600, and journald-shaped under systemd."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.logging_setup import LOG_DIRNAME, LOG_FILENAME, setup_logging

SECRET = "s3cret-Pa55word"


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _log_all(log: logging.Logger) -> None:
    log.info("scan %s accepted", "B1001Z", extra={"card": "B1001Z", "source": "serial:/dev/ttyUSB0"})
    log.warning("bad frame \x1b[2J\u202e from bin", extra={"payload": "x\ny"})
    log.error("connect failed for user t1 password %s", SECRET, extra={"url": f"mqtt://t1:{SECRET}@h"})
    try:
        raise ConnectionError(f"auth {SECRET} refused")
    except ConnectionError:
        log.exception("link down")


def test_file_and_stderr_lines(tmp_path: Path) -> None:
    err = io.StringIO()
    setup_logging(tmp_path, env={"KANBAN_MQTT_PASSWORD": SECRET}, stream=err)
    _log_all(logging.getLogger("kanban_terminal.test"))
    for handler in logging.getLogger().handlers:
        handler.flush()

    logfile = tmp_path / LOG_DIRNAME / LOG_FILENAME
    assert logfile.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / LOG_DIRNAME).stat().st_mode & 0o777 == 0o700
    for text in (logfile.read_text(), err.getvalue()):
        lines = text.splitlines()
        assert len(lines) == 4, "one line per event, the traceback included"
        assert lines[0].startswith("ts=") and lines[0].endswith(
            'level=info logger=kanban_terminal.test msg="scan B1001Z accepted" card=B1001Z '
            "source=serial:/dev/ttyUSB0"
        )
        assert "\x1b" not in text and "\u202e" not in text
        assert 'msg="bad frame \\x1b[2J\\u202e from bin" payload=x\\x0ay' in lines[1]
        assert SECRET not in text, text[text.find(SECRET) - 200 :]
        assert text.count("***") == 3  # message, url field, traceback
        assert lines[3].split(" ")[3] == 'msg="link' and "exc=" in lines[3] and "ConnectionError" in lines[3]


def test_under_journald_no_timestamp_and_a_priority_prefix() -> None:
    err = io.StringIO()
    setup_logging(None, env={"JOURNAL_STREAM": "8:12345"}, stream=err)
    log = logging.getLogger("kanban_terminal.test")
    log.info("started")
    log.error("disk full")
    assert err.getvalue().splitlines() == [
        "<6>level=info logger=kanban_terminal.test msg=started",
        '<3>level=error logger=kanban_terminal.test msg="disk full"',
    ]


def test_rotation_keeps_private_generations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kanban_terminal.logging_setup as ls

    monkeypatch.setattr(ls, "MAX_BYTES", 2000)
    setup_logging(tmp_path, stderr=False, env={})
    log = logging.getLogger("kanban_terminal.test")
    for n in range(200):
        log.info("scan %d", n)
    files = sorted((tmp_path / LOG_DIRNAME).iterdir())
    assert [f.name for f in files] == [LOG_FILENAME] + [f"{LOG_FILENAME}.{n}" for n in range(1, 6)]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert all(f.stat().st_size <= 2100 for f in files)


def test_a_second_setup_replaces_the_first(tmp_path: Path) -> None:
    setup_logging(tmp_path, env={}, stream=io.StringIO())
    setup_logging(tmp_path, env={}, stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_kanban", False)]
    assert len(ours) == 2
