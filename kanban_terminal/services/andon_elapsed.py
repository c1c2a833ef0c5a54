"""How long an andon has run, on the monotonic clock where a running timer exists (issue 17 follow-up).

`resolved_at - raised_at` is two wall-clock readings: an NTP step of +1 h during a 4-minute stop
recorded 64 minutes of downtime (0 when stepped back), and the banners showed "1 h 04 min". The
escalation runner keeps an anchor per andon from its raise until it ends (`andon:<id>`,
services/escalation.py, table `elapsed_anchor`), acknowledged or not. CLOCK_MONOTONIC is one clock
for every process of a boot, so any process (the CLI resolving a stop that `serve` anchored) gets
exact elapsed time from it: anchor.elapsed_s + (monotonic now - anchor.mono_s) (domain/andon.py
`elapsed_since_raise`). No anchor (no runtime ran since the raise, or rows from before anchors
existed): the wall difference, as before.

After a reboot (the monotonic clock restarts at zero, a new boot id) the anchor counts its stored
elapsed plus the wall time since it was last saved (at most `SAVE_EVERY_S`, 60 s, before the power
went), whoever reads it first: the runner re-anchors it on the new boot with the same figure. So
only the wall time across the reboot itself comes from the wall clock; a step back while the
terminal was down adds nothing and is logged at start (`clock_stepped`, services/clock_watch.py),
a step forward then cannot be told from the time it was down.

Until branch `onemono` the runner dropped its anchor at the acknowledge, and the acknowledge kept a
copy under `andon-kept:<id>` until the resolve. A stop acknowledged under that version and still open
after the upgrade keeps its count: that copy is read here, and the runner takes it over
(`ElapsedTimers(formerly=...)`); the resolve deletes one still left.

The acknowledge, resolve and cancel record the figure in their log row (`elapsed_s`, migration
0012): a CALL's time to acknowledge and to resolve is then as exact as a stop's downtime.

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
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_durations, elapsed_anchors
from kanban_terminal.storage.andon_rows import AndonScope, andons_in

ESCALATION_PREFIX = "andon:"
"""The escalation runner's anchors (services/escalation.py `ElapsedTimers(terminal, "andon:")`)."""
KEPT_PREFIX = "andon-kept:"
"""Where the version before `onemono` copied the anchor at the acknowledge (read, never written)."""


@cache
def boot_id() -> str:
    """This boot's id, read once per process (it cannot change while the process runs)."""
    return read_boot_id()


def _keys(andon_id: str) -> tuple[str, str]:
    # The runner's first: it is refreshed every minute and re-anchored after a reboot; the older
    # version's copy only counts while the runner has not taken it over.
    return f"{ESCALATION_PREFIX}{andon_id}", f"{KEPT_PREFIX}{andon_id}"


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


def running_of(terminal: Terminal, andon_ids: Iterable[str], now: datetime) -> dict[str, timedelta]:
    """`elapsed_raw` in a snapshot of its own (the metrics' open stops); andons without an anchor
    are absent."""
    ids = list(andon_ids)
    if not ids:
        return {}
    with terminal.db.snapshot() as raw:
        return elapsed_raw(terminal, raw, ids, now)[0]


def _elapsed(
    terminal: Terminal, stored: dict[str, ElapsedAnchor], ids: list[str], now: datetime
) -> tuple[dict[str, timedelta], float]:
    mono = terminal.monotonic()
    found: dict[str, timedelta] = {}
    for andon_id in ids:
        elapsed = elapsed_since_raise([stored.get(k) for k in _keys(andon_id)], boot_id(), mono, now)
        if elapsed is not None:
            found[andon_id] = elapsed
    return found, mono


def forget(scope: AndonScope, andon_id: str) -> None:
    """At the resolve or cancel: an older version's copy has served (the runner drops its own anchor
    at its next read, the andon being over)."""
    elapsed_anchors.drop_except(andons_in(scope).session, f"{KEPT_PREFIX}{andon_id}", [])


def _at(
    terminal: Terminal, scope: AndonScope, andon: Andon, now: datetime, at: datetime | None
) -> timedelta | None:
    elapsed = elapsed_in(terminal, scope, [andon.id], now)[0].get(andon.id)
    if elapsed is None or at is None:
        return elapsed
    # A step dated before now (`at`): seconds between two close readings, not a step.
    return max(timedelta(0), elapsed - max(timedelta(0), now - at))


def at_end(terminal: Terminal, scope: AndonScope, andon: Andon, now: datetime) -> timedelta | None:
    """Time from the raise to `andon`'s resolve or cancel (just decided, at `now` or dated a little
    earlier), from its anchor; None without one. Ends its kept anchor in the same transaction."""
    elapsed = _at(terminal, scope, andon, now, andon.resolved_at or andon.cancelled_at)
    forget(scope, andon.id)
    return elapsed


def after(
    terminal: Terminal, scope: AndonScope, action: str, andon: Andon, now: datetime
) -> timedelta | None:
    """The elapsed time since the raise at the step just decided: an acknowledge (which leaves the
    anchors alone: the runner's timer runs until the end), a resolve or a cancel; None without an
    anchor."""
    if action == "acknowledged":
        return _at(terminal, scope, andon, now, andon.acknowledged_at)
    return at_end(terminal, scope, andon, now)


def shown_after(scope: AndonScope, action: str, andon: Andon, logged: timedelta | None) -> timedelta | None:
    """What the step's view carries (`AndonView.elapsed`): the end's figure for a resolve or cancel;
    for an acknowledge nothing while the andon runs (the screens read it again), and its recorded
    end once it has ended (acknowledged after the resolve: the message's downtime is the log's)."""
    if action != "acknowledged":
        return logged
    if andon.active:
        return None
    found = andon_durations.recorded_in(andons_in(scope).session, [andon.id]).get(andon.id)
    return timedelta(seconds=found) if found is not None else None
