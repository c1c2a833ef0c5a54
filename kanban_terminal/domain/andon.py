"""Andon events (CALL and STOP) and their alarm-management lifecycle, as pure decisions.

States follow ISA-18.2 / IEC 62682 (via OPC UA Part 9): an event is *active* until resolved and
*acknowledged* once a named responder took it. Resolving before anyone acknowledged leaves it
"resolved, unacknowledged": it stays on the list until someone acknowledges it, so nobody silently
ignores an andon. A raiser may cancel an unacknowledged CALL (a separate, logged transition). A
chattering source may be shelved for a bounded time; shelving is never "disable".

Escalation is derived from stored facts only (raise time, acknowledged or not, tiers already fired)
plus elapsed time, so a restart re-derives what is due and a tier fires exactly once.

Nothing here does I/O: time, ids and authority come in as arguments. Every refusal is a `Rejection`
whose message tells a person what to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.clocks import ElapsedAnchor, elapsed_from


class AndonKind(StrEnum):
    CALL = "call"
    """Help needed; the line keeps running."""
    STOP = "stop"
    """The line is stopped."""


class AndonState(StrEnum):
    """ISA-18.2 states of one event, plus the raiser's cancel."""

    RAISED = "raised"
    """Active, unacknowledged."""
    ACKNOWLEDGED = "acknowledged"
    """Active, acknowledged by a named responder."""
    RESOLVED_UNACKNOWLEDGED = "resolved_unacknowledged"
    """Returned to normal but nobody acknowledged it yet: still waits for an acknowledgement."""
    CLOSED = "closed"
    """Resolved and acknowledged: nothing left to do."""
    CANCELLED = "cancelled"
    """Withdrawn by its raiser before anyone acknowledged it."""


class LineCondition(StrEnum):
    """What the retained line-state topic and the stack light show."""

    RUNNING = "running"
    CALL = "call"
    STOPPED = "stopped"


# Roles that carry team-lead authority (stop the line, resolve a stop, suspend cards, shelve).
AUTHORITY_ROLES = frozenset({"team_lead", "supervisor", "manager"})
# Who each escalation tier calls, by position; further tiers call the last one again.
TIER_ROLES = ("team_lead", "supervisor", "manager")


def tier_role(tier: int) -> str:
    return TIER_ROLES[min(tier, len(TIER_ROLES) - 1)]


@dataclass(frozen=True)
class Andon:
    """One andon event as the domain sees it (mapped from its row at the edge)."""

    id: str
    kind: AndonKind
    station: str
    reason: str
    raised_at: datetime
    source: str
    """Door it came through: keyboard, mqtt:<device>, system (material andon)."""
    raised_by: str | None = None
    """Badge of the raiser when known; operators may raise a CALL without logging in."""
    card_id: str | None = None
    request_id: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str = ""
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None

    @property
    def active(self) -> bool:
        return self.resolved_at is None and self.cancelled_at is None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def state(self) -> AndonState:
        if self.cancelled_at is not None:
            return AndonState.CANCELLED
        if self.resolved_at is None:
            return AndonState.ACKNOWLEDGED if self.acknowledged else AndonState.RAISED
        return AndonState.CLOSED if self.acknowledged else AndonState.RESOLVED_UNACKNOWLEDGED

    @property
    def needs_attention(self) -> bool:
        """Shown in the active list: still active, or resolved but never acknowledged."""
        return self.state in (AndonState.RAISED, AndonState.ACKNOWLEDGED, AndonState.RESOLVED_UNACKNOWLEDGED)

    def downtime(self, now: datetime, elapsed: timedelta | None = None) -> timedelta | None:
        """For a STOP, raise to resolve (running while still active); None for a CALL.

        Args:
            elapsed: the time since the raise counted on a clock that does not step (measured at
                `now`, or at the resolve for a resolved stop), when the caller has one: it wins over
                the wall difference, which a step of the wall clock during the stop bends (+1 h
                made a 4-minute stop 64 minutes).
        """
        if self.kind is not AndonKind.STOP:
            return None
        return self.running_time(now, elapsed)

    def running_time(self, now: datetime, elapsed: timedelta | None = None) -> timedelta:
        """How long the event has run (raise to resolve or cancel, or to `now` while active), for a
        CALL's wait as for a STOP's downtime: `elapsed` when given, else the wall difference."""
        if elapsed is not None:
            return max(timedelta(0), elapsed)
        end = self.resolved_at or self.cancelled_at or now
        return max(timedelta(0), end - self.raised_at)


