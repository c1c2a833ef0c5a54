"""How long an andon has run, on the monotonic clock where a running timer exists (issue 17 follow-up).

`resolved_at - raised_at` is two wall-clock readings: an NTP step of +1 h during a 4-minute stop
recorded 64 minutes of downtime (0 when stepped back), and the banners showed "1 h 04 min". The
escalation runner keeps an anchor per unacknowledged andon (`andon:<id>`, services/escalation.py,
table `elapsed_anchor`). CLOCK_MONOTONIC is one clock for every process of a boot, so any process
(the CLI resolving a stop that `serve` anchored) gets exact elapsed time from it:
anchor.elapsed_s + (monotonic now - anchor.mono_s) (domain/andon.py `elapsed_since_raise`).

The runner drops its anchor once the andon is acknowledged (it has no tier left to fire), but a stop
is usually acknowledged before it is resolved; so the acknowledge copies it, re-anchored, to
`andon-kept:<id>` (a prefix the runner's tidy-up does not touch), and the resolve or cancel deletes
that copy. No anchor (no runtime ran since the raise, or rows from before anchors existed): the wall
difference, as before.

Reads and writes go through storage/elapsed_anchors.py inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from kanban_terminal.domain.andon import Andon, elapsed_since_raise
from kanban_terminal.domain.clocks import ElapsedAnchor
from kanban_terminal.services.clock_watch import read_boot_id
from kanban_terminal.services.monotonic_clock import monotonic_of
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import elapsed_anchors
from kanban_terminal.storage.andon_rows import AndonScope, andons_in

ESCALATION_PREFIX = "andon:"
"""The escalation runner's anchors (services/escalation.py `ElapsedTimers(terminal, "andon:")`)."""
KEPT_PREFIX = "andon-kept:"
"""The copy made at the acknowledge, kept until the resolve or cancel."""


@cache
def boot_id() -> str:
    """This boot's id, read once per process (it cannot change while the process runs)."""
    return read_boot_id()


def _keys(andon_id: str) -> tuple[str, str]:
    # Kept first: it was re-anchored at the acknowledge on this boot, so it is the freshest copy.
    return f"{KEPT_PREFIX}{andon_id}", f"{ESCALATION_PREFIX}{andon_id}"


def elapsed_in(
    terminal: Terminal, scope: AndonScope, andon_ids: Iterable[str], now: datetime
) -> tuple[dict[str, timedelta], float]:
    """Time since the raise of each andon that has an anchor, and the monotonic reading it is as of.

    Andons without an anchor are absent: their callers use the wall difference.
    """
    ids = list(andon_ids)
    stored = elapsed_anchors.load_in(andons_in(scope).session, [k for i in ids for k in _keys(i)])
    return _elapsed(terminal, stored, ids, now)


def elapsed_raw(
    terminal: Terminal, raw: Any, andon_ids: Iterable[str], now: datetime
) -> tuple[dict[str, timedelta], float]:
    """`elapsed_in` inside a raw read snapshot (`Database.snapshot()`, the andon screen's read)."""
    ids = list(andon_ids)
    return _elapsed(terminal, elapsed_anchors.load_raw(raw, [k for i in ids for k in _keys(i)]), ids, now)


def _elapsed(
    terminal: Terminal, stored: dict[str, ElapsedAnchor], ids: list[str], now: datetime
) -> tuple[dict[str, timedelta], float]:
    mono = monotonic_of(terminal.clock)
    found: dict[str, timedelta] = {}
    for andon_id in ids:
        elapsed = elapsed_since_raise([stored.get(k) for k in _keys(andon_id)], boot_id(), mono, now)
        if elapsed is not None:
            found[andon_id] = elapsed
    return found, mono


def keep_anchor(terminal: Terminal, scope: AndonScope, andon_id: str, now: datetime) -> None:
    """At the acknowledge: copy the runner's anchor (if any) before the runner drops it.

    Written re-anchored to this reading, so the copy is exact on this boot. One small row per
    acknowledged andon; none when no runner anchored it (then nothing better than the wall exists).
    """
    key, session = f"{ESCALATION_PREFIX}{andon_id}", andons_in(scope).session
    runner = elapsed_anchors.load_in(session, [key]).get(key)
    mono = monotonic_of(terminal.clock)
    elapsed = elapsed_since_raise([runner], boot_id(), mono, now)
    if elapsed is None:
        return
    kept = ElapsedAnchor(f"{KEPT_PREFIX}{andon_id}", boot_id(), mono, elapsed.total_seconds(), now)
    elapsed_anchors.save(session, [kept])


def forget(scope: AndonScope, andon_id: str) -> None:
    """At the resolve or cancel: the kept copy has served (the runner drops its own anchor)."""
    elapsed_anchors.drop_except(andons_in(scope).session, f"{KEPT_PREFIX}{andon_id}", [])


def at_end(terminal: Terminal, scope: AndonScope, andon: Andon, now: datetime) -> timedelta | None:
    """Time from the raise to `andon`'s resolve or cancel (just decided, at `now` or dated a little
    earlier), from its anchor; None without one. Ends its kept anchor in the same transaction."""
    elapsed = elapsed_in(terminal, scope, [andon.id], now)[0].get(andon.id)
    forget(scope, andon.id)
    end = andon.resolved_at or andon.cancelled_at
    if elapsed is None or end is None:
        return elapsed
    # A resolve dated before now (`at`): seconds between two close readings, not a step.
    return max(timedelta(0), elapsed - max(timedelta(0), now - end))


def after(
    terminal: Terminal, scope: AndonScope, action: str, andon: Andon, now: datetime
) -> timedelta | None:
    """What an acknowledge, resolve or cancel of `andon` does to its anchors; the elapsed time at its
    end for a resolve or cancel (None without an anchor, and for an acknowledge)."""
    if action == "acknowledged":
        if andon.active:  # acknowledged after its resolve: nothing runs any more, nothing to keep
            keep_anchor(terminal, scope, andon.id, now)
        return None
    return at_end(terminal, scope, andon, now)
