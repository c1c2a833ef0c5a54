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


def run_logged_in(args: argparse.Namespace, load: Load, data_dir: DataDir, action: Callable[..., Any]) -> int:
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
    if outcome.ok and getattr(outcome, "andon", None) is not None:
        print(f"andon {outcome.andon.id}")
    return EXIT_OK if outcome.ok else EXIT_REFUSED
