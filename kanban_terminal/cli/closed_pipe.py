"""`kanban-terminal verify-log | head -1`: the reader goes away before every line is written.

Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError instead of killing the
process as it kills `cat`. The verbs used to swallow it and exit 0: a script piping `handover` (exit
3 while not taken over) or `verify-log` (exit 1 when broken) into `head` read "all well" whatever
happened. Now the exit status is what a shell reports for a tool killed by SIGPIPE, 128 + 13 = 141
(`set -o pipefail` scripts see it; `... | head` in an interactive shell shows nothing), and nothing
is printed: the reader asked for no more. stdout is pointed at /dev/null so the interpreter's last
flush at exit does not raise again ("Exception ignored ... BrokenPipeError", exit 120), as the
Python docs' note on SIGPIPE recommends.
"""

from __future__ import annotations

import os
import sys

EXIT_PIPE_CLOSED = 128 + 13  # 128 + SIGPIPE: the shell's status for a writer whose reader left


def flushed(code: int) -> int:
    """`code`, once what the verb printed is out: a small output sits in stdout's buffer until
    here, and a reader that left shows up now (inside `main`'s try) rather than at exit."""
    sys.stdout.flush()
    return code


def reader_went_away() -> int:
    """In `except BrokenPipeError`: print nothing more, and return the exit status."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE_CLOSED
