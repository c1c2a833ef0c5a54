"""S1-S3, S6: a real mosquitto with TLS, a password file and ACLs; certificates made here by openssl.

* TLS: an untrusted CA, a wrong host name and an expired certificate each give a distinct message
  (`doctor`'s probe, and the running link's status).
* Wrong password: "not authorized" in the link status; the password appears nowhere in the log,
  the database, a backup or the status output.
* ACL by user name: a terminal whose user may only write line L1 publishing line L2's request is
  refused (MQTT 5 reason 0x87), the refusal is in `LinkStatus.last_error` and the request stays
  unsent; another client using the terminal's client id cannot take its session over.
* Files: data dir 0700 and database 0600 whatever the umask; a password file others can read is
  refused.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import load_config as load_bridge_config
from firmware_bridge.simulator import DeviceSimulator
from kanban_terminal.adapters.broker_probe import probe_broker
from kanban_terminal.domain.scans import Intent
from kanban_terminal.mqtt_settings import MqttConfigError, read_password
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.faults import support
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for

pytestmark = pytest.mark.broker
PASSWORD = "s3cret-Pw-7f1c2e9a"  # noqa: S105 - a test password, searched for afterwards


def _openssl(*args: str, cwd: Path, fake_time: str | None = None) -> None:
    cmd = ["openssl", *args]
    if fake_time:
        cmd = ["faketime", fake_time, *cmd]
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(folder: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=folder)  # fmt: skip


def _server(folder: Path, name: str, ca: str, san: str, fake_time: str | None = None) -> None:
    (folder / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", cwd=folder)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
             cwd=folder, fake_time=fake_time)  # fmt: skip


@pytest.fixture(scope="module")
def pki() -> Iterator[Path]:
    support.need("openssl", "openssl")
    folder = Path(tempfile.mkdtemp(prefix="kanban-pki-"))
    os.chmod(folder, 0o755)  # mosquitto drops to its own user and must read these
    _ca(folder, "ca")
    _ca(folder, "other-ca")
    _server(folder, "good", "ca", "DNS:localhost,IP:127.0.0.1")
    _server(folder, "wrong-host", "ca", "DNS:wrong.example")
    if shutil.which("faketime"):
        _server(folder, "expired", "ca", "DNS:localhost", fake_time="2020-01-01 00:00:00")
    for f in folder.iterdir():
        os.chmod(f, 0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


SHIPPED_ACL = support.ROOT / "deploy" / "mosquitto" / "examples" / "kanban.acl"


def _auth_files(folder: Path) -> str:
    passwd = folder / "passwd"
    passwd.touch()
    for user in ("term-l1", "term-l9", "intruder"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, PASSWORD], check=True, timeout=30)
    acl = folder / "acl"
    # The shipped example ACL (deploy/mosquitto/examples/kanban.acl), plus a reader of line L9 only.
    acl.write_text(SHIPPED_ACL.read_text() + "\nuser intruder\ntopic read kanban/v1/S1/L9/#\n")
    for f in (passwd, acl):
        os.chmod(f, 0o644)
    return f"password_file {passwd}\nacl_file {acl}\nuse_username_as_clientid true\n"


@contextlib.contextmanager
def tls_broker(
    tmp_path: Path, pki: Path, cert: str, *, auth: bool = False, more: str = ""
) -> Iterator[Mosquitto]:
    extra = (
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / (cert + '.crt')}\nkeyfile {pki / (cert + '.key')}\n"
        "tls_version tlsv1.2\n" + more
    )
    if auth:
        extra += _auth_files(pki) + "allow_anonymous false\n"
    broker = Mosquitto(tmp_path / f"broker-{cert}", plant=False, extra=extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(broker.home, ignore_errors=True)


def test_tls_failures_each_have_their_own_message(tmp_path: Path, pki: Path) -> None:
    messages = {}
    with tls_broker(tmp_path, pki, "good") as good:
        ok = probe_broker(f"mqtts://localhost:{good.port}", ca_file=str(pki / "ca.crt"))
        assert ok.ok, ok
        other = str(pki / "other-ca.crt")
        messages["untrusted"] = probe_broker(f"mqtts://localhost:{good.port}", ca_file=other)
    ca = str(pki / "ca.crt")
    with tls_broker(tmp_path, pki, "wrong-host") as wrong:
        messages["hostname"] = probe_broker(f"mqtts://localhost:{wrong.port}", ca_file=ca)
    if (pki / "expired.crt").exists():
        with tls_broker(tmp_path, pki, "expired") as expired:
            messages["expired"] = probe_broker(f"mqtts://localhost:{expired.port}", ca_file=ca)
    texts = {k: v.detail for k, v in messages.items()}
    assert not any(v.ok for v in messages.values()), texts
    untrusted = ("unable to get local issuer certificate", "self-signed certificate in certificate chain")
    assert any(reason in texts["untrusted"] for reason in untrusted), texts
    assert "Hostname mismatch" in texts["hostname"] or "hostname" in texts["hostname"].lower(), texts
    if "expired" in texts:
        assert "expired" in texts["expired"], texts
    assert len(set(texts.values())) == len(texts), texts


def _link_detail_for(pki: Path, port: int, ca: str) -> str:
    config, _ = make_config(Path(tempfile.mkdtemp()), loops=1, cards=3, sensors=0)
    terminal = Terminal.open(config, Path(tempfile.mkdtemp()) / "data")
    try:
        settings = settings_for(port, host="localhost", tls=True, ca_file=str(pki / ca))
        with TerminalServices(terminal, settings) as services:
            wait_for(lambda: services.link_state().detail not in ("", "connecting"), timeout=15)
            return services.link_state().detail
    finally:
        terminal.close()


def test_the_link_status_tells_tls_failures_apart(tmp_path: Path, pki: Path) -> None:
    with tls_broker(tmp_path, pki, "good") as good:
        untrusted = _link_detail_for(pki, good.port, "other-ca.crt")
    with tls_broker(tmp_path, pki, "wrong-host") as wrong:
        hostname = _link_detail_for(pki, wrong.port, "ca.crt")
    details = [untrusted, hostname]
    if (pki / "expired.crt").exists():
        with tls_broker(tmp_path, pki, "expired") as expired:
            details.append(_link_detail_for(pki, expired.port, "ca.crt"))
        assert "expired" in details[-1], details
    assert "certificate" in untrusted and "mismatch" in hostname.lower(), details
    assert len(set(details)) == len(details), details


def _secret_file(folder: Path, text: str, mode: int) -> Path:
    path = folder / "mqtt-password"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_wrong_password_acl_refusal_and_secrets(
    tmp_path: Path, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    # A password file others can read is refused before anything connects.
    loose = _secret_file(secrets, PASSWORD, 0o644)
    with pytest.raises(MqttConfigError, match="readable by others"):
        read_password(settings_for(1, username="term-l1", password_file=str(loose)), env={})
    with tls_broker(tmp_path, pki, "good", auth=True) as broker:
        base = {"host": "localhost", "tls": True, "ca_file": str(pki / "ca.crt"), "username": "term-l1"}
        # Wrong password: "not authorized" on the status bar.
        wrong = _secret_file(secrets, "not-the-password", 0o600)
        (tmp_path / "l1").mkdir()
        (tmp_path / "l2").mkdir()
        config, config_path = make_config(tmp_path / "l1", loops=1, cards=5, sensors=0)
        data = tmp_path / "data-l1"
        terminal = Terminal.open(config, data)
        try:
            refused = settings_for(broker.port, **base, password_file=str(wrong))
            with TerminalServices(terminal, refused) as svc:
                wait_for(lambda: "not authorized" in svc.link_state().detail.lower(), timeout=15)
                assert svc.link_state().state != "connected"
            # Right password, allowed line: a request goes out; then the secrets audit.
            right = _secret_file(secrets, PASSWORD, 0o600)
            allowed = settings_for(broker.port, **base, password_file=str(right))
            with TerminalServices(terminal, allowed) as svc:
                wait_for(lambda: svc.subscribed(), timeout=15)
                # Session take-over: another user with the terminal's client id does not kick it off.
                intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.terminal.id,
                                       protocol=mqtt.MQTTv5)  # fmt: skip
                intruder.username_pw_set("intruder", PASSWORD)
                intruder.tls_set(ca_certs=str(pki / "ca.crt"))
                intruder.connect("localhost", broker.port, 5)
                intruder.loop_start()
                wait_for(intruder.is_connected, timeout=10, what="intruder connected")
                generation = svc.link.generation  # type: ignore[union-attr]
                record_scan(terminal, "C00001", source="test", intent=Intent.EMPTY)
                wait_for(lambda: svc.link_state().unsent == 0, timeout=15, what="request published")
                assert svc.link.generation == generation and svc.link_state().state == "connected"  # type: ignore[union-attr]
                intruder.disconnect()
                intruder.loop_stop()
        finally:
            terminal.close()
        # ACL: a terminal of line L2 logged in as L1's user may not publish L2's requests.
        config2, _ = make_config(tmp_path / "l2", loops=1, cards=5, sensors=0, line="L2")
        terminal2 = Terminal.open(config2, tmp_path / "data-l2")
        try:
            with TerminalServices(terminal2, allowed) as svc:
                wait_for(lambda: svc.subscribed(), timeout=15)
                record_scan(terminal2, "C00002", source="test", intent=Intent.EMPTY)
                wait_for(lambda: svc.link_state().last_error != "", timeout=15, what="refusal shown")
                status = svc.link_state()
                assert "not authorized" in status.last_error.lower(), status
                assert status.unsent == 1 and status.queued == 1, status
        finally:
            terminal2.close()
        broker_log = (broker.home / "mosquitto.log").read_text(errors="replace")
    # The password is nowhere: log records, database files, a backup, the status output.
    assert PASSWORD not in caplog.text and PASSWORD not in broker_log
    backup = tmp_path / "backup.db"
    env = support.env() | {"KANBAN_MQTT_PASSWORD": PASSWORD}
    for argv in (["backup", str(backup)], ["status"]):
        cmd = [sys.executable, "-m", "kanban_terminal", *argv, "--config", str(config_path)]
        cmd += ["--data-dir", str(data)]
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert PASSWORD not in run.stdout + run.stderr
    for path in [*data.rglob("*"), *tmp_path.glob("data-l2/**/*"), backup]:
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    # Version-controlled config holds no password, only where to find one.
    for toml in (support.ROOT / "config").glob("*.toml"):
        for line in toml.read_text().splitlines():
            assert not line.strip().startswith("password ="), (toml, line)


def _tls_client(pki: Path, port: int, user: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, PASSWORD)
    client.tls_set(ca_certs=str(pki / "ca.crt"))
    client.connect("localhost", port, 5)
    client.loop_start()
    wait_for(client.is_connected, timeout=10, what=f"{user} connected")
    return client


def test_a_user_of_another_line_subscribing_to_this_line_receives_nothing(tmp_path: Path, pki: Path) -> None:
    """mosquitto grants a subscription the ACL forbids and then filters silently, so the refusal cannot
    be seen in the SUBACK: what matters is that nothing of line L1 reaches a reader of line L9."""
    with tls_broker(tmp_path, pki, "good", auth=True) as broker:
        spy = _tls_client(pki, broker.port, "intruder")
        seen: list[str] = []
        granted: list[int] = []
        spy.on_message = lambda c, u, msg: seen.append(msg.topic)
        spy.on_subscribe = lambda c, u, mid, codes, p: granted.append(mid)
        spy.subscribe([("kanban/v1/S1/L1/#", 1), ("kanban/v1/S1/L9/#", 1)])
        wait_for(lambda: bool(granted), timeout=10, what="subscriptions answered")
        for user, line in (("term-l1", "L1"), ("term-l9", "L9")):  # L1 first: routed before L9's
            writer = _tls_client(pki, broker.port, user)
            writer.publish(f"kanban/v1/S1/{line}/requests", b"{}", qos=1).wait_for_publish(10)
            writer.disconnect()
            writer.loop_stop()
        wait_for(lambda: "kanban/v1/S1/L9/requests" in seen, timeout=10, what="the allowed line arrives")
        spy.disconnect()
        spy.loop_stop()
    assert seen == ["kanban/v1/S1/L9/requests"], "a message of line L1 reached a reader of line L9"


def test_data_dir_and_database_modes_ignore_the_umask(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path, loops=1, cards=3, sensors=0)
    old = os.umask(0)
    try:
        Terminal.open(config, tmp_path / "data").close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    for f in (tmp_path / "data").glob("terminal.db*"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "localhost", "LocalHost", "::1"])
def test_plain_mqtt_to_a_loopback_broker_is_allowed(host: str) -> None:
    from kanban_terminal.config import MqttSettings

    assert MqttSettings(host=host, tls=False).tls is False


@pytest.mark.parametrize(
    "host", ["10.20.30.40", "192.168.1.7", "broker.plant-a.example", "fe80::1", "0.0.0.0"]
)
def test_plain_mqtt_to_a_non_loopback_broker_is_refused(host: str) -> None:
    from pydantic import ValidationError

    from kanban_terminal.config import MqttSettings

    # Left out or written, tls = false to another machine is refused, naming the key and the fix.
    for values in ({"host": host}, {"host": host, "tls": False}):
        with pytest.raises(ValidationError) as refused:
            MqttSettings.model_validate(values)
        [error] = refused.value.errors()
        assert error["loc"] == ("tls",)
        assert host in error["msg"] and "tls = true" in error["msg"] and "mqtts://" in error["msg"]
    assert MqttSettings(host=host, tls=True).tls


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("mqtt://127.0.0.1:1883", True),
        ("mqtt://localhost", True),
        ("mqtt://[::1]:1883", True),
        ("mqtts://broker.plant-a.example", True),
        ("mqtts://10.20.30.40:8883", True),
        ("mqtt://10.20.30.40:1883", False),
        ("mqtt://broker.plant-a.example", False),
        ("mqtt://[fe80::1]:1883", False),
    ],
)
def test_broker_urls_follow_the_same_rule(url: str, allowed: bool) -> None:
    from kanban_terminal.mqtt_settings import parse_mqtt_url

    if allowed:
        settings = parse_mqtt_url(url)
        assert settings.tls == url.startswith("mqtts://")
    else:
        with pytest.raises(MqttConfigError, match=r"plain mqtt:// to .* refused.*use mqtts://"):
            parse_mqtt_url(url)


def test_the_link_really_talks_tls_to_an_mqtts_url(tmp_path: Path, pki: Path) -> None:
    """mqtts:// is not just accepted: the terminal's link connects over TLS with verification."""
    from kanban_terminal.mqtt_settings import parse_mqtt_url

    with tls_broker(tmp_path, pki, "good") as good:
        base = settings_for(1, tls=True, ca_file=str(pki / "ca.crt"))
        settings = parse_mqtt_url(f"mqtts://localhost:{good.port}", base)
        assert settings.tls and settings.ca_file == str(pki / "ca.crt")
        config, _ = make_config(tmp_path, loops=1, cards=3, sensors=0)
        terminal = Terminal.open(config, tmp_path / "data")
        try:
            with TerminalServices(terminal, settings) as services:
                wait_for(services.subscribed, timeout=15, what="TLS session subscribed")
        finally:
            terminal.close()


