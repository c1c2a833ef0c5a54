"""Team-lead authority rules: lockout after failed PINs, idle sessions, who may do what.

Pure: the PIN hash itself is computed in services/auth.py (hashlib is I/O-free but slow, and the
cost parameters are an operational choice); this module only decides from counts and times.

Lockout follows reliability.md S4 (IEC 62443 CR 1.11, NIST SP 800-63B): after `failures_before_lockout`
consecutive failures every further attempt waits a delay that doubles per failure (capped), and after
`failures_before_block` the badge is blocked until re-enrolled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from kanban_terminal.domain.andon import AUTHORITY_ROLES
from kanban_terminal.domain.cards import Rejection

MAX_LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class LockoutPolicy:
    failures_before_lockout: int = 5
    first_lockout: timedelta = timedelta(seconds=30)
    failures_before_block: int = 100


@dataclass(frozen=True)
class CredentialState:
    """What the lockout rules need to know about one badge's credential."""

    badge: str
    failures: int = 0
    locked_until: datetime | None = None
    blocked: bool = False


def lockout_delay(failures: int, policy: LockoutPolicy) -> timedelta:
    """Delay after `failures` consecutive failures: none below the threshold, then doubling."""
    if failures < policy.failures_before_lockout:
        return timedelta(0)
    steps = failures - policy.failures_before_lockout
    delay: timedelta = policy.first_lockout * (2 ** min(steps, 20))
    return min(MAX_LOCKOUT, delay)


def check_attempt(state: CredentialState, now: datetime) -> Rejection | None:
    """Refuse an attempt while blocked or locked; None means the PIN may be checked."""
    if state.blocked:
        return Rejection(
            "blocked",
            f"Badge {state.badge} is blocked after too many wrong PINs. Ask a manager to re-enrol it.",
        )
    if state.locked_until is not None and now < state.locked_until:
        wait = int((state.locked_until - now).total_seconds()) + 1
        return Rejection(
            "locked_out",
            # One line of the badge dialog at 80 columns (68 characters): the old wording wrapped.
            f"Too many wrong PINs for {state.badge}: wait {wait} s or ask another team lead.",
        )
    return None


def after_failure(state: CredentialState, now: datetime, policy: LockoutPolicy) -> CredentialState:
    failures = state.failures + 1
    delay = lockout_delay(failures, policy)
    return replace(
        state,
        failures=failures,
        locked_until=now + delay if delay else state.locked_until,
        blocked=failures >= policy.failures_before_block,
    )


def after_success(state: CredentialState) -> CredentialState:
    return replace(state, failures=0, locked_until=None)


def has_authority(role: str | None) -> bool:
    """Team leads and above may stop the line, restart it, suspend cards and shelve sources."""
    return role in AUTHORITY_ROLES


@dataclass(frozen=True)
class SessionState:
    """A logged-in team lead and when they last did something."""

    badge: str
    name: str
    role: str
    last_activity: datetime


def session_expired(session: SessionState, now: datetime, idle: timedelta) -> bool:
    """Expired after `idle` without activity; a clock that stepped back does not extend it forever."""
    return now - session.last_activity >= idle or now < session.last_activity - idle


def validate_pin(pin: str) -> Rejection | None:
    """A PIN is 4 to 12 digits: typed on a line terminal, often with gloves."""
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        return Rejection("bad_pin_format", "A PIN is 4 to 12 digits.")
    if len(set(pin)) == 1 or pin in "0123456789012" or pin in "9876543210987":
        return Rejection("weak_pin", "Choose a PIN that is not a repeated or consecutive digit run.")
    return None
