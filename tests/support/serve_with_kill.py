"""`serve` that SIGKILLs itself right after its Nth signal-group commit, before the acks (R7).

The fault suite's launcher: `python -m tests.support.serve_with_kill N serve --config F --data-dir D
--mqtt URL`. That instant cannot be hit from outside (a random kill lands there only by luck), so the
hook is installed here, through the runtime's `after_group_commit` option; production code has none.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from kanban_terminal.runtime import RuntimeOptions
from kanban_terminal.runtime.serve import main

KILLED = "killed after a commit, before its acks"
"""What the launcher logs just before the kill (the test counts these lines)."""


def kill_after(commits: int) -> RuntimeOptions:
    def after_group_commit(committed: int) -> None:
        if committed >= commits:
            logging.getLogger("fault-hook").warning("fault hook: %s (commit %d)", KILLED, committed)
            os.kill(os.getpid(), signal.SIGKILL)

    return RuntimeOptions(after_group_commit=after_group_commit)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[2:], options=kill_after(int(sys.argv[1]))))
