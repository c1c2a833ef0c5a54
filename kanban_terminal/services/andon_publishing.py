"""Publishing andon state: a small port, the payloads, and the bus subscription that drives it.

`AndonPublisher` is all the andon feature needs from a transport: the retained line state, andon
events (never retained: a restart must not replay them), and stack-light commands. The terminal's
one MQTT link implements it (adapters/andon_link.py, `LinkAndonPublisher`); tests record it in memory.
Payloads are built here, so every transport sends the same bytes.

Subscribers run on the publishing thread right after a commit; `publish_*` must only queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from kanban_terminal.domain.andon import AndonState, LineCondition
from kanban_terminal.services.andon import AndonChanged, LineStateChanged
from kanban_terminal.services.andon_views import AndonView, LineStateView, line_state
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.types import to_text

Payload = dict[str, Any]


class AndonPublisher(Protocol):
    def publish_line_state(self, payload: Payload) -> None:
        """Retained, QoS 1: the line's current condition and the events needing attention."""

    def publish_andon_event(self, payload: Payload) -> None:
        """Not retained, QoS 1: one lifecycle step of one andon event."""

    def publish_stack_light(self, device: str, payload: Payload) -> None:
        """Not retained, QoS 1: what a stack light should show now (sent on every line-state change)."""


def _event_fields(view: AndonView) -> Payload:
    a = view.andon
    return {
        "id": a.id,
        "kind": a.kind.value,
        "station": a.station,
        "reason": a.reason,
        "reason_label": view.reason_label,
        "colour": view.colour,
        "state": a.state.value,
        "raised_at": to_text(a.raised_at),
        "acknowledged_by": a.acknowledged_by,
        "card": a.card_id,
        "tiers_fired": list(view.tiers_fired),
    }


def line_state_payload(terminal: Terminal, view: LineStateView) -> Payload:
    return {
        "v": 1,
        "line": terminal.config.line.id,
        "terminal": terminal.config.terminal.id,
        "state": view.condition.value,
        "at": to_text(view.at),
        "active": [_event_fields(v) for v in view.active],
    }


def andon_event_payload(terminal: Terminal, event: AndonChanged) -> Payload:
    a = event.view.andon
    payload: Payload = {
        "v": 1,
        "line": terminal.config.line.id,
        "terminal": terminal.config.terminal.id,
        "action": event.action,
        "at": to_text(event.at),
        "actor": event.actor,
        **_event_fields(event.view),
    }
    if event.tier is not None:
        payload["tier"], payload["role"] = event.tier, event.role
    if a.resolved_at is not None:
        payload["resolved_at"], payload["note"] = to_text(a.resolved_at), a.note
        down = event.view.downtime  # as recorded at the resolve: the log's fact, same figure
        if down is not None:
            payload["downtime_s"] = round(down.total_seconds())
    if event.view.step_elapsed is not None:  # the acknowledge's, resolve's or cancel's `elapsed_s`
        payload["elapsed_s"] = round(event.view.step_elapsed.total_seconds())
    return payload


def stack_light_payloads(view: LineStateView) -> tuple[Payload, Payload]:
    """The device commands of docs/FIRMWARE_PROTOCOL.md's bridge: a `light` and a `buzzer` command.

    Red steady + buzzer while stopped and unacknowledged; amber blinking while a call waits, steady
    once taken; green while running.
    """
    unacked = any(v.andon.state is AndonState.RAISED for v in view.active)
    lamps = {"red": "off", "amber": "off", "green": "off"}
    buzzer = False
    if view.condition is LineCondition.STOPPED:
        lamps["red"], buzzer = "on", unacked
    elif view.condition is LineCondition.CALL:
        # The line still runs during a call: green stays on, as the bridge's own line-state mapping has it.
        lamps["amber"], lamps["green"] = ("blink" if unacked else "on"), "on"
    else:
        lamps["green"] = "on"
    state = view.condition.value
    return (
        {"v": 1, "type": "light", "state": state, **lamps},
        {"v": 1, "type": "buzzer", "state": state, "on": buzzer},
    )


def connect_publisher(terminal: Terminal, publisher: AndonPublisher) -> Callable[[], None]:
    """Publish every andon change from the bus; returns the unsubscribe function."""
    lock = threading.Lock()
    latest = [0]

    def on_event(event: object) -> None:
        if isinstance(event, AndonChanged):
            publisher.publish_andon_event(andon_event_payload(terminal, event))
        elif isinstance(event, LineStateChanged):
            with lock:
                # Two workers may reach the bus out of commit order; never let an older state overwrite
                # a newer retained one. `seq`, not the wall clock, which may step back.
                if event.view.seq < latest[0]:
                    return
                latest[0] = event.view.seq
                _publish_state(terminal, publisher, event.view)

    return terminal.bus.subscribe(on_event)


def _publish_state(terminal: Terminal, publisher: AndonPublisher, view: LineStateView) -> None:
    publisher.publish_line_state(line_state_payload(terminal, view))
    for device in terminal.config.andon.stack_lights:
        for command in stack_light_payloads(view):
            publisher.publish_stack_light(device, command)


def publish_current(terminal: Terminal) -> None:
    """Announce the line state as it is now on the bus, so every connected publisher sends it (on
    connect: the retained topic must be current).

    Read under the write lock so no andon change can commit between this read and its `seq`.
    """
    with terminal.db.unit_of_work() as uow:
        view = line_state(terminal, uow, terminal.clock())
    terminal.bus.publish(LineStateChanged(view))