# -- the firmware bridge: the same TLS policy, against the same TLS listeners --------------------------


def _bridge_toml(tmp: Path, port: int, tls: str) -> Path:
    path = tmp / "bridge.toml"
    path.write_text(
        f'site = "plant1"\nline = "L1"\nbridge_id = "br1"\nstate_dir = "{tmp / "state"}"\n'
        f'[broker]\nhost = "localhost"\nport = {port}\nkeepalive_s = 5\nreconnect_max_s = 1\n{tls}'
        f'[[devices]]\nid = "D1"\nport = "{tmp / "ttyD1"}"\n'
    )
    return path


@contextlib.contextmanager
def _bridge(tmp: Path, port: int, tls: str) -> Iterator[tuple[Bridge, DeviceSimulator]]:
    tmp.mkdir(exist_ok=True)
    sim = DeviceSimulator("D1", link=tmp / "ttyD1")
    sim.open()
    sim.start_heartbeat(0.2)
    bridge = Bridge(load_bridge_config(_bridge_toml(tmp, port, tls), env={}))
    bridge.start()
    try:
        yield bridge, sim
    finally:
        bridge.stop()
        sim.stop()


def _bridge_error(tmp: Path, port: int, tls: str) -> str:
    with _bridge(tmp, port, tls) as (bridge, _sim):
        wait_for(lambda: bridge.mqtt.last_error != "", timeout=15, what="the bridge's connect error")
        assert not bridge.mqtt.connected
        return bridge.mqtt.last_error


