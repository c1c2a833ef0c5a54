"""The wire schema: every inbound door's refusals with their reasons, the producers' payloads still
valid, outbound builders through the models, and the published JSON Schemas in step with them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.bridge import signal_payload
from firmware_bridge.framing import Frame, FrameType
from kanban_terminal.adapters.peer_requests import parse_request
from kanban_terminal.adapters.wire import (
    AvailabilityMessage,
    InboundDecoder,
    parse_json_object,
)
from kanban_terminal.adapters.wire.schema import drift, rendered
from kanban_terminal.config import BinSensor, TerminalConfig, demo_config_path, load_config, parse_config
from kanban_terminal.domain.inbound import AndonSignal, BinSignal, Refusal, UpstreamStatus
from kanban_terminal.topics import LineTopics
from tests.support.mqtt_lines import line_config

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TOPICS = LineTopics("S1", "L1")
ROOT = Path(__file__).resolve().parents[2]
RID = "3f2b8e0a-5c1d-4e4b-9a7e-2d1c0b9a8f76"


def signal(
    device: str = "BS00001", boot: str = "b1", seq: int = 1, kind: str = "empty", **over: object
) -> dict:
    data = {"v": 1, "id": f"{device}:{boot}:{seq}", "device": device, "boot": boot, "seq": seq}
    data["type"] = f"bin_{kind}"
    data["at"] = "2026-11-23T09:59:59.000Z"
    data.update(over)
    return data


def andon(seq: int = 1, type_: str = "andon_call", device: str = "ANDON-ST10", **over: object) -> dict:
    data = {"v": 1, "id": f"{device}:3:{seq}", "device": device, "boot": "3", "seq": seq, "type": type_}
    data |= {"station": "ST10", "reason": "MACH"}
    data.update(over)
    return data


def status(**over: object) -> dict:
    data = {"v": 1, "id": str(uuid.uuid4()), "request_id": RID, "status": "shipped"}
    data |= {"at": "2026-11-23T10:20:00.000Z", "eta": "2026-11-23T10:30:00.000Z", "card": "B1201L"}
    data |= {"loop": "ST10-HEAD", "by": "SM1-peer", "reason": None}
    data.update(over)
    return data


def raw(data: dict) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture(scope="module")
def line() -> InboundDecoder:
    return InboundDecoder(parse_config(line_config(loops=2, cards=5, sensors=10)), TOPICS)


@pytest.fixture(scope="module")
def demo() -> tuple[InboundDecoder, TerminalConfig]:
    config = load_config(demo_config_path())
    return InboundDecoder(config, LineTopics(config.site.id, config.line.id)), config


def device_topic(device: str = "BS00001") -> str:
    return TOPICS.device_signal(device)


def test_a_valid_bin_signal_becomes_a_bin_signal_value(line: InboundDecoder) -> None:
    parsed = line.decode(device_topic(), raw(signal()), NOW)
    assert parsed == BinSignal(
        "BS00001:b1:1", "BS00001", "b1", 1, "empty", datetime(2026, 11, 23, 9, 59, 59, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[" * 100_000, "exceeds"),
        (b"[" * 1000, "nested too deeply"),
        (b'{"v": 1, "seq": ' + b"9" * 5000 + b"}", "exceeds"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"v": 1, "v": 1}', "duplicate key"),
        (b'{"v": NaN}', "NaN is not allowed"),
        (b"[1, 2]", "not a JSON object"),
        (b"", "not valid JSON"),
        (raw(signal(v=2)), "v: Input should be 1"),
        (raw(signal(v="1")), "must be the integer 1"),
        (raw(signal(v=True)), "not a boolean"),
        (raw(signal(v=1.0)), "must be the integer 1"),
        (raw({k: v for k, v in signal().items() if k != "seq"}), "missing field seq"),
        (raw(signal(extra=1)), "unknown field extra"),
        (raw(signal(seq="1")), "seq: Input should be a valid integer"),
        (raw(signal(seq=True)), "seq: Input should be a valid integer"),
        (raw(signal(seq=-1)), "seq: Input should be greater than or equal to 0"),
        (raw(signal(seq=1.5)), "seq: Input should be a valid integer"),
        (raw(signal(seq=2**53, id=f"BS00001:b1:{2**53}")), "seq: Input should be less than"),
        (raw(signal(kind="half")), "type: Input should be 'bin_empty' or 'bin_full'"),
        (raw(signal(device="BS00002")), "does not match the topic"),
        (raw(signal(boot="\x1b[2J", id="BS00001:b1:1")), "boot: String should match pattern"),
        (raw(signal(at="yesterday")), "ISO 8601"),
        (raw(signal(at=12)), "ISO 8601"),
        (raw(signal(at="2026-11-23T09:59:59")), "ISO 8601"),
        (raw(signal(at="2026-11-23T12:59:59.000+02:00")), "UTC"),
        (raw(signal(at="2026-11-23T11:00:00.000Z")), "future"),
        (raw(signal(at="2026-01-01T00:00:00.000Z")), "older than 7 days"),
        # issue 14, measured from outside: each of these raised a request.
        (raw(signal(bin="nosuchbin")), "unknown bin nosuchbin of device BS00001"),
        (raw(signal(id="x")), "id must be '<device>:<boot>:<seq>'"),
        (raw(signal(id="BS00001:b1:2")), "id must be '<device>:<boot>:<seq>'"),
        (raw(signal(bin=None)), "leave the field out"),
    ],
)
def test_bad_bin_signals_are_refused_with_a_reason(line: InboundDecoder, payload: bytes, reason: str) -> None:
    result = line.decode(device_topic(), payload, NOW)
    assert isinstance(result, Refusal), result
    assert reason in result.reason
    assert result.door == "mqtt:device/BS00001" and result.device == "BS00001"


def test_an_unknown_device_is_refused(line: InboundDecoder) -> None:
    result = line.decode(device_topic("NOPE"), raw(signal(device="NOPE")), NOW)
    assert isinstance(result, Refusal) and "unknown device" in result.reason


def test_a_multi_bin_board_names_a_configured_bin() -> None:
    config = parse_config(line_config(loops=1, cards=3, sensors=0))
    config = config.model_copy(update={"bins": (BinSensor(device="D1", bin="B-07", card="C00001"),)})
    decoder = InboundDecoder(config, TOPICS)
    assert isinstance(decoder.decode(device_topic("D1"), raw(signal("D1", bin="B-07")), NOW), BinSignal)
    assert isinstance(decoder.decode(device_topic("D1"), raw(signal("D1", bin="B-08")), NOW), Refusal)
    assert isinstance(decoder.decode(device_topic("D1"), raw(signal("D1")), NOW), Refusal)


def test_the_bridges_own_payloads_are_valid(demo: tuple[InboundDecoder, TerminalConfig]) -> None:
    """The firmware bridge is the producer that must keep working (docs/FIRMWARE_PROTOCOL.md)."""
    config = parse_config(line_config(loops=1, cards=3, sensors=0))
    config = config.model_copy(update={"bins": (BinSensor(device="D1", bin="B-07", card="C00001"),)})
    decoder = InboundDecoder(config, TOPICS)
    frame = Frame("D1", FrameType.BIN, "0A1B2C3D", 17, ("B-07", "empty"))
    assert isinstance(decoder.decode(device_topic("D1"), raw(signal_payload(frame, NOW)), NOW), BinSignal)
    demo_decoder, demo_config = demo
    topics = LineTopics(demo_config.site.id, demo_config.line.id)
    for args in (("call", "ST10", "MACH"), ("cancel", "ST10", ""), ("cancel", "ST10")):
        frame = Frame("ANDON-ST10", FrameType.BTN, "0A1B2C3D", 18, args)
        decoded = demo_decoder.decode(
            topics.device_signal("ANDON-ST10"), raw(signal_payload(frame, NOW)), NOW
        )
        assert isinstance(decoded, AndonSignal), decoded


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (andon(foo=1), "unknown field foo"),  # issue 14: this raised an andon
        (andon(v=2), "v: Input should be 1"),
        (andon(id="ANDON-ST10:3:2"), "id must be"),
        (andon(device="x/#", id="x/#:3:1"), "String should match pattern"),
        (andon(type="andon_party"), "type: Input should be"),
        (andon(seq=True, id="ANDON-ST10:3:True"), "seq: Input should be a valid integer"),
        (andon(station="ST99"), "unknown station ST99"),
        (andon(reason="NOPE"), "unknown reason code NOPE"),
        (andon(reason="\x1b[2J"), "reason: String should match pattern"),
        ({k: v for k, v in andon().items() if k != "reason"}, "reason is required"),
        (andon(bin="B1"), "unknown field bin"),
        (andon(at="2026-11-24T10:00:00.000Z"), "future"),
    ],
)
def test_bad_andon_signals_are_refused_with_a_reason(
    demo: tuple[InboundDecoder, TerminalConfig], payload: dict, reason: str
) -> None:
    decoder, config = demo
    topics = LineTopics(config.site.id, config.line.id)
    result = decoder.decode(topics.device_signal("ANDON-ST10"), raw(payload), NOW)
    assert isinstance(result, Refusal), result
    assert reason in result.reason


def test_andon_signals_become_andon_values(demo: tuple[InboundDecoder, TerminalConfig]) -> None:
    decoder, config = demo
    topic = LineTopics(config.site.id, config.line.id).device_signal("ANDON-ST10")
    call = decoder.decode(topic, raw(andon()), NOW)
    assert call == AndonSignal("ANDON-ST10:3:1", "ANDON-ST10", "3", 1, "andon_call", "ST10", "MACH")
    cancel = decoder.decode(
        topic, raw({k: v for k, v in andon(type_="andon_cancel").items() if k != "reason"}), NOW
    )
    assert isinstance(cancel, AndonSignal) and cancel.kind is None and cancel.reason == ""


def test_a_valid_status_becomes_a_status_value(line: InboundDecoder) -> None:
    parsed = line.decode(TOPICS.status, raw(status(id="s-1")), NOW)
    assert isinstance(parsed, UpstreamStatus)
    assert (parsed.id, parsed.request_id, parsed.status, parsed.by) == ("s-1", RID, "shipped", "SM1-peer")
    assert parsed.eta == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (status(id="\x1b[2J"), "id: control, format or escape characters"),  # issue 14: was applied
        (status(id="\u202eevil"), "id: control, format or escape characters"),
        (status(id=""), "id: String should have at least 1 character"),
        (status(id="x" * 65), "id: String should have at most 64 characters"),
        (status(request_id="not-a-uuid"), "request_id: String should match pattern"),
        (status(status="lost"), "status: Input should be"),
        (status(v=True), "not a boolean"),
        (status(eta="soon"), "eta: must be an ISO 8601"),
        (status(by="\x07"), "by: control"),
        (status(reason="r" * 201), "reason: String should have at most 200"),
        (status(extra=[]), "unknown field extra"),
        ({"v": 1, "status": "lost"}, "missing field"),
    ],
)
def test_bad_statuses_are_refused_with_a_reason(line: InboundDecoder, payload: dict, reason: str) -> None:
    result = line.decode(TOPICS.status, raw(payload), NOW)
    assert isinstance(result, Refusal), result
    assert reason in result.reason and result.door == "mqtt:status"


def test_anything_on_another_topic_is_refused(line: InboundDecoder) -> None:
    result = line.decode("kanban/v1/S1/L1/elsewhere", raw(signal()), NOW)
    assert isinstance(result, Refusal) and result.reason == "not a signal topic"


def test_a_refusal_keeps_the_payload_escaped(line: InboundDecoder) -> None:
    result = line.decode(device_topic(), b'{"v": "\x1b[2J\xff"}', NOW)
    assert isinstance(result, Refusal)
    assert "\x1b" not in result.input and "\\x1b" in result.input


def test_the_peer_refuses_what_the_request_schema_refuses() -> None:
    good = {"v": 1, "id": RID, "site": "S1", "line": "L1", "terminal": "L1-T1", "loop": "LP0", "loop_seq": 3}
    good |= {"card": "C00001", "part": "P-1", "quantity": 10, "station": "ST1", "point_of_use": "rack 0"}
    good |= {"source": "SM1", "raised_at": "2026-11-23T10:00:00.000Z", "due_at": "2026-11-23T11:00:00.000Z"}
    good |= {"attempt": 1}
    parsed = parse_request(raw(good))
    assert not isinstance(parsed, str), parsed
    assert (parsed.id, parsed.loop_seq, parsed.card) == (RID, 3, "C00001")
    for bad in ({"loop_seq": True}, {"attempt": 0}, {"card": "\x1b"}, {"x": 1}, {"point_of_use": "a\u202eb"}):
        assert isinstance(parse_request(raw(good | bad)), str), bad


def test_parser_failures_that_are_not_json_errors_become_reasons() -> None:
    # RecursionError and the int-digits ValueError are what kill a paho thread (reliability.md 7.2).
    assert "nested too deeply" in str(parse_json_object(b"[" * 100_000, 1_000_000))
    assert "not valid JSON" in str(parse_json_object(b"9" * 5000, 1_000_000))
    assert "lone" not in str(parse_json_object(b'{"a": "\\ud800"}', 100))


@given(st.binary(max_size=2000), st.sampled_from([device_topic(), TOPICS.status, device_topic("NOPE")]))
@settings(max_examples=300)
def test_decode_never_raises_on_bytes(payload: bytes, topic: str) -> None:
    decoder = InboundDecoder(parse_config(line_config(loops=1, cards=2, sensors=2)), TOPICS)
    assert isinstance(decoder.decode(topic, payload, NOW), BinSignal | AndonSignal | UpstreamStatus | Refusal)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(sorted(signal()) + ["x", "bin", "station"]), json_values, max_size=9))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_decode_never_raises_on_json_objects(data: dict[str, Any]) -> None:
    decoder = InboundDecoder(parse_config(line_config(loops=1, cards=2, sensors=2)), TOPICS)
    result = decoder.decode(device_topic(), json.dumps(data).encode(), NOW)
    assert isinstance(result, BinSignal | Refusal)


def test_availability_is_written_through_its_model() -> None:
    body = {
        "v": 1,
        "state": "online",
        "terminal": "L1-T1",
        "session": "9c0e",
        "at": "2026-11-23T10:00:10.000Z",
    }
    out = AvailabilityMessage.model_validate(body | {"heartbeat_s": 10.0}).model_dump_json()
    assert json.loads(out)["heartbeat_s"] == 10.0
    with pytest.raises(ValueError, match="state"):
        AvailabilityMessage.model_validate(body | {"state": "maybe", "heartbeat_s": 10.0})


def test_the_published_schemas_match_the_models() -> None:
    """docs/schema/ is generated (`python -m kanban_terminal.adapters.wire --write docs/schema`)."""
    assert drift(ROOT / "docs" / "schema") == []
    assert {p.name for p in (ROOT / "docs" / "schema").glob("*.json")} == set(rendered())


def test_a_drifted_schema_is_noticed(tmp_path: Path) -> None:
    for name, body in rendered().items():
        (tmp_path / name).write_text(body)
    assert drift(tmp_path) == []
    bin_signal = tmp_path / "bin_signal.json"
    bin_signal.write_text(bin_signal.read_text().replace('"seq"', '"sequence"'))
    assert drift(tmp_path) == ["bin_signal.json"]
