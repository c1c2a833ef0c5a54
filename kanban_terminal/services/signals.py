"""Inbound bin signals: validate, deduplicate, and hand each one to `record_scan` like a scan.

A bin sensor saying "empty" is the same fact as an operator scanning the card, so it takes the same
use case (`record_scan` with `intent=EMPTY`, `source="mqtt:<device>"`, `at=` the device's time).
This module adds only what a network door needs on top:

* validation that never raises: the payload is size-capped before `json.loads`, and every way the
  parser fails (`RecursionError` on `'[' * 100000`, `ValueError` on huge integers,
  `UnicodeDecodeError`, NaN, duplicate keys) becomes a reasoned rejection (reliability.md 7.2);
* deduplication by (device, boot id, seq) in `inbound_signal`, written in the same transaction as the
  card state, so QoS 1 redeliveries and device retries never raise a second request while a device
  that rebooted (new boot id, seq restarting at 0) is still heard;
* group commit: a burst is applied in one transaction (each signal through the unchanged
  `record_scan`, writing into one `ScanStore` whose rows go to SQLite as multi-row statements), and
  the caller acknowledges each message to the broker only after the group has committed. One fsync
  per signal has a hard ceiling (stack.md 9); acknowledging before the commit is how a crash loses
  acknowledged signals.

It must not import paho: the MQTT adapter hands over plain bytes and an `ack` callable.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from kanban_terminal.domain.scans import Intent
from kanban_terminal.domain.text import escape_bytes, escape_external
from kanban_terminal.services.bus import Bus
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_SIGNAL_BYTES = 1024
"""A real signal is ~200 bytes; anything far bigger is refused before it is parsed."""
MAX_FUTURE = timedelta(minutes=5)
"""Device clocks drift; a timestamp further ahead than this is a broken clock, not a signal."""
MAX_AGE = timedelta(days=7)
"""A device may buffer signals while offline, but not for longer than this."""
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")  # "<device>:<boot>:<seq>" as the bridge writes it
_KEYS = {"v", "id", "device", "boot", "seq", "type", "at"}
_OPTIONAL = {"bin"}
_TYPES = {"bin_empty": "empty", "bin_full": "full"}
_KINDS = {"empty": Intent.EMPTY, "full": Intent.FULL}


@dataclass(frozen=True)
class BinSignal:
    """A validated bin signal."""

    id: str
    device: str
    boot: str
    seq: int
    kind: str
    at: datetime
    bin: str | None = None
    """Which bin, for a device that watches several (the bridge's multi-sensor boards)."""

    @property
    def intent(self) -> Intent:
        return _KINDS[self.kind]


@dataclass(frozen=True)
class SignalRejected:
    """Bus event: an inbound signal was refused (malformed, unknown device). Shown as a warning."""

    device: str
    reason: str
    """Escaped, safe to show and log."""


@dataclass(frozen=True)
class SignalResult:
    """What one signal did: `outcome` is None for a duplicate (already applied earlier)."""

    signal: BinSignal
    outcome: ScanOutcome | None

    @property
    def duplicate(self) -> bool:
        return self.outcome is None


class SignalNotStored(SQLAlchemyError):
    """A signal of the group hit a storage error: the whole group is rolled back, none acknowledged."""


class _Reject(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _Reject("duplicate key in JSON object")
    return data


def _no_constants(name: str) -> Any:
    raise _Reject(f"{name} is not allowed")


def parse_json_object(payload: bytes, max_bytes: int) -> dict[str, Any] | str:
    """Parse `payload` as one JSON object, or return the reason it is refused. Never raises.

    Shared by every JSON door (bin signals, upstream statuses, the upstream peer's requests).
    """
    if len(payload) > max_bytes:
        return f"payload of {len(payload)} bytes exceeds {max_bytes}"
    try:
        text = payload.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except _Reject as exc:
        return str(exc)
    except UnicodeDecodeError:
        return "payload is not valid UTF-8"
    except RecursionError:
        return "JSON nested too deeply"
    except ValueError as exc:  # JSONDecodeError, and int() refusing a 5,000-digit number
        return f"not valid JSON: {escape_external(str(exc), 80)}"
    except Exception as exc:  # defensive: a parser surprise must never reach the network thread
        return f"unparseable payload ({type(exc).__name__})"
    if not isinstance(data, dict):
        return "payload is not a JSON object"
    return data


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 UTC timestamp (`...Z` or `+00:00`) as an aware datetime, else None."""
    if not isinstance(value, str) or not 20 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        return None
    return parsed


def parse_signal(payload: bytes, topic_device: str, now: datetime) -> BinSignal | str:
    """Validate one bin-signal payload received on `topic_device`'s topic.

    Returns:
        The signal, or the reason it is refused (escaped, safe to log). Never raises.
    """
    data = parse_json_object(payload, MAX_SIGNAL_BYTES)
    if isinstance(data, str):
        return data
    return signal_from_object(data, topic_device, now)


def is_andon(data: dict[str, Any]) -> bool:
    """An andon button's payload (type andon_*): it shares the device topic with bin signals."""
    return str(data.get("type", "")).startswith("andon_")


def signal_from_object(data: dict[str, Any], topic_device: str, now: datetime) -> BinSignal | str:
    """Validate an already parsed payload (`parse_json_object`) as a bin signal; never raises.

    Split from `parse_signal` so the inbound worker parses each payload once and then routes it
    (andon button or bin signal) instead of decoding the JSON a second time.
    """
    if data.get("v") != SCHEMA_VERSION or isinstance(data.get("v"), bool):
        return f"unsupported schema version {escape_external(repr(data.get('v')), 20)} (expected 1)"
    missing = _KEYS - data.keys()
    if missing:
        return f"missing field(s): {', '.join(sorted(missing))}"
    extra = data.keys() - _KEYS - _OPTIONAL
    if extra:
        return f"unknown field(s): {escape_external(', '.join(sorted(extra)), 80)}"
    for key in ("device", "boot", "bin"):
        value = data.get(key, "")
        if key in data and (not isinstance(value, str) or not _ID.match(value)):
            return f"{key} must be 1-64 letters, digits, _ . -"
    if not isinstance(data["id"], str) or not _EVENT_ID.match(data["id"]):
        return "id must be 1-200 letters, digits, _ . : -"
    if data["device"] != topic_device:
        return "device in payload does not match the topic"
    seq = data["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**53:
        return "seq must be an integer from 0 to 2^53"
    if not isinstance(data["type"], str) or data["type"] not in _TYPES:  # [] or {} is unhashable
        return "type must be 'bin_empty' or 'bin_full'"
    at = parse_time(data["at"])
    if at is None:
        return "at must be an ISO 8601 UTC timestamp"
    if at > now + MAX_FUTURE:
        return "at is in the future: check the device clock"
    if at < now - MAX_AGE:
        return "at is older than 7 days"
    return BinSignal(data["id"], data["device"], data["boot"], seq, _TYPES[data["type"]], at, data.get("bin"))


BeforeCommit = Callable[[UnitOfWork, "list[SignalResult]"], None]
"""`SignalApplier.apply`'s hook: runs last inside the group's unit of work, with its results; it
may write into the unit and register steps for after its commit or rollback (`UnitOfWork.after_commit`,
`after_rollback`), which run before the group's events are announced."""


class SignalApplier:
    """Applies validated bin signals to a terminal, many per unit of work."""

    def __init__(self, terminal: Terminal):
        self.terminal = terminal
        self.cards = {(b.device, b.bin): b.card.upper() for b in terminal.config.bins}
        self.devices = {b.device for b in terminal.config.bins}

    def known(self, device: str) -> bool:
        return device in self.devices

    def card_of(self, signal: BinSignal) -> str | None:
        """The card a signal is about: the device's named bin, else the device's only bin."""
        return self.cards.get((signal.device, signal.bin)) or self.cards.get((signal.device, None))

    def apply(
        self, signals: list[BinSignal], before_commit: BeforeCommit | None = None
    ) -> list[SignalResult]:
        """Apply `signals` in one unit of work; returns only after it has committed (fsynced).

        Each signal goes through `record_scan` in the group's unit of work, whose rows go to SQLite
        as multi-row statements at the commit. `before_commit(uow, results)` runs last inside it.
        The group's events (scans, requests raised) are announced only once it has committed.

        Raises:
            sqlalchemy.exc.SQLAlchemyError, sqlite3.Error: the group could not be committed;
                nothing of it is stored, and the caller must not acknowledge any of its messages.
        """
        terminal = self.terminal
        results: list[SignalResult] = []
        with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
            keys = [(s.device, s.boot, s.seq) for s in signals]
            fresh = uow.inbound.claim(keys, terminal.clock())
            uow.scans.prefetch([card for s in signals if (card := self.card_of(s))])
            outcomes: list[tuple[str, str, int, str]] = []
            for signal, first in zip(signals, fresh, strict=True):
                result = self._apply_one(uow, signal) if first else SignalResult(signal, None)
                if result.outcome is not None:
                    outcomes.append((signal.device, signal.boot, signal.seq, result.outcome.kind.value))
                results.append(result)
            uow.inbound.record_outcomes(outcomes)
            if before_commit is not None:
                before_commit(uow, results)
        return results

    def _apply_one(self, uow: UnitOfWork, signal: BinSignal) -> SignalResult:
        # A storage error is raised out of record_scan (it is the group's unit of work): the whole
        # group rolls back, so no dedupe key commits without its effect and no ack loses a signal.
        outcome = record_scan(
            self.terminal,
            self.card_of(signal) or "",
            source=f"mqtt:{signal.device}",
            at=signal.at,
            intent=signal.intent,
            # The early-delivery guard protects against a person scanning the wrong card; a sensor
            # on the bin itself has measured the refill, so its "full" needs no confirmation.
            confirmed=signal.kind == "full",
            uow=uow,
        )
        return SignalResult(signal, outcome)


def prune_signals(terminal: Terminal, keep: timedelta = timedelta(days=14)) -> int:
    """Forget dedupe keys older than `keep` (longer than any broker session or device buffer)."""
    with terminal.db.unit_of_work() as uow:
        return uow.inbound.prune(terminal.clock() - keep)


def reject(bus: Bus, device: str, topic: str, reason: str) -> None:
    """Log a refused inbound message with its topic and reason and tell the screens."""
    log.warning("signal refused on %s: %s", escape_external(topic, 120), reason)
    bus.publish(SignalRejected(escape_external(device, 64), reason))


def describe_payload(payload: bytes) -> str:
    return escape_bytes(payload, 80)
