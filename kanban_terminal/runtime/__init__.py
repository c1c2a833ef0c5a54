"""The composition root: the one place that starts the terminal's background work.

`Runtime` (also importable as `TerminalServices`, its old name) runs every job of one terminal;
`open_runtime` is the start-up path `serve`, `run` and `demo` share; `run_serve` / `run_upstream`
are the headless roots. Screens and CLI verbs import from here; services never do.
"""

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
