"""Messages the App receives from outside the event loop."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class BusEvent(Message):
    """An event from the service bus, handed over from whichever thread published it."""

    event: object


@dataclass
class ScannerRead(Message):
    """A serial scanner delivered a complete line (posted from its reader thread)."""

    code: str
    source: str


@dataclass
class ScannerStateChanged(Message):
    """A serial scanner's port opened or was lost (posted from its reader thread)."""

    name: str
    connected: bool
    detail: str
