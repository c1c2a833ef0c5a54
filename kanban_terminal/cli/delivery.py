"""`scan CODE --short N --damaged M`: a delivery scan with what was missing or damaged (issue 17).

The scan and the record commit in one transaction: when the scan turns out not to be a delivery
(the card had no open request, a repeat read, a delivery that needs confirmation) or the quantities
are refused, nothing is recorded at all, not even the scan, and the exit code says why.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kanban_terminal.services.terminal import Terminal

EXIT_OK, EXIT_REJECTED = 0, 1


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("cannot be negative")
    return value


def add_options(scan: argparse.ArgumentParser) -> None:
    scan.add_argument("--short", type=_count, default=0, metavar="N",
                      help="delivery scan: N parts were missing (the shortfall is requested)")  # fmt: skip
    scan.add_argument("--damaged", type=_count, default=0, metavar="N",
                      help="delivery scan: N parts arrived damaged (a quality call is raised)")  # fmt: skip


class _NotRecorded(Exception):
    """Rolls the scan back: the delivery and its record go together or not at all."""


def scan_with_issue(terminal: Terminal, args: argparse.Namespace) -> int:
    from kanban_terminal.domain.scans import OutcomeKind
    from kanban_terminal.services.delivery_issue import record_delivery_issue
    from kanban_terminal.services.scanning import record_scan

    said = ""
    try:
        with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
            outcome = record_scan(
                terminal, args.code, source="cli", confirmed=args.confirm, actor=args.actor, uow=uow
            )
            if outcome.kind is not OutcomeKind.DELIVERED:
                said = f"{outcome.message} --short/--damaged need a delivery scan: nothing recorded."
                if outcome.kind is OutcomeKind.NEEDS_CONFIRMATION:
                    said += " Run again with --confirm if the full bin really arrived."
                raise _NotRecorded
            recorded = record_delivery_issue(
                terminal, outcome.card_id or args.code, short=args.short, damaged=args.damaged,
                source="cli", actor=args.actor, uow=uow,
            )  # fmt: skip
            if not recorded.ok:
                said = f"{recorded.message} Nothing recorded, not even the scan."
                raise _NotRecorded
    except _NotRecorded:
        print(f"REJECTED: {said}")
        return EXIT_REJECTED
    print(f"ACCEPTED: {outcome.message}")
    print(f"RECORDED: {recorded.message}")
    if recorded.andon_id:
        print(f"andon {recorded.andon_id}")
    return EXIT_OK
