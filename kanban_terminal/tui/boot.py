"""The screen's start: the scan screen first, the runtime right after it (issue 15).

Opening the runtime means importing the storage stack (sqlalchemy, sqlmodel, the tables: ~0.3 s of
imports on a quiet box, more on a busy one), opening and checking the database, syncing the catalog
and starting the jobs. `run` used to do all of it before the App existed, so an operator looked at
a blank terminal for 0.95 s (p50, quiet box; 4.5x a bare Textual app's launch). Now the App is built
from the config alone and paints the scan screen; `RuntimeBoot` then opens the runtime on a thread
of its own and hands it over with a message (`RuntimeOpened`), and the App wires the bus, the andon
half and the other modes. A failure to open (`RuntimeFailed`) is shown on the screen, and re-raised
by `close` once the App has stopped, so `run` exits as it did before (cli/__init__.py's codes).

`EarlyReads` keeps the scans read before the runtime was up, in order, until it is: they are recorded
by one thread, oldest first, and reads that come while it works wait behind them.

What `serve` runs is unchanged: the opener `cli/screen.py` gives is `open_runtime`, the same path.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from textual.message import Message

from kanban_terminal.logging_setup import LOG_DIRNAME, LOG_FILENAME  # already loaded by `run`

if TYPE_CHECKING:
    from kanban_terminal.config import TerminalConfig
    from kanban_terminal.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFERRED = (
    "kanban_terminal.services.andon",
    "kanban_terminal.services.andon_signals",
    "kanban_terminal.services.andon_views",
    "kanban_terminal.services.auth",
    "kanban_terminal.services.handover",
    "kanban_terminal.services.queries",
    "kanban_terminal.services.signals",
    "kanban_terminal.services.suspension",
)
"""Modules the App imports where they are used (tui/app.py, the mixins): imported here on the boot
thread, so the first use on the screen's thread does not pay for them."""


@dataclass
class RuntimeOpened(Message):
    """The runtime is up: the App takes it (on its own loop)."""

    runtime: Runtime


@dataclass
class RuntimeFailed(Message):
    """The runtime could not be opened: why, in words for the screen."""

    reason: str


class RuntimeBoot:
    """Opens the terminal's runtime off the screen's thread and hands it to the App.

    Made by `cli/screen.py`, which calls `close` after the App has stopped: it waits for an opening
    still under way, closes what was opened (jobs, then the database, as `open_runtime`'s block did)
    and re-raises a failure to open. What is opened is closed on the same thread, which lives until
    then: a process started there (the demo's broker) is stopped by the kernel when the *thread* that
    started it ends (PR_SET_PDEATHSIG, prctl(2); adapters/embedded_broker.py), which in a first
    version killed the demo's broker 3 s after start-up.
    """

    def __init__(self, config: TerminalConfig, opener: Callable[[ExitStack], Runtime]) -> None:
        """Args:
        config: the terminal's config (the App builds its first screen from it alone).
        opener: opens the runtime, entering what must be closed later on the given stack.
        """
        self.config = config
        self._opener = opener
        self._stack = ExitStack()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.error: BaseException | None = None
        self._close_error: BaseException | None = None

    def start(self, deliver: Callable[[Message], object]) -> None:
        """Open on a thread of its own; `deliver` (the App's thread-safe `post_message`) gets
        `RuntimeOpened` or `RuntimeFailed`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._open, args=(deliver,), name="runtime-boot", daemon=True)
        self._thread.start()

    def _open(self, deliver: Callable[[Message], object]) -> None:
        try:
            runtime = self._opener(self._stack)
            for name in DEFERRED:
                importlib.import_module(name)
        except Exception as exc:  # shown on the screen, re-raised by close() for the CLI's exit code
            log.exception("the runtime could not be opened")
            self.error = exc
            deliver(RuntimeFailed(_reason(exc)))
        else:
            deliver(RuntimeOpened(runtime))
        self._closing.wait()
        try:
            self._stack.close()
        except BaseException as exc:  # re-raised by close(), on the caller's thread
            self._close_error = exc

    def close(self) -> None:
        """After the App has stopped: close what was opened; re-raise a failure to open."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
        else:
            self._stack.close()
        if self.error is not None:
            raise self.error
        if self._close_error is not None:
            raise self._close_error


UNNAMED_FAILURE = (
    "It stopped on an error that gave no reason. Call maintenance: the details are in "
    f"{LOG_DIRNAME}/{LOG_FILENAME} in the terminal's data dir."
)
"""What the screen says of an error with no words of its own (a bare `RuntimeError()`): what
happened and who can act on it, never a class name."""


def _reason(exc: Exception) -> str:
    """Why the runtime could not be opened, for the screen: the project's own errors (data dir in
    use, database or key file unusable) say it in words already; SQLAlchemy's text carries the SQL
    statement and a web link, and an empty message used to show the exception's class name."""
    from kanban_terminal.storage.errors import STORAGE_ERRORS, storage_reason

    if isinstance(exc, STORAGE_ERRORS):
        return f"The database could not be opened ({storage_reason(exc)})."
    return str(exc) or UNNAMED_FAILURE


class EarlyReads(Generic[T]):
    """Reads that came before the runtime was up, kept in order until it is; thread-safe."""

    def __init__(self, *, held: bool = True) -> None:
        """held: keep reads until `drain` (False: they go straight through, as with a runtime
        given to the App open)."""
        self._lock = threading.Lock()
        self._held: deque[T] = deque()
        self._open = not held

    def hold(self, read: T) -> bool:
        """Keep `read` if reads are still held (True); False once they go straight through."""
        with self._lock:
            if self._open:
                return False
            self._held.append(read)
            return True

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def drain(self, record: Callable[[T], object]) -> None:
        """Record every held read, oldest first, those that come meanwhile included; then let reads
        through. One caller at a time (the App's drain worker)."""
        while True:
            with self._lock:
                if not self._held:
                    self._open = True
                    return
                read = self._held.popleft()
            try:
                record(read)
            except Exception:  # the next reads must not wait forever behind one that failed
                log.exception("a scan read while starting could not be recorded")
