"""The composition root: the one place that starts the terminal's background work.

`Runtime` (also importable as `TerminalServices`, its old name) runs every job of one terminal;
`open_runtime` is the start-up path `serve`, `run` and `demo` share; `run_serve` / `run_upstream`
are the headless roots. Screens and CLI verbs import from here; services never do.

The names are loaded when first used (PEP 562), not when the package is: `serve` reads its config
before the storage stack is imported, so the 10 MB the TOML parse frees on a 20,000-card line is
filled by the imports instead of staying beside them (RSS ready 75.6 -> 68.9 MB in-process, issue
19), and the CLI builds its parser without importing SQLAlchemy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kanban_terminal.runtime.inbound import GROUP_MAX, InboundWorker
    from kanban_terminal.runtime.serve import (
        resolve_mqtt,
        run_serve,
        run_upstream,
        start_demo_environment,
    )
    from kanban_terminal.runtime.start_up import freeze_start_up_objects
    from kanban_terminal.runtime.terminal_runtime import (
        LinkStatus,
        Runtime,
        RuntimeOptions,
        TerminalServices,
        open_runtime,
    )

_WHERE = {
    "GROUP_MAX": "inbound",
    "InboundWorker": "inbound",
    "LinkStatus": "terminal_runtime",
    "Runtime": "terminal_runtime",
    "RuntimeOptions": "terminal_runtime",
    "TerminalServices": "terminal_runtime",
    "freeze_start_up_objects": "start_up",
    "open_runtime": "terminal_runtime",
    "resolve_mqtt": "serve",
    "run_serve": "serve",
    "run_upstream": "serve",
    "start_demo_environment": "serve",
}

__all__ = [
    "GROUP_MAX",
    "InboundWorker",
    "LinkStatus",
    "Runtime",
    "RuntimeOptions",
    "TerminalServices",
    "freeze_start_up_objects",
    "open_runtime",
    "resolve_mqtt",
    "run_serve",
    "run_upstream",
    "start_demo_environment",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
