"""Resilient-JIT verbs (issue 18): `runway`, `quality-stop` and `confirm-stop`, all headless.

`runway` prints every loop's runway, at-risk loops first, exactly as the board sorts them.
`quality-stop` is the Toyota cord from a shell: no PIN, where `[quality_stop] anyone` allows it.
`confirm-stop` is a team lead (badge + PIN) confirming a stop; releasing it is `resolve-andon`.
Registered through cli/team_lead.py (cli/__init__.py is at its size limit).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kanban_terminal.config import TerminalConfig

Load = Callable[[argparse.Namespace], TerminalConfig]
DataDir = Callable[[argparse.Namespace], Path]
EXIT_OK, EXIT_REFUSED = 0, 1


def add_parsers(verbs: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    runway = verbs.add_parser("runway", help="how long each loop can run on what it has and was promised")
    common(runway)
    runway.add_argument("--json", action="store_true", help="machine-readable output")
    stop = verbs.add_parser(
        "quality-stop", help="stop the line for quality with no PIN ([quality_stop] anyone = true)"
    )
    common(stop)
    stop.add_argument("station", help="the station id, as configured")
    stop.add_argument("reason", nargs="?", default=None, help="a quality reason code (default: the first)")
    stop.add_argument("--actor", help="your badge id, for the log (optional)")
    confirm = verbs.add_parser("confirm-stop", help="a team lead confirms a quality stop (badge + PIN)")
    common(confirm)
    confirm.add_argument("andon", help="the andon id `quality-stop` printed (also on the andon screen)")
    confirm.add_argument("--badge", required=True, help="the team lead's badge id")
    confirm.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin (scripts)")


def cmd_runway(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.domain.runway import describe
    from kanban_terminal.services.runway import read_runways, reserve_draws
    from kanban_terminal.services.terminal import Terminal

    terminal = Terminal.open(load(args), data_dir(args))
    try:
        runways = read_runways(terminal)
        draws = reserve_draws(terminal, 30)
    finally:
        terminal.close()
    if args.json:
        rows = [
            {
                "loop": r.loop.id,
                "runway_s": None if r.runway.runway is None else round(r.runway.runway.total_seconds()),
                "run_out_at": r.runway.run_out_at.isoformat() if r.runway.run_out_at else None,
                "margin_s": round(r.runway.margin.total_seconds()),
                "at_risk": r.runway.at_risk,
                "warning_open": r.warning_open,
                "rate_per_h": round(r.runway.rate_per_h, 2),
                "rate_measured": r.runway.measured,
                "on_hand": r.runway.on_hand,
                "promised": r.runway.promised,
                "reserve_full": r.reserve_full,
                "reserve_cards": r.reserve_cards,
                "reserve_draws_30d": draws.get(r.loop.id, 0),
            }
            for r in runways
        ]
        print(json.dumps({"loops": rows}, indent=2))
        return EXIT_OK
    for r in runways:
        flag = "AT RISK" if r.runway.at_risk else "ok"
        drawn = draws.get(r.loop.id, 0)
        reserve = (
            f"  reserve {r.reserve_full}/{r.reserve_cards} full, drawn {drawn}x in 30 days"
            if r.reserve_cards
            else ""
        )
        print(f"{r.loop.id:<16}{flag:<9}{describe(r.runway)}{reserve}")
    return EXIT_OK


def cmd_quality_stop(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.domain.andon import AndonKind
    from kanban_terminal.services.andon import raise_andon
    from kanban_terminal.services.terminal import Terminal

    cfg = load(args)
    reason = (args.reason or cfg.quality_stop.reasons[0]).strip().upper()
    actor = args.actor.strip().upper() if args.actor else None
    terminal = Terminal.open(cfg, data_dir(args))
    try:
        outcome = raise_andon(
            terminal, AndonKind.STOP, args.station.strip(), reason, source="cli", actor=actor
        )
    finally:
        terminal.close()
    print(
        ("DONE: " if outcome.ok else "REFUSED: ") + outcome.message,
        file=sys.stdout if outcome.ok else sys.stderr,
    )
    if outcome.andon is not None:
        print(f"andon {outcome.andon.andon.id}")
    return EXIT_OK if outcome.ok else EXIT_REFUSED


def cmd_confirm_stop(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.cli.login import run_logged_in
    from kanban_terminal.services.andon import acknowledge_andon

    return run_logged_in(
        args, load, data_dir,
        lambda t, a: acknowledge_andon(t, args.andon.strip(), a.state.badge, source="cli"),
    )  # fmt: skip


COMMANDS = {"runway": cmd_runway, "quality-stop": cmd_quality_stop, "confirm-stop": cmd_confirm_stop}
