"""`kanban-terminal status`: cards by loop and state, open requests with age, due time and any
warning upstream gave (delayed with its new ETA, at risk with its reason), and loops re-routed to
their second source. Moved out of cli/__init__.py, which was at its size limit.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from kanban_terminal.config import TerminalConfig

Load = Callable[[argparse.Namespace], TerminalConfig]
DataDir = Callable[[argparse.Namespace], Path]


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def cmd_status(args: argparse.Namespace, load: Load, data_dir: DataDir) -> int:
    from kanban_terminal.domain.cards import FLOOR_WORDS, CardState
    from kanban_terminal.domain.supply import trouble_text
    from kanban_terminal.services.queries import read_status
    from kanban_terminal.services.terminal import Terminal

    cfg = load(args)
    terminal = Terminal.open(cfg, data_dir(args))
    try:
        status = read_status(terminal)
        now = terminal.clock()
    finally:
        terminal.close()
    if args.json:
        print(
            json.dumps(
                {
                    "terminal": cfg.terminal.id,
                    "line": cfg.line.id,
                    "at": now.isoformat(),
                    "loops": [
                        {
                            "loop": s.loop_id,
                            "part": s.part_number,
                            "cards": s.cards,
                            "by_state": s.by_state,
                            "urgency": round(s.urgency, 3),
                            "source": s.source,
                            "rerouted": s.rerouted,
                        }
                        for s in status.loops
                    ],
                    "open_requests": [
                        {
                            "request_id": r.request_id,
                            "card": r.card_id,
                            "loop": r.loop_id,
                            "status": r.status,
                            "raised_at": r.raised_at.isoformat(),
                            "due_at": r.due_at.isoformat(),
                            "age_s": round(r.age(now).total_seconds()),
                            "overdue": r.overdue(now),
                            "source": r.source,
                            "eta": r.eta.isoformat() if r.eta else None,
                            "trouble": r.trouble,
                            "trouble_reason": r.trouble_reason,
                        }
                        for r in status.open_requests
                    ],
                    "queued": status.queued,
                },
                indent=2,
            )
        )
        return 0
    print(f"Terminal {cfg.terminal.id} - line {cfg.line.id} {cfg.line.name}")
    print(f"{'loop':<14}{'part':<10}{'cards':>6}  states")
    for s in status.loops:
        states = ", ".join(f"{FLOOR_WORDS[CardState(k)].lower()} {v}" for k, v in sorted(s.by_state.items()))
        routed = f"  RE-ROUTED to {s.source}" if s.rerouted else ""
        print(f"{s.loop_id:<14}{s.part_number:<10}{s.cards:>6}  {states}{routed}")
    print(f"\nOpen requests: {len(status.open_requests)} ({status.queued} not yet sent upstream)")
    for r in status.open_requests:
        overdue = "  OVERDUE" if r.overdue(now) else ""
        trouble = trouble_text(r.trouble, r.eta.astimezone() if r.eta else None, r.trouble_reason)
        print(
            f"  {r.card_id:<10}{r.loop_id:<14}{FLOOR_WORDS[CardState(r.status)]:<18}"
            f"age {_age(r.age(now).total_seconds()):<12}due {r.due_at.astimezone():%H:%M}{overdue}"
            + (f"  {trouble.upper() if r.trouble == 'delayed' else trouble}" if trouble else "")
        )
    return 0
