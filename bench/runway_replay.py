"""Stockout minutes over the history generator's year with injected supplier delays and demand spikes,
side by side in one run: plain kanban, with runway warnings, with contingency reserves, with both
(issue 18; the model and its assumptions are in bench/history/disruptions.py).

    python bench/runway_replay.py [--days 365] [--seed 6] [--reserve-all] [--config config/demo.toml]

Also checks what the issue asks: in the plain year (nobody acts on warnings), every injected disruption
that ran a loop out had its runway warning raised before the run-out. Simulated time: the figures do
not depend on this machine's load; the wall time printed at the end does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.history.disruptions import POLICIES, replay, warned_before_run_out  # noqa: E402
from kanban_terminal.config import demo_config_path, load_config  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--reserve-all", action="store_true", help="reserves on every external loop")
    args = parser.parse_args()
    cfg = load_config(args.config or demo_config_path())
    start = datetime(2025, 12, 1, tzinfo=UTC)
    end = start + timedelta(days=args.days)
    t0 = time.perf_counter()
    plans, outcomes, bins = replay(cfg, start, end, seed=args.seed, reserve_all=args.reserve_all)
    wall = time.perf_counter() - t0
    injected = sum(len(p.disruptions) for p in plans)
    print(
        f"{args.days} days, {len(plans)} loops, seed {args.seed}, {injected} injected disruptions "
        f"(delays {sum(d.kind == 'delay' for p in plans for d in p.disruptions)}, "
        f"spikes {sum(d.kind == 'spike' for p in plans for d in p.disruptions)}); "
        f"reserve bins: {bins or 'none'}"
    )
    print(
        f"{'loop':<14}"
        + "".join(f"{name + ' min':>16}" for name in POLICIES)
        + f"{'warnings':>10}{'draws':>7}"
    )
    for i, p in enumerate(plans):
        row = [outcomes[name][i] for name in POLICIES]
        print(
            f"{p.loop.id:<14}"
            + "".join(f"{o.stockout_min:>10.0f} ({o.stockouts:>3})" for o in row)
            + f"{row[0].warnings:>10}{row[3].reserve_draws:>7}"
        )
    totals = {name: sum(o.stockout_min for o in outcomes[name]) for name in POLICIES}
    outs = {name: sum(o.stockouts for o in outcomes[name]) for name in POLICIES}
    print(f"{'total':<14}" + "".join(f"{totals[n]:>10.0f} ({outs[n]:>3})" for n in POLICIES))
    base = totals["plain"] or 1.0
    print("stockout minutes vs plain: " + ", ".join(f"{n} {totals[n] / base:.2f}x" for n in POLICIES[1:]))
    checks = warned_before_run_out(plans, outcomes["plain"], start, end, cfg.runway.settings())
    for kind in ("delay", "spike"):
        mine = [c for c in checks if c.disruption.kind == kind]
        seen = [c for c in mine if c.visible]
        ahead = [c.minutes_ahead for c in mine if c.minutes_ahead is not None]
        med = f"median {statistics.median(ahead):.0f} min, least {min(ahead):.0f} min" if ahead else "-"
        print(
            f"injected {kind}s that ran a loop out (plain): {len(mine)}; warned before the run-out: "
            f"{len(ahead)} ({med} ahead); of those the line's data showed before the run-out: "
            f"{len(seen)}, warned {sum(c.warned_at is not None for c in seen)}"
        )
    missed = [c for c in checks if c.visible and c.warned_at is None]
    print(f"(simulated; {wall:.1f} s wall on a shared, busy 2-core box)")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