@dataclass(frozen=True)
class ReasonRule:
    """The part of a configured reason code the domain needs."""

    code: str
    label: str
    kinds: tuple[str, ...]
    tiers: tuple[timedelta, ...]


def _label(kind: AndonKind) -> str:
    return "line stop" if kind is AndonKind.STOP else "call"


def decide_raise(
    *,
    andon_id: str,
    kind: AndonKind,
    station: str,
    reason: ReasonRule | None,
    reason_code: str,
    stations: Iterable[str],
    active: Iterable[Andon],
    at: datetime,
    source: str,
    raised_by: str | None,
    authorised: bool,
    card_id: str | None = None,
    request_id: str | None = None,
) -> Andon | Rejection:
    """Decide whether an andon may be raised; return the new event or why not.

    Args:
        authorised: the raiser holds team-lead authority now (badge + PIN session, or a key-switch
            stop button); needed for a STOP only.
        active: the events currently needing attention, to refuse an exact duplicate.
    """
    if station not in set(stations):
        return Rejection("unknown_station", f"Station {station!r} is not on this line. Pick a station.")
    if reason is None:
        return Rejection("unknown_reason", f"Reason {reason_code!r} is not configured. Pick a listed reason.")
    if kind.value not in reason.kinds:
        allowed = " or ".join(k.upper() for k in reason.kinds)
        return Rejection(
            "reason_not_for_kind",
            f"'{reason.label}' can only be raised as {allowed}, not as {kind.value.upper()}.",
        )
    if kind is AndonKind.STOP and not authorised:
        return Rejection(
            "needs_team_lead",
            "Stopping the line needs a team lead: scan a team-lead badge and enter the PIN. "
            "Raise a CALL to get one here.",
        )
    for other in active:
        same = (other.kind, other.station, other.reason, other.card_id) == (
            kind,
            station,
            reason.code,
            card_id,
        )
        if other.active and same:
            return Rejection(
                "already_active",
                f"A {_label(kind)} for '{reason.label}' at {station} is already active since "
                f"{other.raised_at:%H:%M}; help is on its way.",
            )
    return Andon(
        id=andon_id,
        kind=kind,
        station=station,
        reason=reason.code,
        raised_at=at,
        source=source,
        raised_by=raised_by,
        card_id=card_id,
        request_id=request_id,
    )


def acknowledge(andon: Andon, responder: str | None, at: datetime) -> Andon | Rejection:
    """A named responder takes the event over (also allowed after it was resolved)."""
    if not responder:
        return Rejection("needs_responder", "Scan your badge to acknowledge: a responder must be named.")
    if andon.state is AndonState.CANCELLED:
        return Rejection("cancelled", "This call was cancelled by whoever raised it; nothing to acknowledge.")
    if andon.acknowledged:
        return Rejection(
            "already_acknowledged",
            f"Already acknowledged by {andon.acknowledged_by} at {andon.acknowledged_at:%H:%M}.",
        )
    return replace(andon, acknowledged_at=max(at, andon.raised_at), acknowledged_by=responder)


def resolve(andon: Andon, by: str | None, note: str, at: datetime, *, authorised: bool) -> Andon | Rejection:
    """The problem is fixed; a STOP needs team-lead authority and every event needs a note."""
    if not andon.active:
        return Rejection("not_active", f"This {_label(andon.kind)} is not active ({andon.state.value}).")
    if andon.kind is AndonKind.STOP and not authorised:
        return Rejection(
            "needs_team_lead",
            "Only a team lead may restart the line: scan a team-lead badge and enter the PIN.",
        )
    if not note.strip():
        return Rejection("needs_note", "Say in a few words what was done (the note is required).")
    # A resolve can never come before the raise, even if the wall clock stepped back meanwhile.
    return replace(andon, resolved_at=max(at, andon.raised_at), resolved_by=by, note=note.strip())


