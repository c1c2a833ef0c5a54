"""The maintenance verbs of `kanban-terminal`: `backup`, `restore` and `doctor`, all headless.

Kept out of cli/__init__.py so the verbs that check or copy the data dir live together; cli/__init__.py only
registers them. Exit codes as in cli/__init__.py: 4 when a backup or restore could not be done, or
`doctor` found a FAIL.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from kanban_terminal.config import TerminalConfig
from kanban_terminal.storage.log_key import LogKey

EXIT_OK, EXIT_FAILED = 0, 4

Common = Callable[[argparse.ArgumentParser], None]
Load = Callable[[argparse.Namespace], TerminalConfig]
DataDir = Callable[[argparse.Namespace], Path]


def add_parsers(verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: Common) -> None:
    """Register this module's verbs on the `kanban-terminal` parser."""
    backup = verbs.add_parser("backup", help="copy the database safely while the terminal keeps running")
    common(backup)
    backup.add_argument("path", type=Path, help="the backup file to write (replaced if it exists)")
    restore = verbs.add_parser(
        "restore", help="replace the database with a backup (the terminal must be stopped)"
    )
    common(restore)
    restore.add_argument("path", type=Path, help="the backup file to restore from")

    doctor = verbs.add_parser("doctor", help="check config, database, broker, serial ports, clock and disk")
    common(doctor)
    doctor.add_argument(
        "--serial", type=Path, action="append", default=[], help="a serial device to check (repeatable)"
    )
    doctor.add_argument("--min-free-mb", type=int, default=200, help="fail below this much free disk (MB)")
    doctor.add_argument("--broker-timeout", type=float, default=5.0, help="seconds to wait for the broker")


def _config_or_none(args: argparse.Namespace, load: Load) -> TerminalConfig | None:
    """The config when one is given (backup and restore work without one)."""
    return load(args) if getattr(args, "config", None) else None


def _terminal_id(args: argparse.Namespace, load: Load) -> str:
    config = _config_or_none(args, load)
    return config.terminal.id if config is not None else ""


def _log_key(args: argparse.Namespace, load: Load, data: Path) -> LogKey | None:
    """The terminal's card-log key, to check keyed rows (never created here)."""
    from kanban_terminal.storage import log_key

    config = _config_or_none(args, load)
    return log_key.load(log_key.key_path(data, config.terminal.log_key_file if config else None))


def cmd_backup(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.progress import cli_progress
    from kanban_terminal.services.maintenance import backup_terminal

    data = data_dir(args)
    try:
        with cli_progress("backup") as progress:
            pages = backup_terminal(data, args.path, progress=progress, terminal=_terminal_id(args, load))
    except OSError as exc:  # anything the checks in storage/backup.py did not foresee: still one line
        print(f"kanban-terminal backup: {exc.filename or args.path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{args.path}: backup written and verified ({pages} pages)")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.progress import cli_progress
    from kanban_terminal.services.maintenance import restore_terminal
    from kanban_terminal.storage.backup import backup_file_problem

    data = data_dir(args)
    # Before the data dir is locked: a path that cannot be opened is not a backup (and an overlong
    # name used to escape restore_terminal's is_file() as an OSError).
    problem = backup_file_problem(args.path)
    if problem is not None:
        print(f"kanban-terminal restore: {problem}", file=sys.stderr)
        return EXIT_FAILED
    try:
        with cli_progress("restore") as progress:
            result = restore_terminal(data, args.path, progress=progress, key=_log_key(args, load, data))
    except OSError as exc:
        print(f"kanban-terminal restore: {exc.filename or args.path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    if result.replaced_copy is not None:
        print(f"the database it replaced was saved to {result.replaced_copy}")
    print(f"{args.path}: restored ({result.pages} pages); card log verified ({result.chain.rows} rows)")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.cli.doctor import DoctorOptions, Level, run_checks

    checks = run_checks(
        DoctorOptions(
            config=args.config,
            data_dir=data_dir(args),
            mqtt_url=args.mqtt or os.environ.get("KANBAN_MQTT_URL"),
            mqtt_password=os.environ.get("KANBAN_MQTT_PASSWORD"),
            serial_ports=tuple(args.serial),
            min_free_bytes=args.min_free_mb * 1024 * 1024,
            broker_timeout=args.broker_timeout,
        )
    )
    for check in checks:
        print(check.line())
    return EXIT_FAILED if any(c.level is Level.FAIL for c in checks) else EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Load, DataDir], int]] = {
    "backup": cmd_backup,
    "restore": cmd_restore,
    "doctor": cmd_doctor,
}
