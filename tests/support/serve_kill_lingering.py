"""`serve` that SIGKILLs itself while a group of signals waits in the inbound linger (issue 19).

`python -m tests.support.serve_kill_lingering N serve --config F --data-dir D --mqtt URL`: from
the Nth time a ready group waits for more (runtime/inbound_linger.py), the process kills itself at
the first pass of paho's loop that ends with the group still waiting. Those signals are read from
the broker, neither committed nor acknowledged: after the restart the broker must deliver them
again. That instant cannot be hit from outside, so the hook is put in here, around `Linger.hold`;
production code has none. (A PUBACK sent before the commit, tried as a mutation, lost signals here:
the restarted terminal never reached the count.)
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from kanban_terminal.runtime.inbound_linger import Linger
from kanban_terminal.runtime.serve import main

KILLED = "killed while a group waited in the linger"
"""What the launcher logs just before the kill (the test finds this line)."""


def kill_at_wait(waits: int) -> None:
    """Kill at the Nth wait, at a pass that ends with the group still waiting (not where the wait
    starts): paho has read, and written what it had to, at least once since the group was ready,
    so a PUBACK sent before the commit would have reached the broker and lost its signal."""
    real_hold = Linger.hold
    started: list[float | None] = [None]

    def hold(self: Linger, now: float, pending: int, size_bound: int, *, can_wait: bool = True) -> bool:
        waiting = real_hold(self, now, pending, size_bound, can_wait=can_wait)
        if waiting and self.waits >= waits and started[0] == self.deadline:
            logging.getLogger("fault-hook").warning("fault hook: %s (%d signal(s) read)", KILLED, pending)
            os.kill(os.getpid(), signal.SIGKILL)
        started[0] = self.deadline if waiting else None
        return waiting

    Linger.hold = hold  # type: ignore[method-assign]


if __name__ == "__main__":
    kill_at_wait(int(sys.argv[1]))
    raise SystemExit(main(sys.argv[2:]))
