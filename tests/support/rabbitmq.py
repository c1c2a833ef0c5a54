"""A private RabbitMQ node with its MQTT plugin on free 127.0.0.1 ports: a real MQTT 3.1.1-only broker.

Debian's rabbitmq-server (3.10) speaks MQTT 3.1 and 3.1.1 only (an MQTT 5 CONNECT is dropped) and
has no shared subscriptions (`$share/...` is an ordinary topic there): the broker issue 16 measured
"both peers handled every request" on. The node runs from the package's own script with every path
(data, logs, config, plugins, Erlang cookie) in a temporary folder and its own epmd port, so it
neither needs nor touches the system's RabbitMQ. Start-up takes ~15 s here: use one per module.
"""

from __future__ import annotations

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

from tests.support.mosquitto import free_port

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def available() -> bool:
    return SERVER.exists() and shutil.which("epmd") is not None


@contextlib.contextmanager
def running_rabbitmq(timeout: float = 90.0) -> Iterator[int]:
    """Yield the MQTT port of a fresh RabbitMQ node; stop it and its epmd afterwards."""
    home = Path(tempfile.mkdtemp(prefix="kanban-rabbitmq-"))
    mqtt_port, amqp_port, dist_port, epmd_port = (free_port() for _ in range(4))
    (home / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {amqp_port}\nmqtt.listeners.tcp.default = {mqtt_port}\n"
        "mqtt.allow_anonymous = true\nloopback_users = none\n"
    )
    (home / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
    env = os.environ | {
        "HOME": str(home),
        "RABBITMQ_NODENAME": f"kanban{mqtt_port}@localhost",
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(home / "pid"),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "ERL_EPMD_PORT": str(epmd_port),
    }
    with open(home / "server.log", "ab") as out:
        proc = subprocess.Popen([str(SERVER)], stdout=out, stderr=out, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", mqtt_port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield mqtt_port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(["epmd", "-kill"], env=env, capture_output=True, timeout=10)
        shutil.rmtree(home, ignore_errors=True)