def test_the_bridge_talks_tls_and_tells_tls_failures_apart(tmp_path: Path, pki: Path) -> None:
    ca = f'tls = true\nca_file = "{pki / "ca.crt"}"\n'
    topics = LineTopics("plant1", "L1")
    with tls_broker(tmp_path, pki, "good") as good:
        # Verified TLS: a button press reaches a subscriber on the TLS-only listener.
        received: list[bytes] = []
        observer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-observer",
                               protocol=mqtt.MQTTv5)  # fmt: skip
        observer.tls_set(ca_certs=str(pki / "ca.crt"))
        observer.on_message = lambda _c, _u, msg: received.append(msg.payload)
        observer.connect("localhost", good.port, 10)
        observer.subscribe(topics.device_signal("D1"), 1)
        observer.loop_start()
        try:
            with _bridge(tmp_path / "ok", good.port, ca) as (bridge, sim):
                wait_for(lambda: bridge.mqtt.connected, timeout=15, what="bridge connected over TLS")
                assert bridge.mqtt.settings.tls and bridge.mqtt.last_error == ""
                sim.press("call", "S1")
                wait_for(lambda: any(b"andon_call" in p for p in received), timeout=15, what="press over TLS")
        finally:
            observer.disconnect()
            observer.loop_stop()
        untrusted = _bridge_error(
            tmp_path / "untrusted", good.port, f'tls = true\nca_file = "{pki / "other-ca.crt"}"\n'
        )
        # Plain MQTT to a TLS listener never connects (and plain is only allowed to loopback anyway).
        plain = _bridge_error(tmp_path / "plain", good.port, "")
    with tls_broker(tmp_path, pki, "wrong-host") as wrong:
        hostname = _bridge_error(tmp_path / "hostname", wrong.port, ca)
    errors = [untrusted, hostname, plain]
    assert "certificate not trusted" in untrusted, errors
    assert "mismatch" in hostname.lower(), errors
    if (pki / "expired.crt").exists():
        with tls_broker(tmp_path, pki, "expired") as expired:
            errors.append(_bridge_error(tmp_path / "expired", expired.port, ca))
        assert "expired" in errors[-1], errors
    assert len(set(errors)) == len(errors), errors


