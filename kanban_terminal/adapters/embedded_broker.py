"""The demo's broker: mosquitto on a free loopback port when it is installed, else amqtt in-process.

`kanban-terminal demo` must run with nothing but the package installed, so amqtt (pure Python) is a
runtime dependency. It speaks MQTT 3.1.1 only, never queues for anonymous offline sessions and is
2-4x slower than mosquitto (stack.md 4): fine for a demo on one machine, never for production.
Either broker binds 127.0.0.1 only: a demo must not open a port to the plant network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import getpass
import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"embedded broker did not listen on port {port} within {timeout} s")


def _die_with_parent() -> None:
    """Runs in the broker's process before exec: the kernel sends it SIGTERM when the demo dies.

    A demo closed with its terminal (SIGHUP) or killed never runs its `finally`, and the broker was
    left running on its port (seen: three orphans after closing tmux sessions). Linux only; elsewhere
    the `finally` below is all there is.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True)
class EmbeddedBroker:
    host: str
    port: int
    kind: str
    """mosquitto or amqtt."""

    @property
    def protocol(self) -> str:
        """The MQTT version clients must use: amqtt speaks 3.1.1 only."""
        return "5" if self.kind == "mosquitto" else "3.1.1"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@contextlib.contextmanager
def embedded_broker(prefer_mosquitto: bool = True) -> Iterator[EmbeddedBroker]:
    """Start a loopback broker for the demo and stop it on exit."""
    if prefer_mosquitto and shutil.which("mosquitto"):
        with _mosquitto() as broker:
            yield broker
    else:
        with _amqtt() as broker:
            yield broker


@contextlib.contextmanager
def _mosquitto() -> Iterator[EmbeddedBroker]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kanban-demo-broker-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        # No persistence: a demo starts fresh. set_tcp_nodelay: see stack.md 9 (Nagle on every hop).
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
            "set_tcp_nodelay true\n"
            # Stay the user who runs the demo: a root mosquitto would switch to user "mosquitto",
            # and the kernel clears the parent-death signal on that switch (prctl(2)).
            f"user {getpass.getuser()}\n"
        )
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        try:
            _wait_listening(port)
            log.info("demo broker: mosquitto on 127.0.0.1:%d", port)
            yield EmbeddedBroker("127.0.0.1", port, "mosquitto")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def _amqtt() -> Iterator[EmbeddedBroker]:
    from amqtt.broker import Broker

    port = free_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        # The minimal plugin set: the default one warns about psutil (stack.md 4).
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    # amqtt logs every connection it cannot parse (our readiness probe is one) at WARNING.
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            broker = Broker(config)
            await broker.start()
            holder["broker"] = broker
            ready.set()

        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("amqtt did not start within 10 s")
    _wait_listening(port)
    log.info("demo broker: amqtt (MQTT 3.1.1) on 127.0.0.1:%d", port)
    try:
        yield EmbeddedBroker("127.0.0.1", port, "amqtt")
    finally:
        broker = holder["broker"]
        future = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            future.result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
