"""Team-lead actions from the command line: suspend or resume a card, shelve a chattering andon source.

Each verb logs in with badge + PIN exactly as the screen's dialog does (same lockout, same log rows)
and then runs the same use case the screen would. The PIN is read with getpass, or from stdin for
scripts; it is never an argument, so it never lands in a shell history or a process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kanban_terminal.config import TerminalConfig

Load = Callable[[argparse.Namespace], TerminalConfig]
DataDir = Callable[[argparse.Namespace], Path]
EXIT_OK, EXIT_REFUSED = 0, 1


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
    shelve = verbs.add_parser(
        "shelve", help="silence a chattering andon device for a bounded time (team lead)"
    )
    with_login(shelve)
    shelve.add_argument("device", help="the andon device id")
    shelve.add_argument(
        "--minutes", type=float, required=True, help="how long (at most [andon] shelve_max_minutes)"
    )


def _run(args: argparse.Namespace, load: Load, data_dir: DataDir, action: Callable[..., Any]) -> int:
    from kanban_terminal.domain.cards import Rejection
    from kanban_terminal.services.auth import AuthSession, login
    from kanban_terminal.services.terminal import Terminal

    cfg = load(args)
    pin = sys.stdin.readline().strip() if args.pin_stdin else getpass.getpass(f"PIN for {args.badge}: ")
    terminal = Terminal.open(cfg, data_dir(args))
    try:
        state = login(terminal, args.badge, pin, source="cli")
        if isinstance(state, Rejection):
            print(f"REFUSED: {state.message}", file=sys.stderr)
            return EXIT_REFUSED
        auth = AuthSession()
        auth.start(state)
        outcome = action(terminal, auth)
    finally:
        terminal.close()
    print(("DONE: " if outcome.ok else "REFUSED: ") + outcome.message)
    return EXIT_OK if outcome.ok else EXIT_REFUSED


def cmd_suspend(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.suspension import suspend_card

    card = args.card.strip().upper()
    return _run(
        args, load, data_dir, lambda t, a: suspend_card(t, card, source="cli", auth=a, note=args.note)
    )


def cmd_resume(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.suspension import resume_card

    card = args.card.strip().upper()
    return _run(args, load, data_dir, lambda t, a: resume_card(t, card, source="cli", auth=a))


def cmd_shelve(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.services.andon import shelve_source

    return _run(
        args, load, data_dir, lambda t, a: shelve_source(t, args.device, args.minutes, source="cli", auth=a)
    )


COMMANDS = {"suspend-card": cmd_suspend, "resume-card": cmd_resume, "shelve": cmd_shelve}
