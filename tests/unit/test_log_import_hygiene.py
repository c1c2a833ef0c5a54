"""The card-log, metrics and sizing code runs headless: importing it must not load Textual."""

from __future__ import annotations

import subprocess
import sys


def test_headless_modules_do_not_import_textual() -> None:
    modules = [
        "kanban_terminal.domain.metrics",
        "kanban_terminal.domain.andon_metrics",
        "kanban_terminal.domain.sizing",
        "kanban_terminal.services.log_query",
        "kanban_terminal.services.log_integrity",
        "kanban_terminal.services.reports",
        "kanban_terminal.services.metrics_text",
        "kanban_terminal.services.lost_cards",
        "kanban_terminal.services.printing",
        "kanban_terminal.cli",
    ]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'paho', 'serial', 'segno'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # segno is fine (printing needs it); textual, paho and serial are not.
    assert out.stdout.strip() in ("[]", "['segno']")


def test_domain_modules_import_no_storage() -> None:
    code = (
        "import sys\nimport kanban_terminal.domain.metrics, kanban_terminal.domain.andon_metrics, "
        "kanban_terminal.domain.sizing\n"
        "print(any(m.startswith(('sqlmodel', 'sqlalchemy')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
