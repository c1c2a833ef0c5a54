"""The operations modules stay headless: importing them loads no Textual, paho or pyserial."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "kanban_terminal.cli.doctor",
    "kanban_terminal.services.health",
    "kanban_terminal.services.maintenance",
    "kanban_terminal.services.instance_lock",
    "kanban_terminal.storage.backup",
    "kanban_terminal.logging_setup",
    "kanban_terminal.progress",
    "kanban_terminal.adapters.broker_probe",
]


def test_no_ui_or_transport_library_is_loaded_on_import() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'paho', 'serial', 'rich'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
