"""Badge + PIN login for a team-lead verb, exactly as the screen's dialog does it (same lockout, same
log rows), then the use case. Shared by cli/team_lead.py and cli/resilience.py. The PIN is read with
getpass, or from stdin for scripts; it is never an argument.
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


NO_PIN = (
    "REFUSED: no PIN was given (standard input closed or empty); nothing was done. Type it at the "
    "prompt, or pipe it with --pin-stdin."
)


def read_pin(prompt: str, *, from_stdin: bool) -> str | None:
    """The PIN typed at the prompt (getpass) or the first line of stdin (`--pin-stdin`); None when no
    PIN came: stdin closed (getpass with no terminal reads stdin and met its end: EOFError) or an empty
    line. A missing PIN is not a wrong one: it must not count toward the badge's lockout (a cron job
    with an empty pipe would lock the team lead out), so the caller stops before `login`."""
    try:
        pin = sys.stdin.readline() if from_stdin else getpass.getpass(prompt)
    except EOFError:
        return None
    return pin.strip() or None


def run_logged_in(args: argparse.Namespace, load: Load, data_dir: DataDir, action: Callable[..., Any]) -> int:
    from kanban_terminal.domain.cards import Rejection
    from kanban_terminal.services.auth import AuthSession, login
    from kanban_terminal.services.terminal import Terminal

    cfg = load(args)
    pin = read_pin(f"PIN for {args.badge}: ", from_stdin=args.pin_stdin)
    if pin is None:
        print(NO_PIN, file=sys.stderr)
        return EXIT_REFUSED
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
    if outcome.ok and getattr(outcome, "andon", None) is not None:
        print(f"andon {outcome.andon.id}")
    return EXIT_OK if outcome.ok else EXIT_REFUSED
