"""The card-log, metrics and sizing verbs of `kanban-terminal` (issue 6), all headless.

Kept out of cli/__init__.py so the verbs of each feature live together; cli/__init__.py only registers them.
Exit codes as in cli/__init__.py; `verify-log` exits 1 when the chain is broken, `lost-cards` and `audit`
exit 3 when cards are missing, so a cron job or a shift-start script can act on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kanban_terminal.config import TerminalConfig

if TYPE_CHECKING:
    from kanban_terminal.services.log_query import LogFilter
    from kanban_terminal.services.terminal import Terminal

EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_ATTENTION = 0, 1, 2, 3

Common = Callable[[argparse.ArgumentParser], None]
Load = Callable[[argparse.Namespace], TerminalConfig]
DataDir = Callable[[argparse.Namespace], Path]


def _when(value: str) -> str:
    """The screen's time words: an ISO date or date-time (in the site's time zone unless one is
    given) or `7d` / `12h` / `30m` ago; checked here (a bad one exits 2 before anything opens),
    resolved against the terminal's clock and zone in `_filter`."""
    from kanban_terminal.services.log_query import QueryError, parse_time

    try:
        parse_time(value, datetime.now(UTC))
    except QueryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_filter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--card", help="card id")
    parser.add_argument("--part", help="part number")
    parser.add_argument("--loop", help="loop id")
    parser.add_argument("--station", help="station id")
    parser.add_argument(
        "--event",
        action="append",
        default=[],
        help="event name; repeat for several; 'andon' for every andon event",
    )
    parser.add_argument("--source", help="input door, e.g. keyboard or serial: (every serial port)")
    parser.add_argument("--actor", help="badge id")
    parser.add_argument(
        "--since", type=_when, help="from this time: ISO (site time zone if none given) or 7d / 12h / 30m ago"
    )
    parser.add_argument("--until", type=_when, help="before this time (same forms as --since)")
    parser.add_argument("--text", help="free text in card, loop, request, actor or detail")


