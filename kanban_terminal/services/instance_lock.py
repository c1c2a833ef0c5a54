"""Who is using a data dir right now, told by `flock` locks the kernel drops when a process dies.

Three kinds of user, two lock files in the data dir:

- every open terminal (the screen, `serve`, and a short headless verb such as `scan`) holds a SHARED
  lock on `terminal.lock`, so any number of them can run side by side (`scan` beside `run` must work);
- a long-running owner (`run`, `serve`) also holds an EXCLUSIVE lock on `running.lock`, so a second
  screen or service on the same data dir is refused, and it writes its pid there for the message;
- `restore` takes the EXCLUSIVE lock on `terminal.lock`: it gets it only when nobody has the data dir
  open, and while it holds it nobody can open it.

flock and not a pid file: a crashed or SIGKILLed terminal leaves a pid file behind but never a lock.
flock locks belong to the open file description, so two terminals in one process (tests) still
conflict exactly as two processes would.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

USE_LOCK = "terminal.lock"
RUNNING_LOCK = "running.lock"


class DataDirBusy(Exception):
    """The data dir is in use in a way that forbids what was asked; the message says by whom."""


def _open_lock(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_flock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _running_owner(data_dir: Path) -> str:
    try:
        pid = (data_dir / RUNNING_LOCK).read_text().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid else "another process"


@dataclass
class InstanceLock:
    """The locks one open terminal holds; `release` drops them (closing the fds drops the flocks)."""

    data_dir: Path
    fds: list[int] = field(default_factory=list)

    def release(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


def acquire_use(data_dir: Path, *, long_running: bool) -> InstanceLock:
    """Register an open terminal on `data_dir`.

    Args:
        data_dir: the terminal's data dir.
        long_running: True for `run` / `serve`, which own the data dir while they are up.

    Returns:
        The held locks; release them when the terminal closes.

    Raises:
        DataDirBusy: a restore is in progress, or (long_running) a terminal already runs here.
    """
    lock = InstanceLock(data_dir)
    try:
        use_fd = _open_lock(data_dir / USE_LOCK)
        lock.fds.append(use_fd)
        if not _try_flock(use_fd, fcntl.LOCK_SH):
            raise DataDirBusy(f"{data_dir}: a restore is in progress; try again when it has finished")
        if long_running:
            run_fd = _open_lock(data_dir / RUNNING_LOCK)
            lock.fds.append(run_fd)
            if not _try_flock(run_fd, fcntl.LOCK_EX):
                raise DataDirBusy(
                    f"{data_dir}: a terminal is already running on this data dir ({_running_owner(data_dir)})"
                )
            os.ftruncate(run_fd, 0)
            os.pwrite(run_fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        lock.release()
        raise
    return lock


def acquire_exclusive(data_dir: Path) -> InstanceLock:
    """Take the data dir for a restore: refused while any terminal (running or a short verb) has it open.

    Raises:
        DataDirBusy: naming a running terminal's pid when there is one.
    """
    lock = InstanceLock(data_dir)
    try:
        fd = _open_lock(data_dir / USE_LOCK)
        lock.fds.append(fd)
        if not _try_flock(fd, fcntl.LOCK_EX):
            run_fd = _open_lock(data_dir / RUNNING_LOCK)
            try:
                running = not _try_flock(run_fd, fcntl.LOCK_SH)
            finally:
                os.close(run_fd)
            who = (
                f"a terminal is running on it ({_running_owner(data_dir)}); stop it first "
                "(systemctl stop kanban-terminal-serve, or quit the screen)"
                if running
                else "a command is using it right now; try again in a moment"
            )
            raise DataDirBusy(f"{data_dir}: {who}")
    except BaseException:
        lock.release()
        raise
    return lock
