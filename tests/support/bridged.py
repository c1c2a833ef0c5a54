"""Two mosquitto brokers bridged as a plant runs them, a link between them that can be killed or
frozen, and supermarket peers as processes (issue 16).

    terminal ── line broker ══ bridge (shipped deploy/mosquitto/line/*.conf) ══> LinkProxy ──> plant broker
                                                                                             ├── peer a
                                                                                             └── peer b

* The line broker runs the SHIPPED bridge file; only what must change on loopback is replaced
  (`address`, the TLS and credential lines, and keepalive / back-off shortened so a test fits in
  ~30 s: `TEST_BRIDGE_OVERRIDES`). Both brokers run the plant settings (kanban-plant.conf), so a
  setting that breaks bridging (max_inflight_messages 0) breaks these tests.
* `LinkProxy` is socat in its own process group between the bridge and the plant broker: `kill()`
  drops the bridge's TCP link (a cable pulled, a broker node lost), `freeze()` SIGSTOPs it so the
  link goes silent without closing (a half-open link; the bridge notices only by keepalive).
* `PeerProcess` is `python -m kanban_terminal.runtime upstream --instance X`, killable with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.mosquitto import Mosquitto, _wait_listening, free_port

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_BRIDGES = {
    "5": ROOT / "deploy" / "mosquitto" / "line" / "kanban-line-bridge-mqtt5.conf",
    "3.1.1": ROOT / "deploy" / "mosquitto" / "line" / "kanban-line-bridge-mqtt311.conf",
}
DROPPED = ("address", "bridge_cafile", "bridge_insecure", "remote_username", "remote_password")
"""Shipped lines that name the real plant broker, its CA and the bridge's credentials."""
TEST_BRIDGE_OVERRIDES = {
    "keepalive_interval": "keepalive_interval 5",
    "restart_timeout": "restart_timeout 1 2",
}
"""A frozen link must be noticed within a test's time: 5 s keepalive (mosquitto's least for a bridge;
10 s shipped), 2 s back-off cap (30 s shipped)."""


def bridge_lines(protocol: str, plant_port: int, topic: str | None = None) -> str:
    """The shipped bridge file for `protocol`, pointed at a loopback plant broker; `topic` replaces
    its `topic` line (the bench bridges a whole site of simulated lines)."""
    out = []
    for raw in SHIPPED_BRIDGES[protocol].read_text().splitlines():
        line = raw.strip()  # mosquitto comments are whole lines: `#` in a topic is a wildcard
        if not line or line.startswith("#"):
            continue
        key = line.split()[0]
        if key in DROPPED:
            if key == "address":
                out.append(f"address 127.0.0.1:{plant_port}")
            continue
        if key == "topic" and topic is not None and line.split()[1].endswith("/#"):
            line = f"topic {topic}"  # the line's tree; the peers' availability stays as shipped
        out.append(TEST_BRIDGE_OVERRIDES.get(key, line))
    return "\n".join(out)


class LinkProxy:
    """socat between the bridge and the plant broker, in its own process group."""

    def __init__(self, target_port: int, log: Path):
        self.port = free_port()
        self.target_port = target_port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    def start(self) -> LinkProxy:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr",
                 f"TCP:127.0.0.1:{self.target_port}"],
                stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip
        _wait_listening(self.port, self.proc)
        self.frozen = False
        return self

    def _group(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)  # socat forks one child per connection: the group

    def kill(self) -> None:
        """Every connection through the proxy dies at once, and nothing listens until `start`."""
        self._group(signal.SIGCONT)
        self._group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)
        self.proc = None

    def freeze(self) -> None:
        self._group(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self._group(signal.SIGCONT)
        self.frozen = False


class BridgedPair:
    """A plant broker and a line broker whose shipped bridge reaches it through a `LinkProxy`."""

    def __init__(self, workdir: Path, protocol: str, *, topic: str | None = None, proxy: bool = True):
        self.plant = Mosquitto(workdir / "plant").start()
        self.link = LinkProxy(self.plant.port, workdir / "link.log").start()
        target = self.link.port if proxy else self.plant.port
        self.line = Mosquitto(workdir / "line", extra=bridge_lines(protocol, target, topic)).start()

    def bridge_up(self) -> bool:
        """The line broker's bridge is connected (the plant broker logged its client id last)."""
        log = (self.plant.home / "mosquitto.log").read_text(errors="replace")
        connected = log.rfind("as kanban-bridge-S1-L1")
        return connected >= 0 and connected > log.rfind("kanban-bridge-S1-L1 disconnected")

    def close(self) -> None:
        self.link.kill()
        for broker in (self.line, self.plant):
            if broker.proc is not None:
                broker.thaw()
            broker.stop()


class PeerProcess:
    """`python -m kanban_terminal.runtime upstream --instance NAME` on a broker; SIGKILL-able."""

    def __init__(self, config: Path, data: Path, port: int, instance: str, log: Path):
        self.args = [
            sys.executable, "-m", "kanban_terminal.runtime", "upstream", "--config", str(config),
            "--data-dir", str(data), "--mqtt", f"mqtt://127.0.0.1:{port}", "--instance", instance,
        ]  # fmt: skip
        self.db = data / f"upstream-{instance}.db"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PeerProcess:
        env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        seen = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=out, env=env, cwd=ROOT)
        deadline = time.monotonic() + 20
        while b"subscribed to" not in self.log.read_bytes()[seen:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"peer did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