def add_parsers(verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: Common) -> None:
    """Register this module's verbs on the `kanban-terminal` parser."""
    p = verbs.add_parser("export", help="write the (filtered) card log as CSV, newest first")
    common(p)
    add_filter_args(p)
    p.add_argument("--out", type=Path, required=True, help="CSV file to write ('-' for stdout)")

    p = verbs.add_parser(
        "verify-log", help="check the card log's hash chain (and its anchors); exit 1 when broken"
    )
    common(p)
    p.add_argument(
        "--anchors",
        action="append",
        default=[],
        metavar="FILE|URL",
        help="also prove no row was cut or rewritten up to the last anchor: an upstream peer's database, "
        "a backup's .anchor.json, a JSON-lines file, or mqtt[s]://host (the retained anchor); repeatable",
    )

    p = verbs.add_parser("metrics", help="loop, source (supplier scorecard) and andon metrics")
    common(p)
    p.add_argument("--days", type=int, default=28, help="window in days (default 28)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = verbs.add_parser("sizing", help="recommended card counts from measured demand and lead time")
    common(p)
    p.add_argument("--days", type=int, default=90, help="history to use, in days (default 90)")
    p.add_argument(
        "--scan-delay-min",
        type=float,
        default=5.0,
        help="allowance between a bin emptying and its card being scanned (default 5 min)",
    )
    p.add_argument("--service", type=float, default=0.95, choices=(0.90, 0.95, 0.98, 0.99))
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = verbs.add_parser("lost-cards", help="cards not seen for too long; --flag marks them lost")
    common(p)
    p.add_argument("--flag", action="store_true", help="flag them lost in the card log")
    p.add_argument("--actor", help="badge id of the person flagging")

    p = verbs.add_parser("audit", help="compare the cards found on the floor with the active cards")
    common(p)
    p.add_argument("codes", nargs="*", help="scanned codes (or use --from)")
    p.add_argument("--from", dest="from_file", type=Path, help="file with one scanned code per line")
    p.add_argument("--loop", action="append", default=[], help="audit only this loop (repeatable)")
    p.add_argument("--flag", action="store_true", help="flag the missing cards lost")

    p = verbs.add_parser("print-cards", help="printable A4 SVG sheets of kanban cards with QR codes")
    common(p)
    p.add_argument("cards", nargs="*", help="card ids")
    p.add_argument("--loop", action="append", default=[], help="every active card of this loop")
    p.add_argument("--missing", action="store_true", help="the cards currently flagged lost")
    p.add_argument("--out", type=Path, required=True, help="SVG file (page 2 on is FILE-2.svg, ...)")

    p = verbs.add_parser("replace-card", help="retire a lost card and register a new id for its loop")
    common(p)
    p.add_argument("card", help="the lost card's id")
    p.add_argument("--actor", help="badge id of the person replacing it")
    p.add_argument("--out", type=Path, help="also print the new card to this SVG file")


def _open(args: argparse.Namespace, load: Load, data_dir: DataDir) -> Terminal:
    from kanban_terminal.services.terminal import Terminal

    return Terminal.open(load(args), data_dir(args))


def _filter(args: argparse.Namespace, terminal: Terminal) -> LogFilter:
    from kanban_terminal.services.log_query import LogFilter, parse_time

    now, zone = terminal.clock(), terminal.config.site.calendar.zone
    return LogFilter(
        card=args.card,
        part=args.part,
        loop=args.loop,
        station=args.station,
        events=tuple(args.event),
        source=args.source,
        actor=args.actor,
        since=parse_time(args.since, now, zone) if args.since else None,
        until=parse_time(args.until, now, zone) if args.until else None,
        text=args.text,
    )


def cmd_export(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.progress import cli_progress
    from kanban_terminal.services.log_query import write_csv

    terminal = _open(args, load, data_dir)
    calendar = terminal.config.site.calendar
    try:
        if str(args.out) == "-":
            n = write_csv(terminal.db, _filter(args, terminal), sys.stdout, calendar=calendar)
        else:
            # 0600 whatever the umask (a kiosk session may run with umask 000): the export names
            # every actor's badge, as the database does, and the database is created 0600 too.
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with (
                os.fdopen(fd, "w", encoding="utf-8", newline="") as out,
                cli_progress("export") as bar,
            ):
                n = write_csv(terminal.db, _filter(args, terminal), out, progress=bar, calendar=calendar)
    finally:
        terminal.close()
    # Not for a pipe: `export --out - | head -1` showed "42 rows written to -" whenever the CSV fit in
    # the pipe's buffer before `head` closed it (CI, a loaded box); a pipeline's tools say nothing.
    if str(args.out) != "-" or sys.stdout.isatty():
        print(f"{n} rows written to {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_verify_log(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.cli.anchors import AnchorSourceError, gather_anchors, print_verdict
    from kanban_terminal.services.log_integrity import verify_with_anchors
    from kanban_terminal.services.terminal import Terminal

    config = load(args)  # once: the anchors' topic and the terminal both come from it
    try:
        anchors, sources = gather_anchors(args.anchors, config)
    except AnchorSourceError as exc:
        print(f"kanban-terminal verify-log: {exc}", file=sys.stderr)
        return EXIT_USAGE
    terminal = Terminal.open(config, data_dir(args))
    try:
        report = verify_with_anchors(terminal.db, anchors)
        key = terminal.db.log_key
    finally:
        terminal.close()
    return print_verdict(report, key, sources, asked=bool(args.anchors))


def cmd_metrics(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.metrics_text import report_json, report_lines
    from kanban_terminal.services.reports import build_report

    terminal = _open(args, load, data_dir)
    try:
        report = build_report(terminal, args.days)
    finally:
        terminal.close()
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print("\n".join(report_lines(report)))
    return EXIT_OK


def cmd_sizing(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.metrics_text import sizing_json, sizing_lines, sizing_rows
    from kanban_terminal.services.reports import loop_histories
    from kanban_terminal.services.reserve import reserve_advice, reserve_json, reserve_lines

    terminal = _open(args, load, data_dir)
    try:
        histories = loop_histories(terminal, args.days)
    finally:
        terminal.close()
    rows = sizing_rows(
        terminal.config, histories, scan_delay_s=args.scan_delay_min * 60, service=args.service
    )
    reserves = reserve_advice(terminal.config, histories, scan_delay_s=args.scan_delay_min * 60)
    if args.json:
        extra = reserve_json(reserves)  # issue 18: reserve bins per loop, beside the card count
        print(json.dumps([item | extra.get(item["loop"], {}) for item in sizing_json(rows)], indent=2))
    else:
        print("\n".join(sizing_lines(rows) + reserve_lines(reserves)))
    return EXIT_OK


def cmd_lost_cards(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.domain.metrics import fmt_duration
    from kanban_terminal.services.lost_cards import find_silent, flag_lost

    terminal = _open(args, load, data_dir)
    try:
        silent = find_silent(terminal)
        for c in silent:
            print(
                f"{c.card_id:<8} {c.loop_id:<14} {c.state:<10} "
                f"last seen {c.last_seen_at:%Y-%m-%d %H:%M} UTC, "
                f"silent {fmt_duration(c.silent_s)} (limit {fmt_duration(c.limit_s)})"
            )
        if args.flag and silent:
            done = flag_lost(terminal, [c.card_id for c in silent], source="cli", actor=args.actor)
            print(f"flagged lost: {', '.join(done) or 'none'}")
    finally:
        terminal.close()
    if not silent:
        print("no card is overdue to be seen")
    return EXIT_ATTENTION if silent else EXIT_OK


def cmd_audit(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.lost_cards import audit, flag_lost

    codes = list(args.codes)
    if args.from_file:
        codes += args.from_file.read_text(encoding="utf-8", errors="replace").splitlines()
    terminal = _open(args, load, data_dir)
    try:
        result = audit(terminal, codes, args.loop)
        print(f"found {len(result.found)}, missing {len(result.missing)}, not ours {len(result.unknown)}")
        for card in result.missing:
            loop = terminal.card_loops[card]
            print(f"  MISSING {card:<8} {loop.id:<14} {loop.point_of_use}")
        for code in result.unknown:
            print(f"  not a card of this line: {code}")
        if args.flag and result.missing:
            done = flag_lost(terminal, result.missing, source="cli:audit")
            print(f"flagged lost: {', '.join(done) or 'none'}")
    finally:
        terminal.close()
    return EXIT_ATTENTION if result.missing else EXIT_OK


def _write_sheets(pages: list[str], out: Path) -> list[Path]:
    paths = []
    for i, page in enumerate(pages, 1):
        path = out if i == 1 else out.with_name(f"{out.stem}-{i}{out.suffix or '.svg'}")
        path.write_text(page, encoding="utf-8")
        paths.append(path)
    return paths


def cmd_print_cards(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from sqlmodel import col, select

    from kanban_terminal.services.printing import faces_for, sheets
    from kanban_terminal.storage.tables import CardRow

    terminal = _open(args, load, data_dir)
    try:
        wanted: list[str] = [c.strip().upper() for c in args.cards]
        for loop_id in args.loop:
            wanted += [c for c, lp in terminal.card_loops.items() if lp.id == loop_id]
        if args.missing:
            with terminal.db.reading() as session:
                lost = session.exec(
                    select(CardRow.id).where(CardRow.state == "lost", col(CardRow.retired).is_(False))
                )
                wanted += list(lost)
        unknown = [c for c in wanted if c not in terminal.card_loops]
        if unknown:
            print(f"not active cards of this line: {', '.join(unknown)}", file=sys.stderr)
            return EXIT_USAGE
        if not wanted:
            print("no cards to print", file=sys.stderr)
            return EXIT_OK
        faces = faces_for(terminal.config, [(c, terminal.card_loops[c].id) for c in dict.fromkeys(wanted)])
    finally:
        terminal.close()
    paths = _write_sheets(sheets(faces), args.out)
    print(f"{len(faces)} card(s) on {len(paths)} page(s): {', '.join(str(p) for p in paths)}")
    return EXIT_OK


def cmd_replace_card(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.lost_cards import ReplaceError, replace_card
    from kanban_terminal.services.printing import faces_for, sheets

    terminal = _open(args, load, data_dir)
    try:
        try:
            old = args.card.strip().upper()
            new_id = replace_card(terminal, old, actor=args.actor)
        except ReplaceError as exc:
            print(f"kanban-terminal replace-card: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{old} retired; new card {new_id} in loop {terminal.card_loops[new_id].id}")
        if args.out:
            faces = faces_for(
                terminal.config, [(new_id, terminal.card_loops[new_id].id)], {new_id: f"replaces {old}"}
            )
            print(f"printed to {', '.join(str(p) for p in _write_sheets(sheets(faces), args.out))}")
    finally:
        terminal.close()
    return EXIT_OK


Command = Callable[[argparse.Namespace, Load, DataDir], int]


def bind(fn: Command, load: Load, data_dir: DataDir) -> Callable[[argparse.Namespace], int]:
    """A verb as cli/__init__.py calls it: with cli/__init__.py's own config loader and data-dir rule."""
    return lambda args: fn(args, load, data_dir)


COMMANDS: dict[str, Command] = {
    "export": cmd_export,
    "verify-log": cmd_verify_log,
    "metrics": cmd_metrics,
    "sizing": cmd_sizing,
    "lost-cards": cmd_lost_cards,
    "audit": cmd_audit,
    "print-cards": cmd_print_cards,
    "replace-card": cmd_replace_card,
}
