"""A real mosquitto broker on a free 127.0.0.1 port, for tests and benchmarks.

Configured as a plant would run it (`PLANT_SETTINGS`, the same lines as the shipped
deploy/mosquitto/kanban-plant.conf: persistence saved every second, a deliberate
max_queued_messages) unless `plant=False` asks for mosquitto's defaults, whose message drops the
tests must survive too (../shared/reference/stack.md P1, P2). `extra` appends a line, e.g.
`autosave_on_changes true` for the save-per-change variant the benchmark compares against.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"mosquitto did not listen on {port} within {timeout} s")


PLANT_SETTINGS = (
    "persistence true",
    # Saved every second, not after every change: a save rewrites and fsyncs the whole store, so
    # per-change saving cost a write of every queued message per message (deploy/mosquitto/).
    "autosave_interval 1",
    "autosave_on_changes false",
    "max_inflight_messages 1000",
    "max_queued_messages 1000000",
    "set_tcp_nodelay true",
)
"""The broker settings of deploy/mosquitto/kanban-plant.conf (test_mosquitto_config keeps them equal)."""


class Mosquitto:
    """One mosquitto process that can be stopped, killed, frozen and started again on the same port."""

    def __init__(self, workdir: Path, *, plant: bool = True, extra: str = "", port: int | None = None):
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is not installed (apt-get install -y mosquitto)")
        self.workdir = workdir
        self.port = port or free_port()
        self.plant = plant
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        # mosquitto started as root drops to user "mosquitto", which cannot enter pytest's 0700 temp
        # folders: persistence would silently fail ("Permission denied" in its log) and every
        # broker-restart test would pass for the wrong reason. So the broker lives in its own folder
        # under the system temp dir, reachable by that user; `workdir` keeps a pointer to it.
        workdir.mkdir(parents=True, exist_ok=True)
        self.home = Path(tempfile.mkdtemp(prefix="kanban-mosquitto-"))
        # Outside pytest's tmp_path, so nothing else removes it; kept across stop/start (persistence
        # tests restart on the same store) and removed when this process ends (CI ran up 288 of them).
        atexit.register(shutil.rmtree, self.home, True)
        os.chmod(self.home, 0o755)
        self.data = self.home / "data"
        self.data.mkdir()
        shutil.chown(self.data, "mosquitto", "mosquitto")
        (workdir / "broker-folder.txt").write_text(str(self.home))
        self.conf = self.home / "mosquitto.conf"
        self.conf.write_text(self._config())
        os.chmod(self.conf, 0o644)

    def _config(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "user mosquitto"]
        if self.plant:
            lines += [*PLANT_SETTINGS, f"persistence_location {self.data}/"]
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines) + "\n"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        with open(self.home / "mosquitto.log", "ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=log, stderr=log)
        _wait_listening(self.port, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def running_mosquitto(workdir: Path, **kwargs: object) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir, **kwargs)  # type: ignore[arg-type]
    broker.start()
    try:
        yield broker
    finally:
        if broker.proc is not None:
            broker.thaw()
        broker.stop()
        shutil.rmtree(broker.home, ignore_errors=True)
