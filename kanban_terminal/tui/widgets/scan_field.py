"""The scan field: where a keyboard-wedge scanner types. Present on every screen, always focused."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class ScanField(Input):
    """An Input that submits on Enter or Tab (scanners end a read with either) and then clears."""

    BINDINGS = [Binding("tab", "submit", "Submit scan", show=False, id="scan.submit_tab")]

    @dataclass
    class Scanned(Message):
        """The operator (or the scanner) finished typing a code."""

        code: str

    def __init__(self, *, placeholder: str = "Scan a kanban card", id: str = "scan-field") -> None:
        super().__init__(placeholder=placeholder, id=id, max_length=512)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        code = event.value
        self.value = ""
        if code.strip():
            self.post_message(self.Scanned(code))
