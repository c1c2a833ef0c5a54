"""Andon button signals from devices (the firmware bridge over MQTT): dedupe, then raise or cancel.

The payload (docs/schema/andon_signal.json) is validated by the wire schema (adapters/wire), which
refuses and keeps bad ones; this module gets an `AndonSignal` with a configured station and reason.

QoS 1 delivers at least once, so the same signal may arrive twice (a redelivery after a reconnect,
the bridge's own retry). The device's id is stored in `andon_signal` in the same transaction as the
andon it raised: a second copy finds it and changes nothing. A shelved device's signals are logged
and raise nothing until the shelve ends. A STOP from a button is accepted only from devices listed
in `andon.stop_devices` (key switches team leads hold), or for a quality reason from any button
where `[quality_stop] anyone` allows it (services/quality_stop.py); any other is refused and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import AndonKind, AndonState
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.inbound import AndonSignal
from kanban_terminal.services import andon_elapsed
from kanban_terminal.services.andon import AndonChanged, LineStateChanged, raise_in
from kanban_terminal.services.andon_log import log_andon, log_refusal
from kanban_terminal.services.andon_views import AndonView, line_state, shelved_until, step_view, view_of
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.storage.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

DEVICE_SOURCE = "mqtt:"
"""An andon a device raised has the source "mqtt:<device>" (what a team lead may shelve)."""


@dataclass(frozen=True)
class SignalOutcome:
    status: str
    """raised, cancelled, duplicate, shelved or refused (invalid signals never get here)."""
    message: str
    andon_id: str | None = None


def handle_andon_signal(
    terminal: Terminal, signal: AndonSignal, *, received_at: datetime | None = None
) -> SignalOutcome:
    """Dedupe by the device's id, and raise or cancel; one unit of work, then the bus."""
    now = terminal.clock()
    at = received_at or now
    signal_id, device, kind = signal.id, signal.device, signal.kind
    station, reason = signal.station, signal.reason
    source = f"mqtt:{device}"
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        andons = uow.andons
        if andons.signal_seen(signal_id):
            return SignalOutcome("duplicate", f"signal {signal_id} already handled")
        changed: AndonView | None = None
        until = shelved_until(uow, device, now)
        if until is not None:
            outcome = SignalOutcome("shelved", f"{device} is shelved until {until:%H:%M} UTC; signal logged")
            andons.log(
                CardLogRow(
                    occurred_at=at, recorded_at=now, event="andon_signal_shelved", source=source,
                    detail=f"{signal.type} {station} {reason} ignored: shelved until {until:%H:%M} UTC",
                )
            )  # fmt: skip
        elif kind is None:
            changed, outcome = _cancel(terminal, uow, device, station, source, now, at)
        else:
            result = raise_in(
                terminal, uow, kind=kind, station=station, reason=reason, source=source, actor=None,
                authorised=kind is AndonKind.CALL or device in terminal.config.andon.stop_devices,
                now=now, at=at,
            )  # fmt: skip
            if isinstance(result, Rejection):
                outcome = SignalOutcome("refused", result.message)
            else:
                changed = view_of(terminal, result)
                outcome = SignalOutcome("raised", f"{kind.value} raised by {device}", result.id)
        andons.record_signal(
            signal_id,
            device=device,
            type_=signal.type,
            at=now,
            outcome=outcome.status,
            andon_id=outcome.andon_id,
        )
        if changed is not None:
            # Released by the unit of work only once it has committed.
            action = "cancelled" if changed.andon.state is AndonState.CANCELLED else "raised"
            uow.collect(AndonChanged(action, changed, None, at))
            uow.collect(LineStateChanged(line_state(terminal, uow, now)))
    return outcome


def _cancel(
    terminal: Terminal, uow: UnitOfWork, device: str, station: str, source: str, now: datetime, at: datetime
) -> tuple[AndonView | None, SignalOutcome]:
    """Cancel the newest unacknowledged CALL this device raised at `station`, with its time since the
    raise from its elapsed anchor, as the screen's cancel records it (services/andon_elapsed.py)."""
    before = uow.andons.newest_open_call(source, station)
    if before is None:
        rejection = Rejection("nothing_to_cancel", f"{device} has no unacknowledged call at {station}")
        log_refusal(uow, "cancelled", rejection, actor=None, source=source, now=now)
        return None, SignalOutcome("refused", rejection.message)
    result = rules.cancel(before, None, source, at, authorised=False)
    if isinstance(result, Rejection):
        log_refusal(uow, "cancelled", result, actor=None, source=source, now=now, andon_id=before.id)
        return None, SignalOutcome("refused", result.message, before.id)
    uow.andons.store(result)
    elapsed = andon_elapsed.at_end(terminal, uow, result, now)
    log_andon(
        uow, result, "andon_cancelled", actor=None, source=source, now=now, at=at,
        from_state=before.state.value, elapsed=elapsed,
    )  # fmt: skip
    view = step_view(terminal, uow, "cancelled", result, elapsed)
    return view, SignalOutcome("cancelled", f"call cancelled by {device}", before.id)
