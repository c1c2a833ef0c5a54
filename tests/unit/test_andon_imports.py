"""Import hygiene for the andon feature: the core and its services load no Textual and no paho."""

from __future__ import annotations

import subprocess
import sys


def test_andon_core_and_services_import_no_ui_and_no_mqtt() -> None:
    code = (
        "import sys\n"
        "import kanban_terminal.domain.andon, kanban_terminal.domain.auth\n"
        "import kanban_terminal.services.andon, kanban_terminal.services.auth\n"
        "import kanban_terminal.services.escalation, kanban_terminal.services.andon_signals\n"
        "import kanban_terminal.services.andon_publishing, kanban_terminal.services.suspension\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'paho', 'serial')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
