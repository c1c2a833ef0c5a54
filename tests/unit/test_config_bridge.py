"""The bridge's [broker] section: TLS 1.2+ with verification to any broker off this machine."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from firmware_bridge.config import ConfigError, load_config
from kanban_terminal.mqtt_settings import MqttSettings

BRIDGE = """
site = "plant1"
line = "L1"
bridge_id = "br1"
[[devices]]
id = "D1"
port = "/dev/serial/by-id/usb-D1"
"""


def _write(tmp_path: Path, broker: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(BRIDGE + "[broker]\n" + broker)
    return path


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "localhost", "::1"])
def test_plain_mqtt_to_this_machine_is_allowed(host: str) -> None:
    broker = MqttSettings(host=host)
    assert not broker.tls and broker.tls_context() is None


@pytest.mark.parametrize("host", ["10.0.0.5", "192.168.0.20", "broker.plant-a.example"])
def test_plain_mqtt_to_another_machine_is_refused_with_the_fix(host: str) -> None:
    with pytest.raises(ValidationError) as refused:
        MqttSettings.model_validate({"host": host}, context={"section": "broker"})
    [error] = refused.value.errors()
    assert error["loc"] == ("tls",) and host in error["msg"] and "broker.tls = true" in error["msg"]
    assert MqttSettings(host=host, tls=True).tls


def test_the_tls_context_verifies_and_refuses_old_protocols() -> None:
    context = MqttSettings(host="broker.plant-a.example", tls=True).tls_context()
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_the_file_names_the_key_of_a_plain_remote_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"broker\.tls: plain MQTT to 10\.0\.0\.5 refused"):
        load_config(_write(tmp_path, 'host = "10.0.0.5"\n'), env={})


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ('host = "localhost"\nca_file = "/etc/ca.pem"\n', "ca_file given but tls = false"),
        ('host = "localhost"\ntls = true\nkey_file = "k.pem"\n', "key_file given without cert_file"),
        (
            'host = "localhost"\ntls = true\nca_file = "/nonexistent/ca.pem"\n',
            r"broker\.ca_file: cannot read /nonexistent/ca\.pem: No such file",
        ),
    ],
)
def test_tls_file_mistakes_are_clear(tmp_path: Path, broker: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, broker), env={})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1999", ("127.0.0.1", 1999, False)),
        ("mqtt://localhost", ("localhost", 1883, False)),
        ("mqtts://broker.plant-a.example", ("broker.plant-a.example", 8883, True)),
        ("mqtts://10.0.0.5:18883", ("10.0.0.5", 18883, True)),
    ],
)
def test_mqtt_url_override(tmp_path: Path, url: str, expected: tuple[str, int, bool]) -> None:
    config = load_config(_write(tmp_path, 'host = "127.0.0.1"\n'), env={}, mqtt_url=url)
    assert (config.broker.host, config.broker.port, config.broker.tls) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://10.0.0.5:1883", r"plain mqtt:// to 10\.0\.0\.5 refused.*use mqtts://10\.0\.0\.5:8883"),
        ("mqtt://[fe80::1]", r"plain mqtt:// to \[fe80::1\] refused"),
        ("mqtt://[::1", "cannot read broker URL"),
        ("mqtt://localhost:http", "bad port in broker URL"),
        ("tcp://localhost", "must start with mqtt:// or mqtts://"),
    ],
)
def test_bad_mqtt_urls_are_refused(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, 'host = "127.0.0.1"\n'), env={}, mqtt_url=url)


def test_a_ca_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    path = _write(tmp_path, f'host = "localhost"\ntls = true\nca_file = "{garbage}"\n')
    with pytest.raises(ConfigError, match="the TLS files cannot be used"):
        load_config(path, env={})


def test_a_plain_loopback_url_drops_the_files_tls_settings(tmp_path: Path) -> None:
    path = _write(tmp_path, 'host = "broker.plant-a.example"\ntls = true\nca_file = "/nonexistent/ca.pem"\n')
    config = load_config(path, env={}, mqtt_url="mqtt://127.0.0.1:1883")
    assert not config.broker.tls and config.broker.ca_file is None


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "bridge.example.toml"
    broker = load_config(example, env={}).broker
    assert broker.tls or broker.host in ("127.0.0.1", "localhost", "::1")


def test_the_broker_section_is_the_terminals_settings_with_a_one_hour_session(tmp_path: Path) -> None:
    broker = load_config(_write(tmp_path, 'host = "127.0.0.1"\nprotocol = "3.1.1"\n'), env={}).broker
    assert isinstance(broker, MqttSettings) and broker.protocol == "3.1.1"
    assert broker.session_expiry_s == 3600 and MqttSettings().session_expiry_s == 7 * 24 * 3600
    longer = load_config(_write(tmp_path, "session_expiry_s = 60\n"), env={}).broker
    assert longer.session_expiry_s == 60


@pytest.mark.parametrize("key", ["inflight = 5", "republish_after_s = 5", "heartbeat_s = 5"])
def test_settings_of_the_terminal_alone_are_refused_not_ignored(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"broker: .*not a bridge setting: {key.split()[0]}"):
        load_config(_write(tmp_path, key + "\n"), env={})


def test_a_password_file_others_can_read_stops_the_start(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret")
    secret.chmod(0o644)
    path = _write(tmp_path, f'username = "br1"\npassword_file = "{secret}"\n')
    with pytest.raises(ConfigError, match="broker.password_file: .* readable by others"):
        load_config(path, env={})
    secret.chmod(0o600)
    assert load_config(path, env={}).broker.password_file == str(secret)


def test_a_bridge_built_in_code_gets_the_bridge_session_default_too() -> None:
    from firmware_bridge.config import BridgeConfig, DeviceConfig

    def bridge(broker: MqttSettings) -> BridgeConfig:
        return BridgeConfig(
            site="s", line="l", bridge_id="b", broker=broker, devices=(DeviceConfig(id="D1", port="/x"),)
        )

    assert bridge(MqttSettings(port=1999)).broker.session_expiry_s == 3600
    assert bridge(MqttSettings(session_expiry_s=60)).broker.session_expiry_s == 60
    with pytest.raises(ValidationError, match="not a bridge setting: inflight"):
        bridge(MqttSettings(inflight=5))
