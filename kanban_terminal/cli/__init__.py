"""The `kanban-terminal` command: one verb per job, every verb headless except `demo` and `run`.

Exit codes: 0 done / scan accepted; 1 scan rejected; 2 usage or configuration error;
3 scan needs confirmation or was ignored as a repeat read; 4 backup/restore refused or failed,
or `doctor` found a FAIL.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import kanban_terminal.cli.serve_defer  # noqa: F401 - first of ours: before pydantic is imported
from kanban_terminal import __version__
from kanban_terminal.cli import delivery as cli_delivery
from kanban_terminal.cli import log as cli_log
from kanban_terminal.cli import maintenance as cli_maintenance
from kanban_terminal.cli import screen as cli_screen
from kanban_terminal.cli import status as cli_status
from kanban_terminal.cli import team_lead as cli_team_lead
from kanban_terminal.cli.closed_pipe import flushed, reader_went_away
from kanban_terminal.cli.scan_args import scan_exit_code, take_dash_code
from kanban_terminal.config import (
    ConfigError,
    MqttConfigError,
    TerminalConfig,
    load_config,
)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_NEEDS_ATTENTION = 0, 1, 2, 3
EXIT_FAILED = 4
"""backup / restore could not be done (data dir busy, damaged file); doctor found a FAIL."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kanban-terminal"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("KANBAN_CONFIG"),
        help="terminal configuration (TOML); env KANBAN_CONFIG",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("KANBAN_DATA_DIR"),
        help="where the terminal keeps its database; env KANBAN_DATA_DIR "
        "(default ~/.local/share/kanban-terminal)",
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        default=None,
        help="broker to use instead of the configured one, e.g. mqtt://host:1883 or "
        "mqtts://user@host:8883; env KANBAN_MQTT_URL (password: env KANBAN_MQTT_PASSWORD)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kanban-terminal", description="Line-side e-kanban and andon terminal."
    )
    parser.add_argument("--version", action="version", version=f"kanban-terminal {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    cli_screen.add_screen_parsers(verbs, _common)

    rejected = verbs.add_parser(
        "rejected", help="list rejected input (misreads, unknown cards, bad signals), newest first"
    )
    _common(rejected)
    rejected.add_argument("--limit", type=int, default=50, help="how many rows (default 50)")

    cli_screen.add_headless_parsers(verbs, _common)

    check = verbs.add_parser("check-config", help="validate a configuration file and list every problem")
    _common(check)
    check.add_argument("path", type=Path, nargs="?", help="the file to check (default: --config)")

    scan = verbs.add_parser("scan", help="record one scan headless, exactly as the screen would")
    _common(scan)
    scan.add_argument("code", nargs="?", help="the scanned code (one starting with '-' is read as a code)")
    scan.add_argument("--confirm", action="store_true", help="confirm an implausibly early delivery")
    scan.add_argument("--actor", help="badge id of the person scanning")
    cli_delivery.add_options(scan)

    status = verbs.add_parser("status", help="cards by loop and state, open requests with age and due time")
    _common(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    cli_maintenance.add_parsers(verbs, _common)
    cli_log.add_parsers(verbs, _common)
    cli_team_lead.add_parsers(verbs, _common)
    enroll = verbs.add_parser("enroll", help="set a team lead's PIN (stores only a salted scrypt hash)")
    _common(enroll)
    enroll.add_argument("badge", help="the team lead's badge id, as listed under [[people]]")
    enroll.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin (for scripts)")
    return parser


def _load(args: argparse.Namespace) -> TerminalConfig:
    if args.config is None:
        raise ConfigError(
            "<no config>",
            [],
        )
    return load_config(args.config)


class UsageError(Exception):
    """An argument that cannot be used; the message says which and why (exit 2)."""


def _data_dir(args: argparse.Namespace) -> Path:
    path = Path(args.data_dir) if args.data_dir else default_data_dir()
    problem = _data_dir_problem(path)
    if problem is not None:
        raise UsageError(f"--data-dir / KANBAN_DATA_DIR: {problem}")
    return path


def _data_dir_problem(path: Path) -> str | None:
    """Why `path` cannot be (or become) the data dir; None if it is a directory or can be created.

    Without this an existing regular file, or a file where a parent folder should be, surfaced as an
    unexpected FileExistsError / NotADirectoryError from deep inside (issue 7, CLI argv faults).
    """
    try:
        if path.exists():
            return None if path.is_dir() else f"{path} is a file, not a directory"
        existing = next(p for p in path.parents if p.exists())
        if not existing.is_dir():
            return f"{existing} is a file, so {path} cannot be created as a directory"
    except OSError as exc:  # a name longer than the file system allows, a symlink loop
        return f"{path}: {exc.strerror or type(exc).__name__}"
    return None


def _print_config_error(exc: ConfigError) -> None:
    if not exc.problems:
        print(
            "kanban-terminal: no configuration given. Use --config PATH or set KANBAN_CONFIG "
            "(try `kanban-terminal demo` for a demo line).",
            file=sys.stderr,
        )
        return
    print(f"{exc.source}: configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.path or args.config
    if path is None:
        print("kanban-terminal check-config: give the file to check", file=sys.stderr)
        return EXIT_USAGE
    cfg = load_config(Path(path))
    cards = sum(len(loop.card_id_list()) for loop in cfg.loops)
    print(
        f"{path}: OK - line {cfg.line.id}, terminal {cfg.terminal.id}, {len(cfg.stations)} stations, "
        f"{len(cfg.parts)} parts, {len(cfg.loops)} loops, {cards} cards"
    )
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    from kanban_terminal.domain.scans import OutcomeKind, Verdict
    from kanban_terminal.services.scanning import record_scan
    from kanban_terminal.services.terminal import Terminal

    terminal = Terminal.open(_load(args), _data_dir(args))
    try:
        if args.short or args.damaged:  # a delivery scan with what was short or damaged (issue 17)
            return cli_delivery.scan_with_issue(terminal, args)
        outcome = record_scan(terminal, args.code, source="cli", confirmed=args.confirm, actor=args.actor)
    finally:
        terminal.close()
    label = {Verdict.ACCEPTED: "ACCEPTED", Verdict.WARNING: "WARNING", Verdict.REJECTED: "REJECTED"}
    print(f"{label[outcome.verdict]}: {outcome.message}")
    if outcome.kind is OutcomeKind.NEEDS_CONFIRMATION:
        print("Run again with --confirm if the full bin really arrived.")
    return scan_exit_code(outcome)


def cmd_enroll(args: argparse.Namespace) -> int:
    from kanban_terminal.cli.login import NO_PIN, read_pin
    from kanban_terminal.services.auth import enroll
    from kanban_terminal.services.terminal import Terminal

    cfg = _load(args)
    badge = args.badge.strip().upper()
    pin = read_pin(f"New PIN for {badge}: ", from_stdin=args.pin_stdin)
    if pin is None:
        print(NO_PIN, file=sys.stderr)
        return EXIT_REJECTED
    if not args.pin_stdin and read_pin("Repeat the PIN: ", from_stdin=False) != pin:
        print("The two PINs differ; nothing was stored.", file=sys.stderr)
        return EXIT_REJECTED
    terminal = Terminal.open(cfg, _data_dir(args))
    try:
        refused = enroll(terminal, badge, pin, source="cli")
    finally:
        terminal.close()
    if refused is not None:
        print(f"NOT enrolled: {refused.message}", file=sys.stderr)
        return EXIT_REJECTED
    print(f"PIN stored (hashed) for {badge}.")
    return EXIT_OK


def cmd_rejected(args: argparse.Namespace) -> int:
    """What maintenance needs to see of refused input; it is stored escaped, so printing is safe."""
    from kanban_terminal.services.queries import rejected_inputs
    from kanban_terminal.services.terminal import Terminal

    terminal = Terminal.open(_load(args), _data_dir(args))
    try:
        rows = rejected_inputs(terminal, args.limit)
    finally:
        terminal.close()
    if not rows:
        print("No rejected input.")
    for row in rows:
        # A refused MQTT payload is kept up to 300 characters: show its start, the reason matters more.
        shown = row.input if len(row.input) <= 60 else row.input[:60] + "..."
        print(f"{row.at.astimezone():%Y-%m-%d %H:%M:%S}  {row.source:<14} {shown:<24} {row.reason}")
    return EXIT_OK


COMMANDS = {
    "rejected": cmd_rejected,
    "check-config": cmd_check_config,
    "scan": cmd_scan,
    "status": cli_log.bind(cli_status.cmd_status, _load, _data_dir),
    # The screen, serve and upstream (they start the runtime): cli/screen.py.
    **{verb: cli_log.bind(fn, _load, _data_dir) for verb, fn in cli_screen.COMMANDS.items()},
    # Backup, restore, doctor: cli/maintenance.py.
    **{verb: cli_log.bind(fn, _load, _data_dir) for verb, fn in cli_maintenance.COMMANDS.items()},
    # Card log, metrics, lost cards, printing and sizing (issue 6): verbs live in cli/log.py.
    **{verb: cli_log.bind(fn, _load, _data_dir) for verb, fn in cli_log.COMMANDS.items()},
    # Team-lead actions (issue 4): cli/team_lead.py.
    **{verb: cli_log.bind(fn, _load, _data_dir) for verb, fn in cli_team_lead.COMMANDS.items()},
    "enroll": cmd_enroll,
}


_URL_REPORTED = frozenset({"doctor"})
"""doctor reports a bad broker URL as a FAIL line among its checks; every other verb refuses it."""


def _broker_url_problem(args: argparse.Namespace) -> str | None:
    """Why the broker URL given to a connecting verb cannot be used, or None.

    Checked before any verb starts (`scan` and `status` too, which used to exit 0 with it), so a typo,
    a password in the URL or plain mqtt:// to another machine is refused before anything is created.
    """
    given = getattr(args, "mqtt", None)
    url, source = (given, "--mqtt") if given else (os.environ.get("KANBAN_MQTT_URL"), "KANBAN_MQTT_URL")
    if args.verb in _URL_REPORTED or not url:
        return None
    from kanban_terminal.adapters.mqtt_client import parse_mqtt_url

    try:
        parse_mqtt_url(url)
    except MqttConfigError as exc:
        return f"{source}: {exc}"
    return None


READ_ONLY_VERBS = frozenset({"status", "rejected", "export", "verify-log", "metrics", "sizing", "runway"})
"""Verbs that only read a terminal's database. Pointed at a data dir without one (a mistyped path,
the default dir on a PC where the terminal runs as another user) they used to create an empty
database and report on it: `verify-log` said "hash chain intact" over no rows, exit 0."""


def _missing_database(args: argparse.Namespace) -> str | None:
    if args.verb not in READ_ONLY_VERBS:
        return None
    from kanban_terminal.services.terminal import DB_FILENAME

    path = Path(args.data_dir) if args.data_dir else default_data_dir()
    if _data_dir_problem(path) is not None or (path / DB_FILENAME).is_file():
        return None  # a data dir that cannot be one is reported by `_data_dir`, more precisely
    return f"no terminal database in {path}: give the data dir of a terminal that has run (--data-dir)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    take_dash_code(parser, args, extra)
    problem = _broker_url_problem(args) or _missing_database(args)
    if problem is not None:
        print(f"kanban-terminal {args.verb}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return flushed(COMMANDS[args.verb](args))
    except ConfigError as exc:
        _print_config_error(exc)
        return EXIT_USAGE
    except (UsageError, MqttConfigError) as exc:
        print(f"kanban-terminal {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `status | head`: the reader went away (cli/closed_pipe.py)
        return reader_went_away()
    except Exception as exc:  # the last line of defence: a clear message, never a traceback
        from kanban_terminal.services.instance_lock import DataDirBusy
        from kanban_terminal.storage.backup import BackupError
        from kanban_terminal.storage.db import DatabaseError
        from kanban_terminal.storage.log_key import LogKeyError

        if isinstance(exc, DataDirBusy | BackupError):
            print(f"kanban-terminal {args.verb}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(exc, DatabaseError | LogKeyError):
            print(f"kanban-terminal: {exc}", file=sys.stderr)
            return EXIT_USAGE
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"kanban-terminal: unexpected error ({type(exc).__name__}: {exc}) at {stamp}", file=sys.stderr)
        if os.environ.get("KANBAN_DEBUG"):
            raise
        return 70
