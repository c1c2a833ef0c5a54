"""`kanban-terminal scan`: a code that starts with `-`, and the exit code a scan's outcome gets.

A scanner may read a damaged label as `-B1101T`; argparse took that for an option and the code never
reached the scan use case (which refuses it as a misread and keeps it for maintenance, as the screen
does). `take_dash_code` hands such a word back to `scan` as its code; `--` before it works too.

Exit codes follow what the screen shows: green (accepted) and a found card (amber, but recorded: the
card is back in use) exit 0; a repeat read, a delivery waiting for confirmation and the other amber
warnings, which recorded nothing and need a look, exit 3; red refusals exit 1.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kanban_terminal.services.events import ScanOutcome

EXIT_OK, EXIT_REJECTED, EXIT_NEEDS_ATTENTION = 0, 1, 3


def take_dash_code(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Give `scan` a lone unknown `-word` as its code; any other leftover word is an error (exit 2)."""
    if args.verb == "scan" and args.code is None and len(extra) == 1 and extra[0].startswith("-"):
        args.code = extra[0]
        return
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.verb == "scan" and args.code is None:
        parser.error("scan: give the scanned code (one that starts with '-' may also follow `--`)")


def scan_exit_code(outcome: ScanOutcome) -> int:
    """0 recorded (accepted, or a lost card found), 3 recorded nothing but needs a look, 1 refused."""
    from kanban_terminal.domain.scans import OutcomeKind, Verdict

    if outcome.accepted or outcome.kind is OutcomeKind.FOUND:
        return EXIT_OK
    if outcome.verdict is Verdict.WARNING:
        return EXIT_NEEDS_ATTENTION
    return EXIT_REJECTED
