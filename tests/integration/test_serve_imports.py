"""`serve` imports only what a headless terminal needs: no screen toolkit, no migration tool.

Textual belongs to the screen and alembic to an upgrade; a `serve` process that carried them paid
~12 MB of RSS for alembic alone on a line PC (issue 19). The process is a real one: a real broker,
a real database already at the newest schema (as on every start after the first), `serve` started
the way the CLI starts it, and its modules listed once it says it is serving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kanban_terminal.services.terminal import Terminal
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config

ROOT = Path(__file__).resolve().parents[2]

SERVE_AND_LIST_MODULES = """
import json, logging, sys, threading
from pathlib import Path
from kanban_terminal.deferred_imports import DeferredModule, defer_unused_stdlib
defer_unused_stdlib()  # as `python -m kanban_terminal.runtime` and the CLI's `serve` do, first
from kanban_terminal.config import load_config
from kanban_terminal.runtime import run_serve

ready = threading.Event()

class Ready(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("serving terminal"):
            ready.set()

logging.getLogger().addHandler(Ready())
logging.getLogger().setLevel(logging.INFO)
stop = threading.Event()
config = load_config(Path(sys.argv[1]))
codes = []
def serve():
    codes.append(run_serve(config, Path(sys.argv[2]), sys.argv[3], stop=stop))
serving = threading.Thread(target=serve)
serving.start()
if not ready.wait(60):
    raise SystemExit("serve did not get ready")
modules = sorted(n for n, m in sys.modules.items() if not isinstance(m, DeferredModule))
deferred = sorted(n for n, m in sys.modules.items() if isinstance(m, DeferredModule))
stop.set()
serving.join(30)
print(json.dumps({"modules": modules, "deferred": deferred, "exit": codes}))
"""


@pytest.mark.broker
@pytest.mark.parametrize("optimize", ["", "2"], ids=["plain", "PYTHONOPTIMIZE=2"])
def test_a_ready_serve_has_not_imported_what_it_does_not_use(
    tmp_path: Path, mosquitto: Mosquitto, optimize: str
) -> None:
    """Also under PYTHONOPTIMIZE=2 (`python -OO`, which the systemd unit sets to drop ~4 MB of
    docstrings): nothing `serve` runs may need a docstring or an assert."""
    config, config_path = make_config(tmp_path, loops=1, cards=5, sensors=5)
    Terminal.open(config, tmp_path / "data").close()  # the file exists and is at the newest schema
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE_AND_LIST_MODULES,
            str(config_path),
            str(tmp_path / "data"),
            mosquitto.url,
        ],
        cwd=ROOT,
        env=os.environ | {"PYTHONOPTIMIZE": optimize},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["exit"] == [0]
    modules = set(result["modules"])
    assert "kanban_terminal.runtime.inbound" in modules  # it really served: the inbound worker ran
    assert "paho.mqtt.client" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in {"textual", "alembic", "mako", "rich"})
    assert heavy == []
    # Loaded only when used (issue 19, RSS ready): pyserial with a `[[scanners]]` port (this line has
    # none); python-stdnum not at all (domain/card_ids.py computes MOD 37-36: stdnum's package
    # import pulled pydoc and pkgutil, +1.1 MB).
    unused = sorted(m for m in modules if m.split(".")[0] in {"serial", "stdnum", "pydoc", "pkgutil"})
    assert unused == []
    # Our own modules a headless terminal does not use until someone asks (each import moved into
    # the function that needs it): migration backups, badge log-in, the sizing report, the handover.
    lazy = {
        "kanban_terminal.storage.backup",
        "kanban_terminal.services.auth",
        "kanban_terminal.domain.auth",
        "kanban_terminal.domain.sizing",
        "kanban_terminal.domain.metrics",
        "kanban_terminal.services.handover",
        "kanban_terminal.domain.handover",
        "kanban_terminal.services.queries",
        "kanban_terminal.storage.handover_rows",
        "kanban_terminal.adapters.scanner_serial",
    }
    assert sorted(lazy & modules) == []
    # Standard-library packages SQLAlchemy, pydantic and paho import and serve never runs stay
    # stand-ins (kanban_terminal/deferred_imports.py: -4 MB ready), and what they would bring in
    # with them is not imported either.
    assert result["deferred"] == ["asyncio", "importlib.metadata", "urllib.request"]
    brought = {"email", "http", "zipfile", "csv", "concurrent", "subprocess", "asyncio.base_events"}
    assert sorted(m for m in modules if m in brought or m.split(".")[0] in brought) == []