def test_the_bridge_presents_a_client_certificate_when_the_broker_requires_one(
    tmp_path: Path, pki: Path
) -> None:
    folder = tmp_path / "client-pki"
    folder.mkdir()
    for name in ("ca.crt", "ca.key"):
        shutil.copy(pki / name, folder / name)
    _server(folder, "client", "ca", "DNS:br1")
    ca = f'tls = true\nca_file = "{pki / "ca.crt"}"\n'
    with tls_broker(tmp_path, pki, "good", more="require_certificate true\n") as broker:
        with_cert = ca + f'cert_file = "{folder / "client.crt"}"\nkey_file = "{folder / "client.key"}"\n'
        with _bridge(tmp_path / "cert", broker.port, with_cert) as (bridge, _sim):
            wait_for(lambda: bridge.mqtt.connected, timeout=15, what="bridge connected with its certificate")
        refused = _bridge_error(tmp_path / "no-cert", broker.port, ca)
    assert refused, "a broker requiring a certificate must refuse a bridge without one"


def _doctor_broker_line(config: Path, data: Path, *extra: str) -> str:
    from kanban_terminal import cli

    with contextlib.redirect_stdout(io.StringIO()) as out:
        cli.main(
            ["doctor", "--config", str(config), "--data-dir", str(data), "--broker-timeout", "5", *extra]
        )
    return next(line for line in out.getvalue().splitlines() if line.split()[1] == "broker")