def cancel(andon: Andon, by: str | None, source: str, at: datetime, *, authorised: bool) -> Andon | Rejection:
    """The raiser withdraws an unacknowledged CALL (a team lead may cancel it for them)."""
    if andon.kind is not AndonKind.CALL:
        return Rejection("stop_not_cancellable", "A line stop cannot be cancelled; a team lead resolves it.")
    if not andon.active:
        return Rejection("not_active", f"This call is no longer active ({andon.state.value}).")
    if andon.acknowledged:
        return Rejection(
            "already_acknowledged",
            f"{andon.acknowledged_by} has already taken this call; they resolve it with a note.",
        )
    is_raiser = (by is not None and by == andon.raised_by) or source == andon.source
    if not (is_raiser or authorised):
        return Rejection("not_raiser", "Only whoever raised this call (or a team lead) may cancel it.")
    return replace(andon, cancelled_at=max(at, andon.raised_at), cancelled_by=by)


@dataclass(frozen=True)
class Shelve:
    """A source (device or station) shelved until `until`: its signals are logged but raise nothing."""

    source: str
    until: datetime


def decide_shelve(
    source: str, duration: timedelta, max_duration: timedelta, at: datetime, *, authorised: bool
) -> Shelve | Rejection:
    """Shelve a chattering source for a bounded time; never indefinitely."""
    if not authorised:
        return Rejection("needs_team_lead", "Shelving a button needs a team lead (badge and PIN).")
    if duration <= timedelta(0):
        return Rejection("bad_duration", "Give a shelve time of at least one minute.")
    if duration > max_duration:
        minutes = int(max_duration.total_seconds() // 60)
        return Rejection(
            "too_long",
            f"A source may be shelved for at most {minutes} min; fix or replace the button instead.",
        )
    return Shelve(source, at + duration)


def line_condition(active: Iterable[Andon]) -> LineCondition:
    """STOP wins over CALL; resolved-but-unacknowledged events no longer stop the line."""
    live = [a for a in active if a.active]
    if any(a.kind is AndonKind.STOP for a in live):
        return LineCondition.STOPPED
    if live:
        return LineCondition.CALL
    return LineCondition.RUNNING


def tiers_due(
    elapsed: timedelta, acknowledged: bool, tiers: Sequence[timedelta], fired: Iterable[int]
) -> list[int]:
    """Tiers that must fire now: elapsed reached their delay, not acknowledged, not fired before.

    A tier fires when elapsed >= its delay and it has not fired: a restart re-derives the same set, a
    late tick fires every tier it passed (none is skipped), and a stored tier never fires twice.
    """
    if acknowledged:
        return []
    done = set(fired)
    return [i for i, delay in enumerate(tiers) if i not in done and elapsed >= delay]


def due_tiers(
    raised_at: datetime,
    acknowledged: bool,
    tiers: Sequence[timedelta],
    now: datetime,
    fired: Iterable[int],
) -> list[int]:
    """`tiers_due` with elapsed taken from the wall clock (negative elapsed, clock behind: none due)."""
    return tiers_due(now - raised_at, acknowledged, tiers, fired)


def elapsed_since_raise(
    anchors: Sequence[ElapsedAnchor | None], boot_id: str, mono_s: float, now: datetime
) -> timedelta | None:
    """An event's time since its raise from its stored anchors (best first), or None for the wall
    difference.

    CLOCK_MONOTONIC is one clock for every process of a boot, so an anchor of this boot is exact
    whoever wrote it (`serve`'s escalation runner, the CLI that raised it): the first such anchor
    wins. With none of this boot, the first anchor of another boot counts its stored elapsed plus
    the wall time since it was saved (`elapsed_from`): only a reboot brings the wall clock back in.
    No anchor at all (no runtime anchored the event, or rows older than anchors): None.
    """
    # An anchor of this boot read ahead of `mono_s` was taken on another monotonic clock (a test's
    # fake one): CLOCK_MONOTONIC never runs back, so it is not trusted.
    present = [a for a in anchors if a is not None and not (a.boot_id == boot_id and a.mono_s > mono_s)]
    same_boot = [a for a in present if a.boot_id == boot_id]
    chosen = same_boot or present
    return elapsed_from(chosen[0], boot_id, mono_s, now) if chosen else None
