"""The shipped broker examples run: kanban-plant.conf + kanban-security.conf + kanban.acl, with
certificates from make-certs.sh and a password file as passwords.example says (issue 16).

Only the paths (/etc/mosquitto/...) and the ports are replaced; a terminal then connects over TLS
with its user and password and publishes on its own line, and is refused on another line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from kanban_terminal.adapters.mqtt_client import MqttLink
from tests.support.mosquitto import _wait_listening, free_port
from tests.support.mqtt_lines import settings_for, wait_for

pytestmark = pytest.mark.broker
EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PASSWORD = "example-password-1"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_shipped_security_example_runs_and_keeps_lines_apart(tmp_path: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="kanban-mosquitto-example-"))  # readable by user mosquitto
    os.chmod(home, 0o755)
    try:
        subprocess.run(["sh", str(EXAMPLES / "examples" / "make-certs.sh"), "localhost", "term-l1"],
                       cwd=home, check=True, capture_output=True, timeout=120)  # fmt: skip
        certs = home / "certs"
        for f in certs.iterdir():
            os.chmod(f, 0o644)
        passwd = home / "kanban.passwd"
        passwd.touch()
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), "term-l1", PASSWORD], check=True, timeout=30)
        shutil.copy(EXAMPLES / "examples" / "kanban.acl", home / "kanban.acl")
        for f in (passwd, home / "kanban.acl"):
            os.chmod(f, 0o644)
        tls_port, local_port = free_port(), free_port()
        security = (EXAMPLES / "examples" / "kanban-security.conf").read_text()
        security = security.replace("/etc/mosquitto/certs/plant-ca.crt", str(certs / "plant-ca.crt"))
        security = security.replace("/etc/mosquitto/certs/", f"{certs}/").replace(
            "/etc/mosquitto/", f"{home}/"
        )
        security = security.replace("listener 8883", f"listener {tls_port}")
        security = security.replace("listener 1883 127.0.0.1", f"listener {local_port} 127.0.0.1")
        plant = re.sub(
            r"(?m)^persistence_location .*$",
            f"persistence_location {home}/",
            (EXAMPLES / "kanban-plant.conf").read_text(),
        )
        (home / "mosquitto.conf").write_text(f"user mosquitto\n{plant}\n{security}\n")
        os.chmod(home / "mosquitto.conf", 0o644)
        shutil.chown(home, "mosquitto", "mosquitto")
        with open(tmp_path / "mosquitto.log", "ab") as log:
            proc = subprocess.Popen(["mosquitto", "-c", str(home / "mosquitto.conf")], stdout=log, stderr=log)
        try:
            _wait_listening(tls_port, proc)
            secret = tmp_path / "secret"
            secret.write_text(PASSWORD)
            secret.chmod(0o600)
            settings = settings_for(
                tls_port, host="localhost", tls=True, ca_file=str(certs / "plant-ca.crt"),
                username="term-l1", password_file=str(secret),
            )  # fmt: skip
            answers: list[tuple[int, bool]] = []
            link = MqttLink(settings, "term-l1", on_published=lambda mid, ok, _r: answers.append((mid, ok)))
            link.start()
            try:
                wait_for(lambda: link.connected, what="TLS + password accepted")
                own = link.publish("kanban/v1/S1/L1/requests", b"{}", 1)
                other = link.publish("kanban/v1/S1/L9/requests", b"{}", 1)
                wait_for(lambda: len(answers) == 2, what="both answered")
            finally:
                link.stop()
            assert dict(answers) == {own: True, other: False}, "the ACL must allow L1 and refuse L9"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        shutil.rmtree(home, ignore_errors=True)
