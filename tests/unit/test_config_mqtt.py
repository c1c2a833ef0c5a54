"""The [mqtt] section: plain MQTT only to this machine, and the shipped examples obey that rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanban_terminal.config import ConfigError, demo_config_path, is_loopback_host, load_config, parse_config

DEMO = demo_config_path().read_text()
CONFIG_DIR = Path(__file__).parents[2] / "config"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("localhost", True),
        (" LOCALHOST ", True),
        ("::1", True),
        ("[::1]", True),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("::", False),
        ("localhost.example", False),
        ("mylocalhost", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_a_remote_plain_broker_is_reported_with_key_path_line_and_fix() -> None:
    text = DEMO + '\n[mqtt]\nhost = "10.20.30.40"\nport = 1883\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "plant.toml")
    [problem] = info.value.problems
    assert problem.path == "mqtt.tls"
    assert problem.line == text.splitlines().index("[mqtt]") + 1
    assert "10.20.30.40" in problem.message and "set mqtt.tls = true" in problem.message


def test_a_remote_broker_with_tls_is_accepted() -> None:
    text = DEMO + '\n[mqtt]\nhost = "10.20.30.40"\nport = 8883\ntls = true\n'
    mqtt = parse_config(text, "plant.toml").mqtt
    assert mqtt is not None and mqtt.tls and mqtt.host == "10.20.30.40"


@pytest.mark.parametrize("name", ["demo.toml", "plant.example.toml"])
def test_shipped_terminal_configs_are_valid(name: str) -> None:
    cfg = load_config(CONFIG_DIR / name)
    if cfg.mqtt is not None:
        assert cfg.mqtt.tls or is_loopback_host(cfg.mqtt.host)


@pytest.mark.parametrize("url", ["mqtt://127.0.0.1:0", "mqtts://broker.example:0"])
def test_port_zero_is_refused_not_read_as_the_default(url: str) -> None:
    from kanban_terminal.adapters.broker_probe import ProbeFailure, probe_broker
    from kanban_terminal.mqtt_settings import MqttConfigError, parse_mqtt_url

    with pytest.raises(MqttConfigError, match="port"):
        parse_mqtt_url(url)
    assert probe_broker(url).failure is ProbeFailure.BAD_URL


def test_tls_files_without_tls_are_refused_with_the_key_path() -> None:
    """One settings model: the rule the bridge had is the terminal's too (a CA file with tls = false
    reads as "TLS is on" and was silently ignored)."""
    text = DEMO + '\n[mqtt]\nhost = "127.0.0.1"\nca_file = "/etc/ca.pem"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "plant.toml")
    [problem] = info.value.problems
    assert problem.path == "mqtt" and "ca_file given but tls = false" in problem.message


def test_a_plain_url_drops_the_tls_files_of_its_base() -> None:
    from kanban_terminal.mqtt_settings import MqttSettings, parse_mqtt_url

    base = MqttSettings(host="broker.plant-a.example", tls=True, ca_file="/etc/ca.pem", keepalive_s=7)
    plain = parse_mqtt_url("mqtt://127.0.0.1:1999", base)
    assert (plain.host, plain.port, plain.tls, plain.ca_file, plain.keepalive_s) == (
        "127.0.0.1",
        1999,
        False,
        None,
        7,
    )
