"""The core decides, the edges do I/O: importing the domain and the services loads no UI or device stack."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("kanban_terminal.domain.scans", ("sqlmodel", "sqlalchemy", "textual", "paho", "serial")),
        ("kanban_terminal.domain.card_ids", ("sqlmodel", "sqlalchemy", "textual", "paho", "serial")),
        ("kanban_terminal.services.scanning", ("textual", "paho", "serial")),
        ("kanban_terminal.services.queries", ("textual", "paho", "serial")),
        ("kanban_terminal.cli", ("textual", "sqlmodel", "paho", "serial")),
        # The runtime sits below the screen: `serve` never loads Textual; paho and pyserial only
        # when a link or a scanner is started.
        ("kanban_terminal.runtime", ("textual", "paho", "serial")),
    ],
)
def test_module_does_not_load(module: str, forbidden: tuple[str, ...]) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & {set(forbidden)!r})\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} loads {out.stdout.strip()}"