def test_doctor_checks_the_broker_serve_would_use_with_the_configs_ca_file(tmp_path: Path, pki: Path) -> None:
    """Before: doctor probed with the system's CAs only (a false "certificate not trusted" while
    `serve` connected with the config's ca_file), and without --mqtt it did not probe at all."""
    from kanban_terminal.config import demo_config_path

    with tls_broker(tmp_path, pki, "good") as good:
        config = tmp_path / "tls.toml"
        mqtt = f'[mqtt]\nhost = "localhost"\nport = {good.port}\ntls = true\nca_file = "{pki / "ca.crt"}"\n'
        config.write_text(demo_config_path().read_text() + "\n" + mqtt)
        data = tmp_path / "data"
        with_url = _doctor_broker_line(config, data, "--mqtt", f"mqtts://localhost:{good.port}")
        from_config = _doctor_broker_line(config, data)
        other_ca = tmp_path / "other.toml"
        other_ca.write_text(config.read_text().replace(str(pki / "ca.crt"), str(pki / "other-ca.crt")))
        untrusted = _doctor_broker_line(other_ca, data)
    assert with_url.startswith("OK") and "connected to mqtts://localhost" in with_url, with_url
    assert from_config.startswith("OK") and f"[mqtt] of {config}" in from_config, from_config
    assert untrusted.startswith("FAIL") and "certificate not trusted" in untrusted, untrusted
