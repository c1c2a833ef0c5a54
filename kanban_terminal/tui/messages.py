"""Messages the App receives from outside the event loop."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class BusEvent(Message):
    """An event from the service bus, handed over from whichever thread published it (the runtime's
    jobs included: serial scanner states, lost cards, escalations)."""

    event: object
