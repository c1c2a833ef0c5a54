"""Device state (dedupe, reboot, replay, rate limit, timeouts) and the pure mappings of the bridge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware_bridge.config import ConfigError, load_config
from firmware_bridge.device import DeviceState, Lights, TokenBucket, Verdict, lights_for_line_state, seq_newer
from firmware_bridge.framing import Frame, FrameType
from firmware_bridge.messages import parse_command, parse_line_state, signal_payload
from kanban_terminal.mqtt_settings import read_password

BOOT_A, BOOT_B = "AAAA0001", "BBBB0002"
AT = datetime(2026, 11, 23, 8, 30, 0, 125000, tzinfo=UTC)


def state(rate: float = 1000.0, burst: float = 1000.0) -> DeviceState:
    return DeviceState("D1", heartbeat_timeout=5.0, bucket=TokenBucket(rate, burst))


def btn(seq: int, boot: str = BOOT_A, device: str = "D1") -> Frame:
    return Frame(device, FrameType.BTN, boot, seq, ("call", "S1"))


def test_repeated_seq_is_a_duplicate_and_new_seq_is_accepted() -> None:
    s = state()
    assert [s.judge(btn(n), now=0.0) for n in (0, 1, 1, 0, 2)] == [
        Verdict.ACCEPT,
        Verdict.ACCEPT,
        Verdict.DUPLICATE,
        Verdict.DUPLICATE,
        Verdict.ACCEPT,
    ]
    assert s.counts["duplicate"] == 2


def test_new_boot_restarts_the_sequence_and_old_boot_is_refused() -> None:
    s = state()
    for n in range(10):
        assert s.judge(btn(n), 0.0) is Verdict.ACCEPT
    # Goal R8: every event of the new boot with a restarted seq is accepted.
    assert [s.judge(btn(n, BOOT_B), 0.0) for n in range(10)] == [Verdict.ACCEPT] * 10
    # A replay of the old boot, even with a seq never seen, is refused.
    assert s.judge(btn(3, BOOT_A), 0.0) is Verdict.OLD_BOOT
    assert s.judge(btn(50, BOOT_A), 0.0) is Verdict.OLD_BOOT
    assert s.counts["reboots"] == 2  # the first boot seen counts too


def test_first_frame_of_an_unknown_boot_without_hello_is_accepted() -> None:
    # The bridge restarted while the device kept running at seq 4711: do not lose its events.
    assert state().judge(btn(4711), 0.0) is Verdict.ACCEPT


@pytest.mark.parametrize(
    ("seq", "last", "newer"), [(1, 0, True), (0, 65535, True), (65535, 0, False), (5, 5, False)]
)
def test_seq_wraps_at_16_bits(seq: int, last: int, newer: bool) -> None:
    assert seq_newer(seq, last) is newer


def test_gaps_are_counted_but_accepted() -> None:
    s = state()
    assert s.judge(btn(0), 0.0) is Verdict.ACCEPT
    assert s.judge(btn(5), 0.0) is Verdict.ACCEPT
    assert s.counts["seq_gaps"] == 1


def test_wrong_device_and_wrong_direction_are_refused() -> None:
    s = state()
    assert s.judge(btn(0, device="D2"), 0.0) is Verdict.WRONG_DEVICE
    assert (
        s.judge(Frame("D1", FrameType.LIGHT, BOOT_A, 0, ("on", "off", "off")), 0.0) is Verdict.WRONG_DIRECTION
    )


def test_rate_limit_allows_the_burst_then_the_rate() -> None:
    s = state(rate=10.0, burst=5.0)
    first = [s.judge(btn(n), now=0.0) for n in range(20)]
    assert first.count(Verdict.ACCEPT) == 5 and first.count(Verdict.RATE_LIMITED) == 15
    # One second later the bucket holds 10 more; a flood of 100 gets exactly those through.
    later = [s.judge(btn(100 + n), now=1.0) for n in range(100)]
    assert later.count(Verdict.ACCEPT) == 5  # capped by burst=5, not by rate x time
    assert s.counts["rate_limited"] == 15 + 95


def test_rate_limit_of_one_device_leaves_another_alone() -> None:
    flooder, quiet = state(rate=10.0, burst=5.0), DeviceState("D2", 5.0, TokenBucket(10.0, 5.0))
    for n in range(1000):
        flooder.judge(btn(n), now=0.5)
    assert quiet.judge(btn(0, device="D2"), now=0.5) is Verdict.ACCEPT


def test_heartbeat_timeout() -> None:
    s = state()
    s.judge(Frame("D1", FrameType.HB, BOOT_A, 0), now=100.0)
    assert s.mark_online() is True and s.mark_online() is False
    assert not s.timed_out(104.9)
    assert s.timed_out(105.1)
    assert s.mark_offline() is True and s.mark_offline() is False


@pytest.mark.parametrize(
    ("line_state", "lights"),
    [
        ("running", Lights(red="off", amber="off", green="on", buzzer=False)),
        ("call", Lights(red="off", amber="blink", green="on", buzzer=False)),
        ("stopped", Lights(red="on", amber="off", green="off", buzzer=True)),
        ("maintenance", None),
    ],
)
def test_stack_light_follows_line_state(line_state: str, lights: Lights | None) -> None:
    assert lights_for_line_state(line_state) == lights


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            Frame("D1", FrameType.BTN, BOOT_A, 17, ("stop", "S3", "MAT_SHORT")),
            {"type": "andon_stop", "station": "S3", "reason": "MAT_SHORT"},
        ),
        (Frame("D1", FrameType.BTN, BOOT_A, 17, ("call", "S3")), {"type": "andon_call", "station": "S3"}),
        (Frame("D1", FrameType.BIN, BOOT_A, 17, ("B-07", "empty")), {"type": "bin_empty", "bin": "B-07"}),
        (Frame("D1", FrameType.BIN, BOOT_A, 17, ("B-07", "full")), {"type": "bin_full", "bin": "B-07"}),
    ],
)
def test_signal_payload(frame: Frame, expected: dict[str, object]) -> None:
    common = {"v": 1, "id": f"D1:{BOOT_A}:17", "device": "D1", "boot": BOOT_A, "seq": 17}
    assert signal_payload(frame, AT) == {**common, **expected, "at": "2026-11-23T08:30:00.125+00:00"}


@pytest.mark.parametrize(
    ("payload", "result"),
    [
        (
            b'{"v":1,"id":"u","type":"light","red":"on","amber":"blink","green":"off"}',
            Lights("on", "blink", "off"),
        ),
        (b'{"v":1,"id":"u","type":"buzzer","on":true}', True),
        (b'{"v":1,"type":"light","red":"purple"}', "lamps must be on|off|blink"),
        (b'{"v":2,"type":"buzzer","on":true}', "not an object with v=1"),
        (b'{"v":1,"type":"buzzer","on":"yes"}', "type must be light or buzzer(on: bool)"),
        (b"[" * 100_000, "payload too large"),
        (b"[" * 4000, "not JSON"),  # RecursionError, which would kill paho's thread if it escaped
        (b"\xff\xfe", "not JSON"),
        (b"null", "not an object with v=1"),
    ],
)
def test_parse_command(payload: bytes, result: object) -> None:
    assert parse_command(payload) == result


@pytest.mark.parametrize(
    ("payload", "ok"),
    [
        (json.dumps({"v": 1, "state": "stopped", "since": "x"}).encode(), True),
        (b'{"v":1,"state":"exploded"}', False),
        (b'{"v":1,"state":5}', False),
        (b"\x1b[2J", False),
    ],
)
def test_parse_line_state(payload: bytes, ok: bool) -> None:
    assert isinstance(parse_line_state(payload), Lights) is ok


CONFIG = """
site = "plant1"
line = "L1"
bridge_id = "br1"
[broker]
host = "10.0.0.5"
tls = true
username = "bridge"
[[devices]]
id = "D1"
port = "/dev/serial/by-id/usb-D1"
kind = "station"
"""


def test_config_loads_with_password_from_env(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(CONFIG)
    config = load_config(path, env={"KANBAN_MQTT_PASSWORD": "s3cret"}, mqtt_url="mqtt://127.0.0.1:1999")
    assert (config.broker.host, config.broker.port) == ("127.0.0.1", 1999)
    assert read_password(config.broker, {"KANBAN_MQTT_PASSWORD": "s3cret"}) == "s3cret"
    assert "s3cret" not in repr(config)
    assert config.devices[0].has_light


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[limits]\nheartbeat_timout_s = 3\n", "limits.heartbeat_timout_s"),
        ('[[devices]]\nid = "D1"\nport = "/dev/x"\n', "duplicate id"),
        ('[[devices]]\nid = "D/2"\nport = "/dev/y"\n', "devices.1.id"),
        ('[broker]\npassword = "x"\n', "broker.password"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "bridge.toml"
    text = (
        CONFIG.replace('[broker]\nhost = "10.0.0.5"\ntls = true\nusername = "bridge"\n', "")
        if "[broker]" in extra
        else CONFIG
    )
    path.write_text(text + extra)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(path, env={})


def test_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "bridge.example.toml"
    config = load_config(example, env={})
    assert [d.id for d in config.devices] == ["D1", "D2"] and not config.devices[1].has_light


def test_a_byte_budget_grants_what_it_has_and_refills_with_time() -> None:
    budget = TokenBucket(rate=1000, burst=4096)
    assert budget.take_up_to(3000, now=0.0) == 3000
    assert budget.take_up_to(3000, now=0.0) == 1096  # the rest of the burst, no more
    assert budget.take_up_to(3000, now=0.5) == 500  # half a second at 1,000 bytes/s
    assert budget.take_up_to(10, now=0.5) == 0
