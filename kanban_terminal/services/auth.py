"""Team-lead authority: enrol a PIN, log in with badge + PIN, and keep the session until it idles out.

PINs are hashed with scrypt (standard library), salted per badge, with the OWASP parameters N=2^17,
r=8, p=1: measured 0.48 s per verify on the 2-core development box, inside the S4 budget of 1 s.
scrypt needs 128 * N * r bytes (128 MiB) and hashlib refuses above 32 MiB unless `maxmem` says so.
The parameters travel inside the stored string, so tests (and a later cost increase) can use others
and old hashes still verify. Only the hash reaches the `credential` table; the PIN is never stored
or logged. Every success, failure, lockout and session end is a card-log row with the badge as actor.

The slow hash runs outside the write transaction: holding BEGIN IMMEDIATE for half a second would
stall every scan on the line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from kanban_terminal.config import Person
from kanban_terminal.domain.auth import (
    CredentialState,
    LockoutPolicy,
    SessionState,
    after_failure,
    after_success,
    check_attempt,
    has_authority,
    session_expired,
    validate_pin,
)
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import CredentialRow
from kanban_terminal.storage.unit_of_work import UnitOfWork

SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 256 * 1024 * 1024


def hash_pin(pin: str, *, n: int = SCRYPT_N, salt: bytes | None = None) -> str:
    """Return `scrypt$n$r$p$salt$hash` (base64); the PIN itself is not recoverable from it."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_pin(stored: str, pin: str) -> bool:
    """Constant-time comparison of `pin` against a stored hash; a malformed hash never verifies."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            pin.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def lockout_policy(terminal: Terminal) -> LockoutPolicy:
    settings = terminal.config.andon
    return LockoutPolicy(
        failures_before_lockout=settings.pin_failures_before_lockout,
        first_lockout=timedelta(seconds=settings.lockout_seconds),
        failures_before_block=settings.pin_failures_before_block,
    )


def person(terminal: Terminal, badge: str) -> Person | None:
    return next((p for p in terminal.config.people if p.badge == badge), None)


def log_badge_row(
    uow: UnitOfWork, event: str, badge: str | None, source: str, detail: str, now: datetime
) -> None:
    """A log row of a team lead's action or login, `badge` as its actor (None: no one logged in)."""
    uow.log.append(
        card_log.LogEntry(
            occurred_at=now,
            recorded_at=now,
            event=event,
            actor=escape_external(badge, 64) if badge is not None else None,
            source=escape_external(source, 80),
            detail=detail,
        )
    )


def enroll(
    terminal: Terminal, badge: str, pin: str, *, n: int | None = None, source: str = "cli"
) -> Rejection | None:
    """Store the hash of a team lead's PIN (replacing an old one, clearing any lockout)."""
    who = person(terminal, badge)
    if who is None:
        return Rejection("unknown_badge", f"Badge {badge!r} is not listed under [[people]] in the config.")
    if not has_authority(who.role):
        return Rejection(
            "not_team_lead", f"{who.name} is listed as {who.role}; only team leads and above get a PIN."
        )
    bad = validate_pin(pin)
    if bad is not None:
        return bad
    pin_hash = hash_pin(pin, n=n or SCRYPT_N)
    now = terminal.clock()
    with terminal.db.unit_of_work() as uow:
        session = uow.session
        row = session.get(CredentialRow, badge)
        if row is None:
            session.add(CredentialRow(badge=badge, pin_hash=pin_hash, enrolled_at=now))
        else:
            row.pin_hash, row.enrolled_at = pin_hash, now
            row.failures, row.locked_until, row.blocked = 0, None, False
        log_badge_row(uow, "auth_enrolled", badge, source, f"PIN set for {who.name}", now)
    return None


def login(terminal: Terminal, badge: str, pin: str, *, source: str) -> SessionState | Rejection:
    """Check badge + PIN; every outcome is logged. Returns the new session or why not."""
    badge = badge.strip().upper()
    now = terminal.clock()
    who = person(terminal, badge)
    with terminal.db.reading() as session:
        row = session.get(CredentialRow, badge)
    refusal: Rejection | None = None
    if who is None or not has_authority(who.role):
        refusal = Rejection("not_team_lead", f"Badge {badge} has no team-lead authority on this line.")
    elif row is None:
        refusal = Rejection("not_enrolled", f"No PIN enrolled for {who.name}: ask to run `enroll {badge}`.")
    else:
        refusal = check_attempt(_state(row), now)
        if refusal is None and not pin:
            # Enter on an empty PIN field (a glove), an empty pipe: no PIN is not a wrong one, and
            # must not count toward the lockout (five of them locked a team lead out).
            refusal = Rejection("no_pin", "No PIN was typed: type the PIN, then Enter.")
    if refusal is not None:
        with terminal.db.unit_of_work() as uow:
            log_badge_row(uow, "auth_refused", badge, source, refusal.message, now)
        return refusal
    assert row is not None and who is not None
    ok = verify_pin(row.pin_hash, pin)
    policy = lockout_policy(terminal)
    now = terminal.clock()
    with terminal.db.unit_of_work() as uow:
        current = uow.session.get(CredentialRow, badge)
        assert current is not None
        state = _state(current)
        if ok:
            _store(current, after_success(state))
            log_badge_row(uow, "auth_success", badge, source, f"team lead {who.name}", now)
            return SessionState(badge, who.name, who.role, now)
        new = after_failure(state, now, policy)
        _store(current, new)
        log_badge_row(uow, "auth_failure", badge, source, f"wrong PIN ({new.failures} in a row)", now)
        if new.blocked and not state.blocked:
            log_badge_row(uow, "auth_blocked", badge, source, f"blocked after {new.failures}", now)
        elif new.locked_until is not None and new.locked_until != state.locked_until:
            wait = (new.locked_until - now).total_seconds()
            log_badge_row(uow, "auth_lockout", badge, source, f"locked for {wait:.0f} s", now)
    return check_attempt(new, now) or Rejection("wrong_pin", "Wrong PIN. Try again.")


def _state(row: CredentialRow) -> CredentialState:
    return CredentialState(row.badge, row.failures, row.locked_until, row.blocked)


def _store(row: CredentialRow, state: CredentialState) -> None:
    row.failures, row.locked_until, row.blocked = state.failures, state.locked_until, state.blocked


@dataclass
class AuthSession:
    """The team lead logged in at this terminal, if any (one per screen or headless caller).

    Thread-safe: the TUI reads it on the event loop while use cases run in worker threads.
    """

    state: SessionState | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def start(self, state: SessionState) -> None:
        with self._lock:
            self.state = state

    def current(self, terminal: Terminal, *, source: str = "keyboard") -> SessionState | None:
        """The live session, ending (and logging) it if it idled out."""
        now = terminal.clock()
        idle = timedelta(minutes=terminal.config.andon.team_lead_idle_minutes)
        with self._lock:
            state = self.state
            if state is None:
                return None
            if not session_expired(state, now, idle):
                return state
            self.state = None
        with terminal.db.unit_of_work() as uow:
            log_badge_row(uow, "auth_session_ended", state.badge, source, "idle timeout", now)
        return None

    def touch(self, terminal: Terminal) -> None:
        with self._lock:
            if self.state is not None:
                self.state = SessionState(
                    self.state.badge, self.state.name, self.state.role, terminal.clock()
                )

    def logout(self, terminal: Terminal, *, source: str = "keyboard") -> None:
        with self._lock:
            state, self.state = self.state, None
        if state is not None:
            now = terminal.clock()
            with terminal.db.unit_of_work() as uow:
                log_badge_row(uow, "auth_logout", state.badge, source, "logged out", now)
