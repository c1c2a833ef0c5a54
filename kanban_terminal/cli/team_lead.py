"""Team-lead actions from the command line: suspend or resume a card, raise or resolve an andon, shelve
a chattering andon source, re-route a loop to its second source, show and take over the shift
handover.

Each verb logs in with badge + PIN exactly as the screen's dialog does (same lockout, same log rows)
and then runs the same use case the screen would. The PIN is read with getpass, or from stdin for
scripts; it is never an argument, so it never lands in a shell history or a process list.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kanban_terminal.cli import resilience as cli_resilience
from kanban_terminal.cli.login import run_logged_in
from kanban_terminal.config import TerminalConfig

Load = Callable[[argparse.Namespace], TerminalConfig]
DataDir = Callable[[argparse.Namespace], Path]
EXIT_OK, EXIT_DUE = 0, 3  # a refused login or action: cli/login.py


def add_parsers(verbs: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    def with_login(parser: argparse.ArgumentParser) -> None:
        common(parser)
        parser.add_argument("--badge", required=True, help="the team lead's badge id")
        parser.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin (scripts)")

    suspend = verbs.add_parser("suspend-card", help="take a card out of circulation (team lead)")
    with_login(suspend)
    suspend.add_argument("card", help="the card id")
    suspend.add_argument("--note", default="", help="why (kept in the card log)")
    resume = verbs.add_parser("resume-card", help="put a suspended card back into circulation (team lead)")
    with_login(resume)
    resume.add_argument("card", help="the card id")
    raise_ = verbs.add_parser("raise-andon", help="call for help or stop the line at a station")
    with_login(raise_)
    raise_.add_argument("kind", choices=("call", "stop"), help="call (line runs) or stop (team lead)")
    raise_.add_argument("station", help="the station id, as configured")
    raise_.add_argument("reason", help="a configured andon reason code (QUAL, MACH, ...)")
    resolve = verbs.add_parser("resolve-andon", help="close an andon with a note (a STOP needs a team lead)")
    with_login(resolve)
    resolve.add_argument("andon", help="the andon id `raise-andon` printed (also on the andon screen)")
    resolve.add_argument("--note", required=True, help="what was done (kept in the card log)")
    shelve = verbs.add_parser(
        "shelve", help="silence a chattering andon device for a bounded time (team lead)"
    )
    with_login(shelve)
    shelve.add_argument("device", help="the andon device id")
    shelve.add_argument(
        "--minutes", type=float, required=True, help="how long (at most [andon] shelve_max_minutes)"
    )
    reroute = verbs.add_parser(
        "reroute", help="send a loop and its open requests to its second source, or back (team lead)"
    )
    with_login(reroute)
    reroute.add_argument("loop", help="the loop id; it must name a second source ([[second_sources]])")
    reroute.add_argument("--note", default="", help="why (kept in the card log and sent upstream)")
    show = verbs.add_parser("handover", help="the shift handover sheet; exit 3 while not taken over")
    common(show)
    take = verbs.add_parser("take-handover", help="the incoming team lead takes the shift over")
    with_login(take)
    cli_resilience.add_parsers(verbs, common)  # runway, quality-stop, confirm-stop (issue 18)


def cmd_suspend(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.suspension import suspend_card

    card = args.card.strip().upper()
    return run_logged_in(
        args, load, data_dir, lambda t, a: suspend_card(t, card, source="cli", auth=a, note=args.note)
    )


def cmd_resume(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.suspension import resume_card

    card = args.card.strip().upper()
    return run_logged_in(args, load, data_dir, lambda t, a: resume_card(t, card, source="cli", auth=a))


def cmd_raise_andon(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.domain.andon import AndonKind
    from kanban_terminal.services.andon import raise_andon

    kind, station, reason = AndonKind(args.kind), args.station.strip(), args.reason.strip().upper()
    return run_logged_in(
        args, load, data_dir, lambda t, a: raise_andon(t, kind, station, reason, source="cli", auth=a)
    )


def cmd_resolve_andon(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.andon import resolve_andon

    return run_logged_in(
        args,
        load,
        data_dir,
        lambda t, a: resolve_andon(t, args.andon.strip(), args.note, source="cli", auth=a),
    )


def cmd_shelve(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.andon import shelve_source

    return run_logged_in(
        args, load, data_dir, lambda t, a: shelve_source(t, args.device, args.minutes, source="cli", auth=a)
    )


def cmd_reroute(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.reroute import reroute_loop

    def act(terminal: Any, auth: Any) -> Any:
        done = reroute_loop(terminal, args.loop.strip(), source="cli", auth=auth, note=args.note)
        for card, old, new in done.moved:
            print(f"card {card}: request {old} cancelled, {new} raised")
        return done

    return run_logged_in(args, load, data_dir, act)


def cmd_handover(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.handover import acknowledged_by, read_sheet
    from kanban_terminal.services.terminal import Terminal

    terminal = Terminal.open(load(args), data_dir(args))
    try:
        sheet = read_sheet(terminal)
        taken = acknowledged_by(terminal, sheet)
    finally:
        terminal.close()
    print("\n".join(sheet.lines()))
    print(f"Taken over by {taken}." if taken else "Not taken over yet: `take-handover --badge BADGE`.")
    return EXIT_OK if taken else EXIT_DUE


def cmd_take_handover(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.handover import acknowledge_handover

    return run_logged_in(args, load, data_dir, lambda t, a: acknowledge_handover(t, auth=a, source="cli"))


COMMANDS = {
    "handover": cmd_handover,
    "take-handover": cmd_take_handover,
    "suspend-card": cmd_suspend,
    "resume-card": cmd_resume,
    "raise-andon": cmd_raise_andon,
    "resolve-andon": cmd_resolve_andon,
    "shelve": cmd_shelve,
    "reroute": cmd_reroute,
    **cli_resilience.COMMANDS,
}
